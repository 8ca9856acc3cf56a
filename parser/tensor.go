package parser

import (
	"fmt"
	"math"

	"github.com/alecthomas/participle/v2/lexer"

	"xlc/ir"
)

var binOps = map[string]ir.Op{
	"+": ir.OpAdd, "-": ir.OpSub, "*": ir.OpMul, "/": ir.OpDiv, "**": ir.OpPow,
	"==": ir.OpEq, "!=": ir.OpNe, "<": ir.OpLt, "<=": ir.OpLe, ">": ir.OpGt, ">=": ir.OpGe,
	"&&": ir.OpAnd, "||": ir.OpOr,
}

var verbs = map[string]string{
	"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of",
	"**": "raise", "@": "matmul", "&&": "and", "||": "or",
	"==": "compare", "!=": "compare", "<": "compare", "<=": "compare", ">": "compare", ">=": "compare",
}

// binop applies a binary operator: folded when both sides are constants,
// otherwise emitted with numpy broadcasting.
func (e *elab) binop(pos lexer.Position, op string, a, b any) (any, error) {
	e.pos = pos
	ta, aT := a.(*ir.Value)
	tb, bT := b.(*ir.Value)
	if !aT && !bT {
		v, ok, err := constBinop(op, a, b)
		if err != nil {
			return nil, e.errf(pos, "%v", err)
		}
		if ok {
			return v, nil
		}
		return nil, e.errf(pos, "cannot %s %s and %s", verbs[op], describe(a), describe(b))
	}
	if op == "@" {
		if !aT || !bT {
			return nil, e.errf(pos, "cannot matmul %s and %s", describe(a), describe(b))
		}
		return e.matmul(pos, ta, tb)
	}
	irop, ok := binOps[op]
	if !ok {
		return nil, e.errf(pos, "cannot %s %s and %s: %s needs constants", verbs[op], describe(a), describe(b), op)
	}
	var err error
	if !aT {
		if ta, err = e.constTensor(pos, a, tb.Type.DType, op, a, b); err != nil {
			return nil, err
		}
	}
	if !bT {
		if tb, err = e.constTensor(pos, b, ta.Type.DType, op, a, b); err != nil {
			return nil, err
		}
	}
	if ta.Type.DType != tb.Type.DType {
		return nil, e.errf(pos, "cannot %s %v and %v: dtypes differ (convert one, e.g. f32(x))", verbs[op], ta.Type, tb.Type)
	}
	shape, ok := broadcastShape(ta.Type.Shape, tb.Type.Shape)
	if !ok {
		return nil, e.errf(pos, "cannot %s %v and %v", verbs[op], ta.Type, tb.Type)
	}
	ta, tb = e.broadcastTo(ta, shape), e.broadcastTo(tb, shape)
	d := ta.Type.DType
	switch {
	case (irop == ir.OpAnd || irop == ir.OpOr) && d != ir.Bool,
		irop != ir.OpAnd && irop != ir.OpOr && irop != ir.OpEq && irop != ir.OpNe && d == ir.Bool,
		irop == ir.OpPow && !d.IsFloat():
		return nil, e.errf(pos, "cannot %s %v and %v", verbs[op], ta.Type, tb.Type)
	}
	return e.emit(e.b.Binary(irop, ta, tb))
}

// constTensor turns the constant c, one of the operands a and b of op (in
// source order, for the message), into a scalar tensor of dtype d. The value
// must fit d: an integer in range for i32 and i64 (an int64 is taken
// exactly), any number for a float dtype (an infinity makes a -inf mask).
func (e *elab) constTensor(pos lexer.Position, c any, d ir.DType, op string, a, b any) (*ir.Value, error) {
	f, ok := toFloat(c)
	_, isBool := c.(bool)
	bad := func(why string) (*ir.Value, error) {
		if why != "" {
			why = ": " + why
		}
		return nil, e.errf(pos, "cannot %s %s and %s%s", verbs[op], describe(a), describe(b), why)
	}
	switch {
	case !ok, isBool != (d == ir.Bool):
		return bad("")
	case d.IsInt() && !math.IsInf(f, 0) && !math.IsNaN(f) && f != math.Trunc(f):
		return bad("the number is not an integer")
	}
	if n, isInt := c.(int64); isInt && d.IsInt() {
		if lo, hi := ir.IntRange(d); n < lo || n > hi {
			return bad(fmt.Sprintf("the number does not fit %v", d))
		}
		return e.b.ConstantInt(ir.T(d), n), nil
	}
	if ir.CheckConstant(d, f) != nil {
		return bad(fmt.Sprintf("the number does not fit %v", d))
	}
	return e.b.Constant(ir.T(d), f), nil
}

func broadcastShape(a, b ir.Shape) (ir.Shape, bool) {
	n := max(len(a), len(b))
	out := make(ir.Shape, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// broadcastTo expands v to shape (numpy rules; shape must be compatible).
func (e *elab) broadcastTo(v *ir.Value, shape ir.Shape) *ir.Value {
	s := v.Type.Shape
	if s.Equal(shape) {
		return v
	}
	off := len(shape) - len(s)
	var kept []int
	keptShape := ir.Shape{}
	for i, d := range s {
		if d == 1 && shape[off+i] != 1 {
			continue
		}
		kept = append(kept, off+i)
		keptShape = append(keptShape, d)
	}
	if len(keptShape) != len(s) {
		v = e.b.Reshape(v, keptShape)
	}
	if kept == nil {
		kept = []int{}
	}
	return e.b.Broadcast(v, shape, kept)
}

// matmul is numpy's @ for ranks >= 1: [..., m, k] @ [k, n], or batched
// [b..., m, k] @ [b..., k, n] with equal batch dims.
func (e *elab) matmul(pos lexer.Position, a, b *ir.Value) (any, error) {
	ra, rb := a.Type.Rank(), b.Type.Rank()
	bad := func() (any, error) { return nil, e.errf(pos, "cannot matmul %v and %v", a.Type, b.Type) }
	if ra == 0 || rb == 0 || a.Type.DType != b.Type.DType || a.Type.DType == ir.Bool {
		return bad()
	}
	k := a.Type.Shape[ra-1]
	kb := b.Type.Shape[0]
	if rb >= 2 {
		kb = b.Type.Shape[rb-2]
	}
	if k != kb {
		return bad()
	}
	switch {
	case rb <= 2:
		rc := 0
		return e.emit(e.b.Dot(a, b, nil, nil, []int{ra - 1}, []int{rc}))
	case ra == rb:
		batch := make([]int, ra-2)
		for i := range batch {
			if a.Type.Shape[i] != b.Type.Shape[i] {
				return bad()
			}
			batch[i] = i
		}
		return e.emit(e.b.Dot(a, b, batch, batch, []int{ra - 1}, []int{rb - 2}))
	}
	return bad()
}

// constBinop folds an operator on two constants: ok is false when op does
// not apply to them; err is an integer overflow.
func constBinop(op string, a, b any) (v any, ok bool, err error) {
	v, ok = constBinop1(op, a, b)
	if o, isOverflow := v.(overflow); isOverflow {
		return nil, false, o
	}
	return v, ok, nil
}

// overflow is the result of integer arithmetic that does not fit int64.
type overflow struct{ op string }

func (o overflow) Error() string { return "integer overflow in " + o.op }

func constBinop1(op string, a, b any) (any, bool) {
	if sa, ok := a.(string); ok {
		sb, ok := b.(string)
		if !ok {
			return nil, false
		}
		switch op {
		case "==":
			return sa == sb, true
		case "!=":
			return sa != sb, true
		case "+":
			return sa + sb, true
		}
		return nil, false
	}
	if ba, ok := a.(bool); ok {
		bb, ok := b.(bool)
		if !ok {
			return nil, false
		}
		switch op {
		case "&&":
			return ba && bb, true
		case "||":
			return ba || bb, true
		case "==":
			return ba == bb, true
		case "!=":
			return ba != bb, true
		}
		return nil, false
	}
	ia, aInt := a.(int64)
	ib, bInt := b.(int64)
	fa, okA := toFloat(a)
	fb, okB := toFloat(b)
	if !okA || !okB {
		return nil, false
	}
	if _, isB := b.(bool); isB {
		return nil, false
	}
	if aInt && bInt {
		switch op {
		case "+", "-", "*":
			if r, ok := intArith(op, ia, ib); ok {
				return r, true
			}
			return overflow{op}, true
		case "/":
			if ia == math.MinInt64 && ib == -1 {
				return overflow{op}, true
			}
			if ib != 0 && ia%ib == 0 {
				return ia / ib, true
			}
		case "%":
			if ib != 0 {
				return ia % ib, true
			}
			return nil, false
		case "**":
			if ib >= 0 {
				if r, ok := intPow(ia, ib); ok {
					return r, true
				}
				return overflow{op}, true
			}
		}
	}
	switch op {
	case "+":
		return fa + fb, true
	case "-":
		return fa - fb, true
	case "*":
		return fa * fb, true
	case "/":
		return fa / fb, true
	case "%":
		return math.Mod(fa, fb), true
	case "**":
		return math.Pow(fa, fb), true
	case "==":
		return fa == fb, true
	case "!=":
		return fa != fb, true
	case "<":
		return fa < fb, true
	case "<=":
		return fa <= fb, true
	case ">":
		return fa > fb, true
	case ">=":
		return fa >= fb, true
	}
	return nil, false
}

// intArith is a + b, a - b or a * b, and whether it fits int64.
func intArith(op string, a, b int64) (int64, bool) {
	switch op {
	case "+":
		r := a + b
		return r, (r > a) == (b > 0)
	case "-":
		r := a - b
		return r, (r < a) == (b > 0)
	case "*":
		if a == 0 || b == 0 {
			return 0, true
		}
		r := a * b
		if r/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
			return 0, false
		}
		return r, true
	}
	return 0, false
}

// intPow is a ** n for n >= 0, and whether it fits int64.
func intPow(a, n int64) (int64, bool) {
	switch {
	case n == 0 || a == 1:
		return 1, true
	case a == 0:
		return 0, true
	case a == -1:
		return 1 - 2*(n%2), true
	}
	// |a| >= 2: at most 63 multiplications before an overflow.
	r := int64(1)
	for ; n > 0; n-- {
		var ok bool
		if r, ok = intArith("*", r, a); !ok {
			return 0, false
		}
	}
	return r, true
}

// index applies x[items] to a list or a tensor. Tensor indices are
// constants: an integer removes the axis, a slice keeps it.
func (e *elab) index(pos lexer.Position, v any, items []*Index, s *scope) (any, error) {
	if l, ok := v.([]any); ok {
		if len(items) != 1 || items[0].Colon || items[0].Start == nil {
			return nil, e.errf(pos, "a list takes one integer index")
		}
		written, err := e.intExpr(items[0].Start, s)
		if err != nil {
			return nil, err
		}
		i := written
		if i < 0 {
			i += int64(len(l))
		}
		if i < 0 || i >= int64(len(l)) {
			return nil, e.errf(items[0].Pos, "index %d out of range for a list of %d", written, len(l))
		}
		return l[i], nil
	}
	t, ok := v.(*ir.Value)
	if !ok {
		return nil, e.errf(pos, "cannot index %s", describe(v))
	}
	r := t.Type.Rank()
	if len(items) > r {
		return nil, e.errf(pos, "%d indices for %v", len(items), t.Type)
	}
	start, limit, stride := make([]int, r), t.Type.Shape.Clone(), make([]int, r)
	var keep ir.Shape
	for i := 0; i < r; i++ {
		stride[i] = 1
		n := int64(t.Type.Shape[i])
		if i >= len(items) {
			keep = append(keep, int(n))
			continue
		}
		it := items[i]
		// bound reads an index or slice bound, negative counting from the
		// end; limit is the largest value allowed (n for a slice bound, n-1
		// for an index). A message shows the index as written.
		bound := func(x *Expr, def, limit int64) (int64, error) {
			if x == nil {
				return def, nil
			}
			written, err := e.intExpr(x, s)
			if err != nil {
				return 0, err
			}
			j := written
			if j < 0 {
				j += n
			}
			if j < 0 || j > limit {
				return 0, e.errf(x.Pos, "index %d out of range for axis %d of %v", written, i, t.Type)
			}
			return j, nil
		}
		if !it.Colon {
			if it.Start == nil {
				return nil, e.errf(it.Pos, "empty index")
			}
			j, err := bound(it.Start, 0, n-1)
			if err != nil {
				return nil, err
			}
			start[i], limit[i] = int(j), int(j)+1
			continue
		}
		lo, err := bound(it.Start, 0, n)
		if err != nil {
			return nil, err
		}
		hi, err := bound(it.End, n, n)
		if err != nil {
			return nil, err
		}
		if hi < lo {
			hi = lo
		}
		start[i], limit[i] = int(lo), int(hi)
		keep = append(keep, int(hi-lo))
	}
	if keep == nil {
		keep = ir.Shape{}
	}
	out := t
	if !ir.Shape(limit).Equal(t.Type.Shape) || anyNonZero(start) {
		out = e.b.Slice(t, start, limit, stride)
	}
	if !out.Type.Shape.Equal(keep) {
		out = e.b.Reshape(out, keep)
	}
	return e.emit(out)
}

func anyNonZero(s []int) bool {
	for _, x := range s {
		if x != 0 {
			return true
		}
	}
	return false
}
