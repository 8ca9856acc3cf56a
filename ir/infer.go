package ir

import (
	"fmt"
	"math"
	"sort"
)

// Infer computes the result type of op applied to operands of types args with
// attributes attrs. Ops whose result cannot be derived from their operands
// (convert, reshape, broadcast, iota, constant, scatter_add, rng) take it from
// declared and check it. Infer is the single statement of every op's type
// rule: the builder and the verifier both use it.
func Infer(op Op, args []Type, attrs Attrs, declared Type) (Type, error) {
	if op == OpInvalid || op >= numOps {
		return Type{}, fmt.Errorf("unknown op")
	}
	if n := op.Arity(); n >= 0 && len(args) != n {
		return Type{}, fmt.Errorf("%v takes %d operands, have %d", op, n, len(args))
	}
	switch op.Class() {
	case ClassUnary:
		t := args[0]
		switch op {
		case OpNot:
			if t.DType != Bool {
				return Type{}, fmt.Errorf("not: want bool operand, have %v", t)
			}
		case OpStopGradient:
			// Any dtype.
		case OpNeg, OpAbs, OpSign:
			if t.DType == Bool {
				return Type{}, fmt.Errorf("%v: want a numeric operand, have %v", op, t)
			}
		default:
			if !t.DType.IsFloat() {
				return Type{}, fmt.Errorf("%v: want a float operand, have %v", op, t)
			}
		}
		return t, nil
	case ClassBinary, ClassCompare:
		a, b := args[0], args[1]
		if !a.Equal(b) {
			return Type{}, fmt.Errorf("%v: operand types differ: %v and %v", op, a, b)
		}
		switch {
		case op == OpAnd || op == OpOr:
			if a.DType != Bool {
				return Type{}, fmt.Errorf("%v: want bool operands, have %v", op, a)
			}
		case op == OpPow && !a.DType.IsFloat():
			return Type{}, fmt.Errorf("pow: want float operands, have %v", a)
		case op.Class() == ClassBinary && a.DType == Bool:
			return Type{}, fmt.Errorf("%v: want numeric operands, have %v", op, a)
		}
		if op.Class() == ClassCompare {
			return Type{Bool, a.Shape}, nil
		}
		return a, nil
	}
	switch op {
	case OpSelect:
		p, a, b := args[0], args[1], args[2]
		if p.DType != Bool || !p.Shape.Equal(a.Shape) || !a.Equal(b) {
			return Type{}, fmt.Errorf("select: want bool%v, %v, %v; have %v, %v, %v", a.Shape, a, a, p, a, b)
		}
		return a, nil
	case OpConvert:
		if !declared.Shape.Equal(args[0].Shape) || declared.DType == Invalid {
			return Type{}, fmt.Errorf("convert: want shape %v, have %v", args[0].Shape, declared)
		}
		return declared, nil
	case OpBroadcast:
		return inferBroadcast(args[0], attrs, declared)
	case OpReshape:
		if declared.DType != args[0].DType || declared.Shape.NumElements() != args[0].Shape.NumElements() {
			return Type{}, fmt.Errorf("reshape: want %v elements of %v, have %v", args[0].Shape.NumElements(), args[0].DType, declared)
		}
		return declared, nil
	case OpTranspose:
		perm := attrs.Ints("perm")
		if !isPerm(perm, args[0].Rank()) {
			return Type{}, fmt.Errorf("transpose: want a permutation of %d axes, have perm=%v", args[0].Rank(), Shape(perm))
		}
		s := make(Shape, len(perm))
		for i, p := range perm {
			s[i] = args[0].Shape[p]
		}
		return Type{args[0].DType, s}, nil
	case OpSlice:
		return inferSlice(args[0], attrs)
	case OpPad:
		return inferPad(args[0], attrs)
	case OpConcat:
		return inferConcat(args, attrs)
	case OpIota:
		ax := attrs.Int("axis")
		if ax < 0 || ax >= declared.Rank() || declared.DType == Bool || declared.DType == Invalid {
			return Type{}, fmt.Errorf("iota: want a numeric type with axis %d, have %v", ax, declared)
		}
		return declared, nil
	case OpConstant:
		if _, ok := attrs.Get("value"); !ok || declared.DType == Invalid {
			return Type{}, fmt.Errorf("constant: want a value attribute and a type")
		}
		return declared, nil
	case OpReduceSum, OpReduceMax:
		return inferReduce(op, args[0], attrs)
	case OpDot:
		return inferDot(args[0], args[1], attrs)
	case OpGather:
		return inferGather(args[0], args[1], attrs)
	case OpScatterAdd:
		g, err := inferGather(declared, args[1], attrs)
		if err != nil {
			return Type{}, fmt.Errorf("scatter_add: %v", err)
		}
		if !g.Equal(args[0]) {
			return Type{}, fmt.Errorf("scatter_add: want updates of %v, have %v", g, args[0])
		}
		return declared, nil
	case OpRng:
		if args[0].DType != I64 || args[0].Rank() != 0 {
			return Type{}, fmt.Errorf("rng: want an i64[] key, have %v", args[0])
		}
		d := attrs.String("dist")
		if (d != "uniform" && d != "normal") || !declared.DType.IsFloat() {
			return Type{}, fmt.Errorf("rng: want dist=uniform|normal and a float type, have dist=%q, %v", d, declared)
		}
		return declared, nil
	case OpFusion:
		// The result is the callee's; Func.Verify checks the operands and
		// the declared type against Value.Callee, which Infer cannot see.
		if attrs.String("calls") == "" || !IsFusionKind(attrs.String("kind")) || declared.DType == Invalid {
			return Type{}, fmt.Errorf("fusion: want calls=<function>, kind=loop|reduce|dot and a type, have %s %v", attrs.Format(), declared)
		}
		return declared, nil
	case OpOutput:
		// The result is the fusion's callee's result index; Func.Verify
		// checks it and where the instruction stands.
		if attrs.Int("index") < 1 || declared.DType == Invalid {
			return Type{}, fmt.Errorf("output: want index=k (k >= 1) and a type, have %s %v", attrs.Format(), declared)
		}
		return declared, nil
	}
	return Type{}, fmt.Errorf("%v: no type rule", op)
}

func isPerm(p []int, n int) bool {
	if len(p) != n {
		return false
	}
	seen := make([]bool, n)
	for _, x := range p {
		if x < 0 || x >= n || seen[x] {
			return false
		}
		seen[x] = true
	}
	return true
}

func inferBroadcast(x Type, attrs Attrs, declared Type) (Type, error) {
	dims := attrs.Ints("dims")
	if len(dims) != x.Rank() || declared.DType != x.DType {
		return Type{}, fmt.Errorf("broadcast: want dims for %d axes and dtype %v, have dims=%v, %v", x.Rank(), x.DType, Shape(dims), declared)
	}
	prev := -1
	for i, d := range dims {
		if d <= prev || d >= declared.Rank() {
			return Type{}, fmt.Errorf("broadcast: dims=%v must increase and lie in [0,%d)", Shape(dims), declared.Rank())
		}
		prev = d
		if x.Shape[i] != declared.Shape[d] && x.Shape[i] != 1 {
			return Type{}, fmt.Errorf("broadcast: operand dim %d (%d) does not match result dim %d (%d)", i, x.Shape[i], d, declared.Shape[d])
		}
	}
	return declared, nil
}

func inferSlice(x Type, attrs Attrs) (Type, error) {
	start, limit, stride := attrs.Ints("start"), attrs.Ints("limit"), attrs.Ints("stride")
	r := x.Rank()
	if len(start) != r || len(limit) != r || len(stride) != r {
		return Type{}, fmt.Errorf("slice: want start, limit and stride of %d entries", r)
	}
	s := make(Shape, r)
	for i := range s {
		if start[i] < 0 || limit[i] > x.Shape[i] || start[i] > limit[i] || stride[i] < 1 {
			return Type{}, fmt.Errorf("slice: axis %d: want 0 <= start <= limit <= %d and stride >= 1, have %d:%d:%d", i, x.Shape[i], start[i], limit[i], stride[i])
		}
		s[i] = (limit[i] - start[i] + stride[i] - 1) / stride[i]
	}
	return Type{x.DType, s}, nil
}

// inferPad gives result dim i = low[i] + n + (n-1)*interior[i] + high[i] for
// an operand dim n > 0, and low[i] + high[i] for n = 0.
func inferPad(x Type, attrs Attrs) (Type, error) {
	low, high, interior := attrs.Ints("low"), attrs.Ints("high"), attrs.Ints("interior")
	r := x.Rank()
	if len(low) != r || len(high) != r || len(interior) != r {
		return Type{}, fmt.Errorf("pad: want low, high and interior of %d entries, have low=%v, high=%v, interior=%v", r, Shape(low), Shape(high), Shape(interior))
	}
	s := make(Shape, r)
	for i, n := range x.Shape {
		if min(low[i], high[i], interior[i]) < 0 || max(low[i], high[i], interior[i]) > math.MaxInt32 {
			return Type{}, fmt.Errorf("pad: axis %d: want low, high and interior in [0, 2^31), have %d, %d, %d", i, low[i], high[i], interior[i])
		}
		s[i] = low[i] + high[i]
		if n > 0 {
			s[i] += n + (n-1)*interior[i]
		}
	}
	return Type{x.DType, s}, nil
}

func inferConcat(args []Type, attrs Attrs) (Type, error) {
	if len(args) == 0 {
		return Type{}, fmt.Errorf("concat: want at least one operand")
	}
	ax := attrs.Int("axis")
	first := args[0]
	if ax < 0 || ax >= first.Rank() {
		return Type{}, fmt.Errorf("concat: axis %d out of range for %v", ax, first)
	}
	s := first.Shape.Clone()
	for _, t := range args[1:] {
		if t.DType != first.DType || t.Rank() != first.Rank() {
			return Type{}, fmt.Errorf("concat: operand types differ: %v and %v", first, t)
		}
		for i := range s {
			if i != ax && t.Shape[i] != s[i] {
				return Type{}, fmt.Errorf("concat: operand types differ: %v and %v", first, t)
			}
		}
		s[ax] += t.Shape[ax]
	}
	return Type{first.DType, s}, nil
}

func inferReduce(op Op, x Type, attrs Attrs) (Type, error) {
	axes := attrs.Ints("axes")
	seen := make([]bool, x.Rank())
	for _, a := range axes {
		if a < 0 || a >= x.Rank() || seen[a] {
			return Type{}, fmt.Errorf("%v: bad axes=%v for %v", op, Shape(axes), x)
		}
		seen[a] = true
	}
	if !sort.IntsAreSorted(axes) {
		return Type{}, fmt.Errorf("%v: axes=%v must be sorted", op, Shape(axes))
	}
	if x.DType == Bool {
		return Type{}, fmt.Errorf("%v: want a numeric operand, have %v", op, x)
	}
	var s Shape
	for i, d := range x.Shape {
		if !seen[i] {
			s = append(s, d)
		}
	}
	if s == nil {
		s = Shape{}
	}
	return Type{x.DType, s}, nil
}

// DotDims returns the batch and contracting dims of a dot's attributes:
// lhs batch, rhs batch, lhs contract, rhs contract.
func DotDims(attrs Attrs) (lb, rb, lc, rc []int) {
	b, c := attrs.IntLists("batch"), attrs.IntLists("contract")
	if len(b) == 2 {
		lb, rb = b[0], b[1]
	}
	if len(c) == 2 {
		lc, rc = c[0], c[1]
	}
	return
}

// DotFree returns the dims of a rank-n operand that are neither batch nor
// contracting, in order.
func DotFree(n int, batch, contract []int) []int {
	used := make([]bool, n)
	for _, d := range batch {
		used[d] = true
	}
	for _, d := range contract {
		used[d] = true
	}
	var free []int
	for i := 0; i < n; i++ {
		if !used[i] {
			free = append(free, i)
		}
	}
	return free
}

func inferDot(a, b Type, attrs Attrs) (Type, error) {
	b2, c2 := attrs.IntLists("batch"), attrs.IntLists("contract")
	if len(b2) != 2 || len(c2) != 2 {
		return Type{}, fmt.Errorf("dot: want batch=[[..],[..]] and contract=[[..],[..]]")
	}
	lb, rb, lc, rc := DotDims(attrs)
	if a.DType != b.DType || a.DType == Bool {
		return Type{}, fmt.Errorf("dot: operand types differ: %v and %v", a, b)
	}
	if len(lb) != len(rb) || len(lc) != len(rc) {
		return Type{}, fmt.Errorf("dot: batch and contract lists must pair up")
	}
	if !distinctIn(append(append([]int{}, lb...), lc...), a.Rank()) || !distinctIn(append(append([]int{}, rb...), rc...), b.Rank()) {
		return Type{}, fmt.Errorf("dot: batch/contract dims out of range or repeated for %v and %v", a, b)
	}
	var s Shape
	for i := range lb {
		if a.Shape[lb[i]] != b.Shape[rb[i]] {
			return Type{}, fmt.Errorf("dot: batch dims differ: %v and %v", a, b)
		}
		s = append(s, a.Shape[lb[i]])
	}
	for i := range lc {
		if a.Shape[lc[i]] != b.Shape[rc[i]] {
			return Type{}, fmt.Errorf("dot: contracting dims differ: %v and %v", a, b)
		}
	}
	for _, d := range DotFree(a.Rank(), lb, lc) {
		s = append(s, a.Shape[d])
	}
	for _, d := range DotFree(b.Rank(), rb, rc) {
		s = append(s, b.Shape[d])
	}
	if s == nil {
		s = Shape{}
	}
	d, err := DotOut(a.DType, attrs)
	if err != nil {
		return Type{}, err
	}
	return Type{d, s}, nil
}

// DotOut is the dtype of a dot of operands of dtype d: d, or with out=T a
// float type T at least as wide as the float d (half operands, f32 sums and
// result: mixed precision's matmuls).
func DotOut(d DType, attrs Attrs) (DType, error) {
	v, ok := attrs.Get("out")
	if !ok {
		return d, nil
	}
	name, _ := v.(string)
	out, ok := ParseDType(name)
	if !ok || !out.IsFloat() || !d.IsFloat() || out.Size() < d.Size() {
		return Invalid, fmt.Errorf("dot: out=%v must name a float type at least as wide as the operands' %v", v, d)
	}
	return out, nil
}

func distinctIn(dims []int, n int) bool {
	seen := make([]bool, n)
	for _, d := range dims {
		if d < 0 || d >= n || seen[d] {
			return false
		}
		seen[d] = true
	}
	return true
}

func inferGather(table, idx Type, attrs Attrs) (Type, error) {
	ax := attrs.Int("axis")
	if ax < 0 || ax >= table.Rank() {
		return Type{}, fmt.Errorf("gather: axis %d out of range for %v", ax, table)
	}
	if !idx.DType.IsInt() {
		return Type{}, fmt.Errorf("gather: want integer indices, have %v", idx)
	}
	s := append(Shape{}, table.Shape[:ax]...)
	s = append(s, idx.Shape...)
	s = append(s, table.Shape[ax+1:]...)
	return Type{table.DType, s}, nil
}
