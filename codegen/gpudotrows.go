package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// planGPUDotRows returns how a GPU kernel computes a dot fusion whose
// epilogue is a row kernel over the product's rows (attention's scores
// and softmax, or its backward), or nil: as planRowDot, for a dot the
// tilers take (planGPUDot without the elementwise epilogue).
func (g *kernelBuilder) planGPUDotRows(body []*ir.Value, rows *rowPlan, root *ir.Value) *gpuDot {
	dot := dotIn(body)
	if dot == nil || len(g.results) != 1 || dot.Type.DType != ir.F32 {
		return nil
	}
	r := dot.Type.Rank()
	if !rows.shape.Equal(dot.Type.Shape) || len(rows.axes) != 1 || rows.axes[0] != r-1 ||
		root.Type.DType != ir.F32 || !root.Type.Shape.Equal(dot.Type.Shape) {
		return nil
	}
	// The row kernel reads every element of the product: bands of the
	// operands only (no BandC).
	return g.gpuDotFor(dot, dot, nil, nil)
}

// emitGPUDotRows emits the dot fusion gd with the row kernel of plan rows
// as its epilogue: block b owns a strip of BM rows of batch bt (b = bt·strips
// + strip), so no other block reads its rows. Its threads compute the
// strip's product tile by tile across N, writing it into the result
// buffer, wait, then run the row kernel on the strip in place, one warp
// per row (rowGroup): the rows' reductions are warp shuffles.
func (g *kernelBuilder) emitGPUDotRows(gd *gpuDot, rows *rowPlan, instrs int) (extent, cost int64) {
	s := gd.spec
	tl := g.tiler(gd)
	bm, _ := tl.tile()
	M, N, K := int64(s.M), int64(s.N), int64(s.K)
	strips := (M + bm - 1) / bm
	blk, tid := g.ctaid(), g.tid()
	bt := g.b.NewUDiv(blk, i64c(strips))
	m0 := g.b.NewMul(g.b.NewURem(blk, i64c(strips)), i64c(bm))
	g.productRows(tl, s, bt, m0, func(m, n, acc value.Value) {
		g.storeAcc(g.out, bt, m, n, M, N, acc)
	})
	g.barrier()
	g.ptrs[gd.dot] = g.out
	warps := int64(g.threads / 32)
	lane, warp := g.b.NewURem(tid, i64c(32)), g.b.NewUDiv(tid, i64c(32))
	g.strideLoop("wrow", warp, i64c(bm), i64c(warps), func(r value.Value) {
		m := g.b.NewAdd(m0, r)
		g.ifThen("rowin", g.b.NewICmp(enum.IPredSLT, m, i64c(M)), func() {
			g.rowGroup(rows, g.b.NewAdd(g.b.NewMul(bt, i64c(M)), m), lane, 32)
		})
	})
	grid := int64(s.Batch) * strips
	return grid * int64(g.threads), (2*K*bm*N + bm*N*int64(instrs)) / int64(g.threads)
}
