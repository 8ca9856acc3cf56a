package codegen

import (
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// emitDot lowers a dot root into the kernel body g (the operands are
// v.Args, read with g.elem; the result goes to g.out) and returns the
// parallel range's extent and the estimated work per unit of it. This is
// the simple, correct version; a faster kernel with the same ABI takes over
// where it applies.
//
// The parallel range is the flattened result (batch dims, then lhs free,
// then rhs free dims, as dot_general); each element is elemDot.
func (g *kernelBuilder) emitDot(v *ir.Value) (extent, cost int64) {
	extent, _ = g.emitFlat(v)
	lc := v.Attrs.IntLists("contract")[0]
	k := int64(1)
	for _, c := range lc {
		k *= int64(v.Args[0].Type.Shape[c])
	}
	return extent, 1 + 2*k
}

// elemDot computes one element of a dot: a loop over the contracting dims
// in the order of the contract list (the last innermost) summing the
// products in double (floats; integers in their own type, wrapping), and
// one rounding, as the interpreter.
func (g *kernelBuilder) elemDot(v *ir.Value, ix *index) value.Value {
	a, bv := v.Args[0], v.Args[1]
	d := v.Type.DType
	lb, rb, lc, rc := ir.DotDims(v.Attrs)
	lf := ir.DotFree(a.Type.Rank(), lb, lc)
	rf := ir.DotFree(bv.Type.Rank(), rb, rc)
	sizes := make([]int, len(lc))
	for i, c := range lc {
		sizes[i] = a.Type.Shape[c]
	}
	at := accType(d)
	acc := g.alloca(at)
	od := g.dims(ix)
	g.b.NewStore(zeroAcc(d), acc)
	g.nestedLoops("k", sizes, func(ks []value.Value) {
		ad := make([]value.Value, a.Type.Rank())
		bd := make([]value.Value, bv.Type.Rank())
		for i := range lb {
			ad[lb[i]], bd[rb[i]] = od[i], od[i]
		}
		for i, f := range lf {
			ad[f] = od[len(lb)+i]
		}
		for i, f := range rf {
			bd[f] = od[len(lb)+len(lf)+i]
		}
		for i := range lc {
			ad[lc[i]], bd[rc[i]] = ks[i], ks[i]
		}
		x := g.elem(a, atDims(a.Type.Shape, ad))
		y := g.elem(bv, atDims(bv.Type.Shape, bd))
		var p value.Value
		if d.IsFloat() {
			p = g.b.NewFMul(g.toDouble(x), g.toDouble(y)) // exact for f32 and below
		} else {
			p = g.b.NewMul(x, y)
		}
		g.b.NewStore(g.accumulate(d, g.b.NewLoad(at, acc), p), acc)
	})
	return g.finishSum(d, g.b.NewLoad(at, acc))
}
