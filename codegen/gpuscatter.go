package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// emitGPUScatterAdd emits scatter_add v for a GPU: one thread per result
// element, which walks the indices in order and adds the updates that land
// on its row, in double for floats. No atomics and no scratch memory, and
// the sums are the CPU kernel's, in the same order, so results are bitwise
// reproducible. Each thread reads every index (a table of n rows costs
// n·m index reads): fine for byte vocabularies, not for 50k-token ones,
// which want a sort of the indices first.
func (g *kernelBuilder) emitGPUScatterAdd(v *ir.Value) (extent, cost int64) {
	upd, idx := v.Args[0], v.Args[1]
	d := v.Type.DType
	axis := v.Attrs.Int("axis")
	s := v.Type.Shape
	n := int64(s[axis])
	inner := int64(s[axis+1:].NumElements())
	m := int64(idx.Type.Shape.NumElements())
	total := int64(s.NumElements())
	if total == 0 {
		return 0, 1
	}
	at := accType(d)
	g.forLoop("elt", g.lo, g.hi, func(e value.Value) {
		i := g.b.NewURem(e, i64c(inner))
		row := g.b.NewURem(g.b.NewUDiv(e, i64c(inner)), i64c(n))
		o := g.b.NewUDiv(e, i64c(n*inner))
		acc := g.alloca(at)
		g.b.NewStore(zeroAcc(d), acc)
		g.forLoop("upd", i64c(0), i64c(m), func(j value.Value) {
			c := g.clampIndex(g.elem(idx, atLinear(idx.Type.Shape, j)), int(n))
			g.ifThen("hit", g.b.NewICmp(enum.IPredEQ, c, row), func() {
				src := g.b.NewAdd(g.b.NewMul(g.b.NewAdd(g.b.NewMul(o, i64c(m)), j), i64c(inner)), i)
				x := g.elem(upd, atLinear(upd.Type.Shape, src))
				g.b.NewStore(g.accumulate(d, g.b.NewLoad(at, acc), x), acc)
			})
		})
		g.storeAt(d, g.finishSum(d, g.b.NewLoad(at, acc)), g.out, e)
	})
	return total, 2 + 2*m
}
