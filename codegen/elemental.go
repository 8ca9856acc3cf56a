package codegen

import (
	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// index is an element index of an array of shape: per-dimension i64 values,
// the row-major linear index, or both; the missing form is computed on
// demand. An index is only valid in the block where it was made and the
// blocks it dominates.
type index struct {
	shape ir.Shape
	dims  []value.Value
	lin   value.Value
}

type elemKey struct {
	v  *ir.Value
	ix *index
}

// dims returns ix's per-dimension indices.
func (g *kernelBuilder) dims(ix *index) []value.Value {
	if ix.dims != nil || len(ix.shape) == 0 {
		return ix.dims
	}
	d := make([]value.Value, len(ix.shape))
	rest := ix.lin
	for k := len(ix.shape) - 1; k >= 0; k-- {
		n := int64(ix.shape[k])
		switch {
		case n == 1:
			d[k] = i64c(0)
		case k == 0:
			d[k] = rest
		default:
			d[k] = g.b.NewURem(rest, i64c(n))
			rest = g.b.NewUDiv(rest, i64c(n))
		}
	}
	ix.dims = d
	return d
}

// linear returns ix's row-major linear index.
func (g *kernelBuilder) linear(ix *index) value.Value {
	if ix.lin != nil {
		return ix.lin
	}
	if len(ix.shape) == 0 {
		ix.lin = i64c(0)
		return ix.lin
	}
	var lin value.Value
	for k, d := range ix.dims {
		if k == 0 {
			lin = d
			continue
		}
		if ix.shape[k] == 1 {
			continue // d is 0
		}
		lin = g.b.NewAdd(g.b.NewMul(lin, i64c(int64(ix.shape[k]))), d)
	}
	ix.lin = lin
	return lin
}

// atDims is the index of shape s with the given per-dimension values.
func atDims(s ir.Shape, d []value.Value) *index { return &index{shape: s, dims: d} }

// atLinear is the index of shape s with the given linear index.
func atLinear(s ir.Shape, lin value.Value) *index { return &index{shape: s, lin: lin} }

// elem returns the compute value of v's element at ix (v's shape): a load
// when v is read from a buffer, else v's op applied to its operands'
// elements, as XLA's elemental emitter. Values are memoized per index.
func (g *kernelBuilder) elem(v *ir.Value, ix *index) value.Value {
	if r, ok := g.rowVals[v]; ok {
		return r
	}
	if g.rowCaches != nil {
		if r, ok := g.cachedAt(v, ix); ok {
			return r
		}
	}
	if f, ok := g.fills[v]; ok && g.outsideAt(ix) && f.t == g.split.t {
		return constValue(v.Type.DType, f.c)
	}
	if p, ok := g.ptrs[v]; ok {
		return g.loadAt(v.Type.DType, p, g.linear(ix))
	}
	key := elemKey{v, ix}
	if r, ok := g.cache[key]; ok {
		return r
	}
	r := g.elemOp(v, ix)
	g.cache[key] = r
	return r
}

func (g *kernelBuilder) elemOp(v *ir.Value, ix *index) value.Value {
	b := g.b
	d := v.Type.DType
	switch v.Op.Class() {
	case ir.ClassUnary:
		return g.unary(v.Op, d, g.elem(v.Args[0], ix))
	case ir.ClassBinary:
		return g.binary(v.Op, d, g.elem(v.Args[0], ix), g.elem(v.Args[1], ix))
	case ir.ClassCompare:
		return g.compare(v.Op, v.Args[0].Type.DType, g.elem(v.Args[0], ix), g.elem(v.Args[1], ix))
	}
	switch v.Op {
	case ir.OpSelect:
		if g.split != nil && g.atLoop(ix) {
			if t, ok := predTriangle(v.Args[0]); ok && t == g.split.t {
				if g.split.outside {
					return g.elem(v.Args[2], ix)
				}
				return g.elem(v.Args[1], ix)
			}
		}
		p := g.elem(v.Args[0], ix)
		x, y := g.elem(v.Args[1], ix), g.elem(v.Args[2], ix)
		return g.b.NewSelect(p, x, y)
	case ir.OpConvert:
		return g.convert(v.Args[0].Type.DType, d, g.elem(v.Args[0], ix))
	case ir.OpReshape:
		return g.elem(v.Args[0], atLinear(v.Args[0].Type.Shape, g.linear(ix)))
	case ir.OpBroadcast:
		x := v.Args[0]
		od := g.dims(ix)
		xd := make([]value.Value, x.Type.Rank())
		for i, dim := range v.Attrs.Ints("dims") {
			if x.Type.Shape[i] == 1 {
				xd[i] = i64c(0)
			} else {
				xd[i] = od[dim]
			}
		}
		return g.elem(x, atDims(x.Type.Shape, xd))
	case ir.OpTranspose:
		x := v.Args[0]
		od := g.dims(ix)
		xd := make([]value.Value, x.Type.Rank())
		for i, p := range v.Attrs.Ints("perm") {
			xd[p] = od[i]
		}
		return g.elem(x, atDims(x.Type.Shape, xd))
	case ir.OpSlice:
		x := v.Args[0]
		od := g.dims(ix)
		start, stride := v.Attrs.Ints("start"), v.Attrs.Ints("stride")
		xd := make([]value.Value, x.Type.Rank())
		for i := range xd {
			xd[i] = od[i]
			if stride[i] != 1 {
				xd[i] = b.NewMul(xd[i], i64c(int64(stride[i])))
			}
			if start[i] != 0 {
				xd[i] = b.NewAdd(xd[i], i64c(int64(start[i])))
			}
		}
		return g.elem(x, atDims(x.Type.Shape, xd))
	case ir.OpPad:
		return g.elemPad(v, ix)
	case ir.OpConcat:
		return g.elemConcat(v, ix)
	case ir.OpIota:
		i := g.dims(ix)[v.Attrs.Int("axis")]
		return g.convert(ir.I64, d, i)
	case ir.OpConstant:
		val, _ := v.Attrs.Get("value")
		return constValue(d, val)
	case ir.OpGather:
		return g.elemGather(v, ix)
	case ir.OpReduceSum, ir.OpReduceMax:
		return g.elemReduce(v, ix)
	case ir.OpDot:
		return g.elemDot(v, ix)
	case ir.OpRng:
		return g.elemRng(v, ix)
	}
	fail("%v is not elemental", v.Op)
	return nil
}

// elemPad: result index k of axis i holds operand element (k-low)/(interior+1)
// when that divides exactly and lies in range, else zero. Operand indices
// are kept in range even when the element is padding, so the load is safe
// to execute unconditionally.
func (g *kernelBuilder) elemPad(v *ir.Value, ix *index) value.Value {
	b := g.b
	x := v.Args[0]
	d := v.Type.DType
	if x.Type.Shape.NumElements() == 0 {
		return zeroValue(d)
	}
	low, interior := v.Attrs.Ints("low"), v.Attrs.Ints("interior")
	od := g.dims(ix)
	xd := make([]value.Value, x.Type.Rank())
	var valid value.Value
	for i, n := range x.Type.Shape {
		if low[i] == 0 && interior[i] == 0 && n == v.Type.Shape[i] {
			xd[i] = od[i]
			continue
		}
		rel := value.Value(b.NewSub(od[i], i64c(int64(low[i]))))
		var ok value.Value
		if interior[i] == 0 {
			ok = b.NewICmp(enum.IPredULT, rel, i64c(int64(n))) // 0 <= rel < n
		} else {
			p := i64c(int64(interior[i] + 1))
			q := b.NewSDiv(rel, p)
			ok = b.NewAnd(b.NewICmp(enum.IPredSGE, rel, i64c(0)),
				b.NewAnd(b.NewICmp(enum.IPredEQ, b.NewSRem(rel, p), i64c(0)), b.NewICmp(enum.IPredSLT, q, i64c(int64(n)))))
			rel = q
		}
		xd[i] = b.NewSelect(ok, rel, i64c(0))
		if valid == nil {
			valid = ok
		} else {
			valid = b.NewAnd(valid, ok)
		}
	}
	val := g.elem(x, atDims(x.Type.Shape, xd))
	if valid == nil {
		return val
	}
	return g.b.NewSelect(valid, val, zeroValue(d))
}

// elemConcat selects the operand whose range along the axis holds the
// index; every operand is read at an in-range index.
func (g *kernelBuilder) elemConcat(v *ir.Value, ix *index) value.Value {
	axis := v.Attrs.Int("axis")
	od := g.dims(ix)
	k := od[axis]
	type part struct {
		val value.Value
		end int
	}
	var parts []part
	off := 0
	for _, x := range v.Args {
		n := x.Type.Shape[axis]
		if n == 0 {
			continue
		}
		xd := append([]value.Value{}, od...)
		if off != 0 {
			rel := g.b.NewSub(k, i64c(int64(off)))
			in := g.b.NewICmp(enum.IPredULT, rel, i64c(int64(n)))
			xd[axis] = g.b.NewSelect(in, rel, i64c(0))
		} else if n != v.Type.Shape[axis] {
			in := g.b.NewICmp(enum.IPredULT, k, i64c(int64(n)))
			xd[axis] = g.b.NewSelect(in, k, i64c(0))
		}
		parts = append(parts, part{g.elem(x, atDims(x.Type.Shape, xd)), off + n})
		off += n
	}
	if len(parts) == 0 {
		return zeroValue(v.Type.DType)
	}
	acc := parts[len(parts)-1].val
	for j := len(parts) - 2; j >= 0; j-- {
		c := g.b.NewICmp(enum.IPredSLT, k, i64c(int64(parts[j].end)))
		acc = g.b.NewSelect(c, parts[j].val, acc)
	}
	return acc
}

// elemGather: result[pre, j, post] = table[pre, clamp(idx[j]), post].
func (g *kernelBuilder) elemGather(v *ir.Value, ix *index) value.Value {
	table, idx := v.Args[0], v.Args[1]
	axis := v.Attrs.Int("axis")
	n := table.Type.Shape[axis]
	if n == 0 || v.Type.Shape.NumElements() == 0 {
		return zeroValue(v.Type.DType)
	}
	od := g.dims(ix)
	r := idx.Type.Rank()
	var jix *index
	if r == len(od) && axis == 0 && table.Type.Rank() == 1 {
		jix = atLinear(idx.Type.Shape, g.linear(ix))
	} else {
		jix = atDims(idx.Type.Shape, od[axis:axis+r])
	}
	c := g.clampIndex(g.elem(idx, jix), n)
	td := append(append(append([]value.Value{}, od[:axis]...), c), od[axis+r:]...)
	return g.elem(table, atDims(table.Type.Shape, td))
}

// emitElemental emits the loop of an elemental kernel computing v, the
// first of the kernel's results (the others, a loop fusion's outputs, have
// its shape): the parallel range is the flattened result; a call walks its
// part one row (last dimension) at a time with a contiguous inner loop.
func (g *kernelBuilder) emitElemental(v *ir.Value) (extent, cost int64) {
	s := v.Type.Shape
	n := int64(s.NumElements())
	cost = 1 + int64(len(v.Args))
	for _, r := range g.results {
		if !r.Type.Shape.Equal(s) {
			fail("a loop kernel's results have shapes %v and %v", s, r.Type.Shape)
		}
	}
	if n == 0 {
		return 0, cost
	}
	if len(s) == 0 {
		g.ifThen("scalar", g.b.NewICmp(enum.IPredSLT, g.lo, g.hi), func() {
			g.storeResults(atDims(s, nil), i64c(0), nil)
		})
		return 1, cost
	}
	r := len(s)
	last := int64(s[r-1])
	rowShape := s[:r-1]
	pre := g.b
	head, body, exit := g.newBlock("row.head"), g.newBlock("row.body"), g.newBlock("row.exit")
	pre.NewBr(head)
	i := head.NewPhi(llir.NewIncoming(g.lo, pre))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, i, g.hi), body, exit)
	g.b = body
	row := body.NewUDiv(i, i64c(last))
	base := body.NewMul(row, i64c(last))
	j0 := body.NewSub(i, base)
	j1 := g.min64(body.NewAdd(j0, body.NewSub(g.hi, i)), i64c(last))
	outer := g.dims(atLinear(rowShape, row))
	col := func(j value.Value) {
		dims := append(append([]value.Value{}, outer...), j)
		ix := &index{shape: s, dims: dims, lin: g.b.NewAdd(base, j)}
		g.storeResults(ix, ix.lin, nil)
	}
	// A triangle over the last axis and another (a causal mask): the
	// part outside it is constants and the selects' other branches.
	kept := make([]int, r-1)
	for a := range kept {
		kept[a] = a
	}
	// With AVX-512 BF16, f32 is rounded to bf16 by its instruction, in a
	// loop vectorized at the target's width.
	prevCvt := g.cvtBF16
	g.cvtBF16 = g.mod.t.hasAVX512BF16() && g.roundsToBF16()
	if sp := g.splitFor(s, r-1, kept); sp != nil {
		prev := g.split
		g.split = sp
		g.splitLoop("col", j0, j1, outer[sp.keptPos], g.mod.rowHints(), col)
		g.split = prev
	} else if g.cvtBF16 {
		g.hintedLoop("col", j0, j1, i64c(1), g.mod.widthHint(), col)
	} else {
		g.forLoop("col", j0, j1, col)
	}
	g.cvtBF16 = prevCvt
	next := g.b.NewAdd(base, j1)
	g.b.NewBr(head)
	i.Incs = append(i.Incs, llir.NewIncoming(next, g.b))
	g.b = exit
	return n, cost
}

// storeResults computes the kernel's results of indexes which (all of them
// when which is nil) at ix (their shape) and then stores each at the linear
// index at: all loads come before the stores, so an operand read through a
// result's pointer (in place) is read before it is overwritten.
func (g *kernelBuilder) storeResults(ix *index, at value.Value, which []int) {
	if which == nil {
		which = make([]int, len(g.results))
		for k := range which {
			which[k] = k
		}
	}
	vals := make([]value.Value, len(which))
	for i, k := range which {
		vals[i] = g.elem(g.results[k], ix)
	}
	for i, k := range which {
		g.storeAt(g.results[k].Type.DType, vals[i], g.outs[k], at)
	}
}

// roundsToBF16 reports whether the kernel's results are computed through
// a convert from f32 to bf16, looking no further than the values it reads
// from buffers.
func (g *kernelBuilder) roundsToBF16() bool {
	seen := map[*ir.Value]bool{}
	var walk func(v *ir.Value) bool
	walk = func(v *ir.Value) bool {
		if seen[v] || v.IsParam() {
			return false
		}
		seen[v] = true
		if v.Op == ir.OpConvert && v.Type.DType == ir.BF16 && v.Args[0].Type.DType == ir.F32 {
			return true
		}
		if _, ok := g.ptrs[v]; ok && v != g.res {
			return false
		}
		for _, a := range v.Args {
			if walk(a) {
				return true
			}
		}
		return false
	}
	for _, r := range g.results {
		if walk(r) {
			return true
		}
	}
	return false
}
