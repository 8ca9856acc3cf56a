package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// gpuGrad is one gradient product of a GPU attention_grad kernel. Its
// first operand, P or dS, has query rows and key columns; a product
// contracting the query rows (dK, dV: sums) is computed a strip of them
// at a time, each strip's share added to the result.
type gpuGrad struct {
	gd    *gpuDot
	tl    gpuTiler
	sums  bool
	index int // its result's
}

// emitGPUAttentionGrad lowers a kind=attention_grad fusion with callee c
// for a GPU and returns its lowering: FlashAttention-2's backward
// (emitGPUFlashGrad) where it applies, else by strips of whole rows
// (emitGPUGradStrips), as with XLC_GPU_ATTENTION=strips.
func (g *kernelBuilder) emitGPUAttentionGrad(c *ir.Func) (extent, cost int64, lowering string) {
	a, sp, sdp, grads := g.planGPUAttentionGrad(c)
	if g.mod.t.GPUAttention != "strips" {
		if extent, cost, ok := g.emitGPUFlashGrad(a, sp, sdp, grads); ok {
			return extent, cost, LowerFlashAttentionGrad
		}
	}
	extent, cost = g.emitGPUGradStrips(a, sp, sdp, grads)
	return extent, cost, LowerAttentionGrad
}

// planGPUAttentionGrad plans callee c's products for the tiled GPU dot:
// P's (the scores' with P's epilogue), dP's (with dS's) and the three
// gradients'.
func (g *kernelBuilder) planGPUAttentionGrad(c *ir.Func) (a *attentionGrad, sp, sdp *gpuDot, grads []gpuGrad) {
	a = planAttentionGrad(c)
	g.noteFills(a.p, a.ds, a.pHalf)
	sp = g.gpuDotFor(a.scores, a.p, a.pBody, []*ir.Value{a.p})
	sdp = g.gpuDotFor(a.dp, a.dp, a.dsBody, []*ir.Value{a.ds})
	read := []*ir.Value{a.p, a.ds}
	if a.pHalf != nil {
		read = append(read, a.pHalf)
	}
	for _, v := range read {
		g.ptrs[v] = g.out // read from memory, as they will be
	}
	grads = make([]gpuGrad, len(a.grads))
	for i, gr := range a.grads {
		gd := g.gpuDotFor(gr.dot, gr.dot, nil, nil)
		if gd == nil {
			fail("an attention_grad fusion's gradient is not the tiled GPU dot's")
		}
		if gr.root != gr.dot {
			gd.transposed = gr.root
		}
		grads[i] = gpuGrad{gd: gd, sums: gd.spec.TransA, index: i}
		if grads[i].sums && gr.root.Type.DType != ir.F32 {
			fail("an attention_grad fusion's sum over query rows is stored as %s, not f32", gr.root.Type.DType)
		}
	}
	for _, v := range read {
		delete(g.ptrs, v)
	}
	if sp == nil || sdp == nil {
		fail("an attention_grad fusion's products are not the tiled GPU dot's")
	}
	return a, sp, sdp, grads
}

// emitGPUGradStrips lowers attention's backward a, whose products are
// sp, sdp and grads, by strips of whole rows. A unit is one head, its
// query rows taken a strip at a time (the scores' tile height): the block
// recomputes the strip's P (the scores' tiles with P's elementwise
// epilogue) and dP into strips of global memory of its own, runs dS's row
// kernel a warp per row, then multiplies the strips: dQ's rows of the
// strip whole, and dK and dV as the strip's share of their sums over the
// query rows, added to what the earlier strips stored. One block owns a
// head's gradients, so the sums need no atomics and are the same run to
// run.
func (g *kernelBuilder) emitGPUGradStrips(a *attentionGrad, sp, sdp *gpuDot, grads []gpuGrad) (extent, cost int64) {
	tp := g.tiler(sp)
	threads := g.threads
	tdp := g.tiler(sdp)
	bm, _ := tp.tile()
	bmdp, _ := tdp.tile()
	M, N := int64(sp.spec.M), int64(sp.spec.N)
	same := g.threads == threads && bmdp == bm && sdp.spec.M == sp.spec.M && sdp.spec.N == sp.spec.N
	for i := range grads {
		gr := &grads[i]
		gr.tl = g.tiler(gr.gd)
		gbm, _ := gr.tl.tile()
		s := gr.gd.spec
		same = same && g.threads == threads && s.Batch == sp.spec.Batch &&
			(gr.sums && int64(s.K) == M && int64(s.M) == N || !gr.sums && gbm == bm && int64(s.M) == M && int64(s.K) == N)
	}
	if !same || sdp.spec.Batch != sp.spec.Batch {
		fail("an attention_grad fusion's products do not share the query strips")
	}
	// A block's strips: P, dP (f32; dS over it when f32), dS in half,
	// P's half copy.
	strip := bm * N
	pd, dsd := a.p.Type.DType, a.ds.Type.DType
	bytes := stripBytes(pd, strip) + stripBytes(ir.F32, strip)
	if dsd != ir.F32 {
		bytes += stripBytes(dsd, strip)
	}
	if a.pHalf != nil {
		bytes += stripBytes(a.pHalf.Type.DType, strip)
	}
	// A tile of a sum's product, for the adding pass (emitGPUGradStrip).
	tile := int64(0)
	for _, gr := range grads {
		tbm, tbn := gr.tl.tile()
		tile = max(tile, tbm*tbn)
	}
	bytes += stripBytes(ir.F32, tile)
	units := int64(sp.spec.Batch)
	grid, mine := g.attnBlocks(units, bytes)
	at := int64(0)
	p0, dp0 := g.carve(mine, &at, pd, strip), g.carve(mine, &at, ir.F32, strip)
	ds0 := dp0
	if dsd != ir.F32 {
		ds0 = g.carve(mine, &at, dsd, strip)
	}
	var ph0 value.Value
	if a.pHalf != nil {
		ph0 = g.carve(mine, &at, a.pHalf.Type.DType, strip)
	}
	tile0 := g.carve(mine, &at, ir.F32, tile)
	shape := a.p.Type.Shape
	g.strideLoop("head", g.ctaid(), i64c(units), i64c(grid), func(bt value.Value) {
		g.strideLoop("strip", i64c(0), i64c(M), i64c(bm), func(m0 value.Value) {
			row0 := g.b.NewAdd(g.b.NewMul(bt, i64c(M)), m0)
			off := g.b.NewMul(row0, i64c(N))
			pp, dpp := g.shifted(storageType(pd), p0, off), g.shifted(types.Float, dp0, off)
			dsp := g.shifted(storageType(dsd), ds0, off)
			// P: the scores' tiles into dP's strip, then P's epilogue
			// element by element into P's strip (applied to the
			// accumulators directly, it kept too many registers live).
			g.productRows(tp, sp.spec, bt, m0, func(m, n, acc value.Value) {
				g.storeAcc(dpp, bt, m, n, M, N, acc)
			})
			g.barrier()
			g.ptrs[a.scores] = dpp
			g.stripElems(m0, off, bm, M, N, func(lin value.Value) {
				g.storeAt(pd, g.elem(a.p, atLinear(shape, lin)), pp, lin)
			})
			delete(g.ptrs, a.scores)
			// dP's tiles overwrite the scores.
			g.barrier()
			// dP = dO·Vᵀ, zero outside the band dS needs.
			g.productRows(tdp, sdp.spec, bt, m0, func(m, n, acc value.Value) {
				g.storeAcc(dpp, bt, m, n, M, N, acc)
			})
			g.barrier()
			g.ptrs[a.p], g.ptrs[a.dp] = pp, dpp
			g.withResults([]*ir.Value{a.ds}, []value.Value{dsp}, func() { g.warpRows(a.rows, m0, row0, bm, M) })
			delete(g.ptrs, a.dp)
			g.ptrs[a.ds] = dsp
			if a.pHalf != nil {
				php := g.shifted(storageType(a.pHalf.Type.DType), ph0, off)
				g.stripElems(m0, off, bm, M, N, func(lin value.Value) {
					g.storeAt(a.pHalf.Type.DType, g.elem(a.pHalf, atLinear(shape, lin)), php, lin)
				})
				g.ptrs[a.pHalf] = php
			}
			g.barrier()
			for _, gr := range grads {
				g.withResults([]*ir.Value{a.grads[gr.index].root}, g.outs[gr.index:gr.index+1], func() {
					g.emitGPUGradStrip(gr, bt, m0, bm, tile0)
				})
			}
			g.forget([]*ir.Value{a.p, a.ds, a.pHalf}, nil)
			// The next strip overwrites what these products read.
			g.barrier()
		})
	})
	dh := int64(grads[0].gd.spec.N)
	work := units * (2*M*N*(int64(sp.spec.K)+int64(sdp.spec.K)+3*dh) + M*N*int64(len(a.dsBody)+len(a.pBody)))
	return grid * int64(threads), work / (grid * int64(threads))
}

// emitGPUGradStrip emits gradient gr's part for the strip of query rows
// [m0, m0+bm) of head bt, into g.out: a product over the keys gives the
// strip's rows of the result; a sum over the query rows adds the strip's
// share to each tile of the result (the first strip stores it), skipping
// the tiles the strip's k leave out of the operands' band. A sum's tile
// goes through tile, f32 of the block's own, from which the threads add
// it to the result an element at a time: adding straight from the
// accumulators held a load and an address for each at once, and spilled.
func (g *kernelBuilder) emitGPUGradStrip(gr gpuGrad, bt, m0 value.Value, bm int64, tile value.Value) {
	s := gr.gd.spec
	if !gr.sums {
		g.productRows(gr.tl, s, bt, m0, func(m, n, acc value.Value) {
			g.storeProduct(gr.gd, bt, m, n, acc)
		})
		return
	}
	tbm, tbn := gr.tl.tile()
	offA, offB := g.batchOffsets(s, bt)
	M, N := int64(s.M), int64(s.N)
	first := g.b.NewICmp(enum.IPredEQ, m0, i64c(0))
	smax := func(x, y value.Value) value.Value { return g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, x, y), x, y) }
	smin := func(x, y value.Value) value.Value { return g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, x, y), x, y) }
	g.strideLoop("gmtile", i64c(0), i64c(M), i64c(tbm), func(mt value.Value) {
		g.strideLoop("gntile", i64c(0), i64c(N), i64c(tbn), func(n0 value.Value) {
			klo, khi, live := g.bandRange(s, mt, n0, tbm, tbn)
			klo, khi = smax(klo, m0), smin(khi, g.b.NewAdd(m0, i64c(bm)))
			live = g.b.NewAnd(live, g.b.NewICmp(enum.IPredSLT, klo, khi))
			// Uniform over the block: every thread takes the same branch.
			g.ifThen("gsum", g.b.NewOr(first, live), func() {
				gr.tl.product(offA, offB, mt, n0, klo, g.b.NewSelect(live, khi, klo), func(m, n, acc value.Value) {
					at := g.b.NewAdd(g.b.NewMul(g.b.NewSub(m, mt), i64c(tbn)), g.b.NewSub(n, n0))
					g.storeAt(ir.F32, acc, tile, at)
				})
				g.barrier()
				g.strideLoop("gadd", g.tid(), i64c(tbm*tbn), i64c(int64(g.threads)), func(e value.Value) {
					m := g.b.NewAdd(mt, g.b.NewUDiv(e, i64c(tbn)))
					n := g.b.NewAdd(n0, g.b.NewURem(e, i64c(tbn)))
					g.ifThen("gstore", g.inside(m, M, n, N), func() {
						at := g.rootIndex(gr.gd, g.productIndex(bt, m, n, M, N))
						old := g.b.NewSelect(first, fconst(types.Float, 0), g.loadAt(ir.F32, g.out, at))
						g.storeAt(ir.F32, g.b.NewFAdd(old, g.loadAt(ir.F32, tile, e)), g.out, at)
					})
				})
				// The next tile's product writes tile again.
				g.barrier()
			})
		})
	})
}

// stripElems calls each, by the block's threads in turn, with the linear
// index of every element of a strip of rows [m0, m0+bm) (of M, each of N
// elements) whose first element is at off.
func (g *kernelBuilder) stripElems(m0, off value.Value, bm, M, N int64, each func(lin value.Value)) {
	rows := value.Value(g.b.NewSub(i64c(M), m0))
	rows = g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, rows, i64c(bm)), rows, i64c(bm))
	g.strideLoop("elems", g.tid(), g.b.NewMul(rows, i64c(N)), i64c(int64(g.threads)), func(e value.Value) {
		each(g.b.NewAdd(off, e))
	})
}
