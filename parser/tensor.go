package parser

import (
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
		if v, ok := constBinop(op, a, b); ok {
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
		if ta, err = e.constTensor(pos, a, tb.Type.DType, op, b); err != nil {
			return nil, err
		}
	}
	if !bT {
		if tb, err = e.constTensor(pos, b, ta.Type.DType, op, a); err != nil {
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

// constTensor turns a constant into a scalar tensor of dtype d; other is the
// tensor it meets, for the message.
func (e *elab) constTensor(pos lexer.Position, c any, d ir.DType, op string, other any) (*ir.Value, error) {
	f, ok := toFloat(c)
	_, isBool := c.(bool)
	switch {
	case !ok, isBool != (d == ir.Bool):
		return nil, e.errf(pos, "cannot %s %s and %s", verbs[op], describe(c), describe(other))
	case d.IsInt() && f != math.Trunc(f):
		return nil, e.errf(pos, "cannot %s %s and %s: the number is not an integer", verbs[op], describe(c), describe(other))
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

// constBinop folds an operator on two constants.
func constBinop(op string, a, b any) (any, bool) {
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
		case "+":
			return ia + ib, true
		case "-":
			return ia - ib, true
		case "*":
			return ia * ib, true
		case "/":
			if ib != 0 && ia%ib == 0 {
				return ia / ib, true
			}
		case "%":
			if ib != 0 {
				return ia % ib, true
			}
			return nil, false
		case "**":
			if ib >= 0 && ib < 64 {
				r := int64(1)
				for i := int64(0); i < ib; i++ {
					r *= ia
				}
				return r, true
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

// index applies x[items] to a list or a tensor. Tensor indices are
// constants: an integer removes the axis, a slice keeps it.
func (e *elab) index(pos lexer.Position, v any, items []*Index, s *scope) (any, error) {
	if l, ok := v.([]any); ok {
		if len(items) != 1 || items[0].Colon || items[0].Start == nil {
			return nil, e.errf(pos, "a list takes one integer index")
		}
		i, err := e.intExpr(items[0].Start, s)
		if err != nil {
			return nil, err
		}
		if i < 0 {
			i += int64(len(l))
		}
		if i < 0 || i >= int64(len(l)) {
			return nil, e.errf(items[0].Pos, "index %d out of range for a list of %d", i, len(l))
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
		bound := func(x *Expr, def int64) (int64, error) {
			if x == nil {
				return def, nil
			}
			j, err := e.intExpr(x, s)
			if err != nil {
				return 0, err
			}
			if j < 0 {
				j += n
			}
			if j < 0 || j > n {
				return 0, e.errf(x.Pos, "index %d out of range for axis %d of %v", j, i, t.Type)
			}
			return j, nil
		}
		if !it.Colon {
			if it.Start == nil {
				return nil, e.errf(it.Pos, "empty index")
			}
			j, err := bound(it.Start, 0)
			if err != nil {
				return nil, err
			}
			if j == n {
				return nil, e.errf(it.Pos, "index %d out of range for axis %d of %v", j, i, t.Type)
			}
			start[i], limit[i] = int(j), int(j)+1
			continue
		}
		lo, err := bound(it.Start, 0)
		if err != nil {
			return nil, err
		}
		hi, err := bound(it.End, n)
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
