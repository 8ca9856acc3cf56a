package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// The GPU attention kernels' scratch: a block's strips live in global
// memory, in an array the module's attention kernels share (a GPU runs
// them one after another), at most gpuAttnScratch bytes for all of a
// kernel's blocks; a kernel launches at most gpuAttnBlocks blocks (about
// four per SM of an H100), fewer when its strips are large.
const (
	gpuAttnScratch = 128 << 20
	gpuAttnBlocks  = 512
)

// attnBlocks returns the grid of a GPU attention kernel with units units
// of work, each block's scratch being bytes bytes, and the start of the
// block's own scratch.
func (g *kernelBuilder) attnBlocks(units, bytes int64) (grid int64, mine value.Value) {
	if bytes > gpuAttnScratch {
		fail("an attention kernel's block needs %d bytes of scratch, more than %d", bytes, int64(gpuAttnScratch))
	}
	grid = max(1, min(units, int64(GPUUnitGrid), gpuAttnBlocks, gpuAttnScratch/bytes))
	base := g.moduleScratch("xlc.attn.scratch", grid*bytes)
	return grid, g.b.NewGetElementPtr(types.I8, base, g.b.NewMul(g.ctaid(), i64c(bytes)))
}

// carve returns the part of scratch at byte offset *at holding n elements
// of type d, as a pointer to them, and moves *at past it (16-byte aligned).
func (g *kernelBuilder) carve(scratch value.Value, at *int64, d ir.DType, n int64) value.Value {
	p := g.b.NewBitCast(g.b.NewGetElementPtr(types.I8, scratch, i64c(*at)), types.NewPointer(storageType(d)))
	*at += stripBytes(d, n)
	return p
}

// stripBytes is the scratch that n elements of type d take (carve).
func stripBytes(d ir.DType, n int64) int64 { return (n*int64(d.Size()) + 15) / 16 * 16 }

// emitGPUAttention lowers a kind=attention fusion with callee c for a
// GPU and returns its lowering: flash attention (emitGPUFlash) where the
// row kernel is a softmax an online one can compute, else by strips of
// whole rows (emitGPUStrips), as with XLC_GPU_ATTENTION=strips.
func (g *kernelBuilder) emitGPUAttention(c *ir.Func) (extent, cost int64, lowering string) {
	a := planAttention(c)
	// P·V's band comes from P's mask: plan it with P as if read from
	// memory, as it will be.
	g.noteFills(a.p)
	defer delete(g.fills, a.p)
	g.ptrs[a.p] = g.out
	var pv *gpuDot
	g.withResults([]*ir.Value{a.root}, g.outs[:1], func() { pv = g.planGPUDot(a.pvBody, a.root) })
	delete(g.ptrs, a.p)
	sc := g.gpuDotFor(a.scores, a.scores, append(slices.Clone(a.rowBody), a.scores), a.rowResults)
	if sc == nil || pv == nil || pv.dot != a.pv {
		fail("an attention fusion's products are not the tiled GPU dot's")
	}
	if fl := planFlash(a); fl != nil && g.mod.t.GPUAttention != "strips" {
		extent, cost = g.emitGPUFlash(a, fl, sc, pv)
		return extent, cost, LowerFlashAttention
	}
	extent, cost = g.emitGPUStrips(a, sc, pv)
	return extent, cost, LowerAttention
}

// emitGPUStrips lowers attention a, whose products are sc and pv, by the
// CPU strips' algorithm per thread block: a unit is a strip of query rows
// of one batch and head, as many as the scores' tile has. The block
// computes the strip's scores into global memory of its own, waits, turns
// them into P with the row kernel, a warp per row (in place, or into a
// half strip when P·V reads P in half), waits, and multiplies the strip
// by V into the result with P·V's epilogue. P never reaches the arena.
// Blocks take units a grid apart, the grid as large as the module's
// scratch allows; dropout's draws are computed where the row kernel reads
// them.
func (g *kernelBuilder) emitGPUStrips(a *attention, sc, pv *gpuDot) (extent, cost int64) {
	s1, s3 := sc.spec, pv.spec
	t1 := g.tiler(sc)
	threads := g.threads
	t3 := g.tiler(pv)
	bm, _ := t1.tile()
	bm3, _ := t3.tile()
	M, N := int64(s1.M), int64(s1.N)
	if g.threads != threads || bm3 != bm || s3.Batch != s1.Batch || int64(s3.M) != M || int64(s3.K) != N {
		fail("an attention fusion's products take different tiles (%d and %d threads, %d and %d rows)", threads, g.threads, bm, bm3)
	}
	// A block's strips: bm rows of f32 scores, then of P when it is half.
	pd := a.p.Type.DType
	strip := bm * N
	bytes := stripBytes(ir.F32, strip)
	if pd != ir.F32 {
		bytes += stripBytes(pd, strip)
	}
	strips := (M + bm - 1) / bm
	units := int64(s1.Batch) * strips
	grid, mine := g.attnBlocks(units, bytes)
	at := int64(0)
	sc32 := g.carve(mine, &at, ir.F32, strip)
	half := sc32
	if pd != ir.F32 {
		half = g.carve(mine, &at, pd, strip)
	}
	g.strideLoop("unit", g.ctaid(), i64c(units), i64c(grid), func(u value.Value) {
		bt := g.b.NewUDiv(u, i64c(strips))
		m0 := g.b.NewMul(g.b.NewURem(u, i64c(strips)), i64c(bm))
		row0 := g.b.NewAdd(g.b.NewMul(bt, i64c(M)), m0)
		// Pointers at which the whole tensors' linear indices of the
		// strip's rows find the block's strips.
		scores := g.shifted(types.Float, sc32, g.b.NewMul(row0, i64c(N)))
		probs := scores
		if pd != ir.F32 {
			probs = g.shifted(storageType(pd), half, g.b.NewMul(row0, i64c(N)))
		}
		g.productRows(t1, s1, bt, m0, func(m, n, acc value.Value) {
			g.storeAcc(scores, bt, m, n, M, N, acc)
		})
		g.barrier()
		g.ptrs[a.scores] = scores
		g.withResults(a.rowResults, append([]value.Value{probs}, g.outs[1:]...), func() {
			g.warpRows(a.rows, m0, row0, bm, M)
		})
		delete(g.ptrs, a.scores)
		g.barrier()
		g.ptrs[a.p] = probs
		g.withResults([]*ir.Value{a.root}, g.outs[:1], func() {
			g.productRows(t3, s3, bt, m0, func(m, n, acc value.Value) {
				g.storeProduct(pv, bt, m, n, acc)
			})
		})
		delete(g.ptrs, a.p)
		// The next unit's scores overwrite what this one's P·V read.
		g.barrier()
	})
	k1, k3 := int64(s1.K), int64(s3.N)
	work := units * (2*bm*N*(k1+k3) + bm*N*int64(1+len(a.rowBody)))
	return grid * int64(threads), work / (grid * int64(threads))
}

// warpRows runs row kernel p on a strip of rows, [m0, m0+bm) of a matrix
// of M rows, row m0 being the tensors' row row0: a warp of the block per
// row.
func (g *kernelBuilder) warpRows(p *rowPlan, m0, row0 value.Value, bm, M int64) {
	tid := g.tid()
	lane, warp := g.b.NewURem(tid, i64c(32)), g.b.NewUDiv(tid, i64c(32))
	g.strideLoop("wrow", warp, i64c(bm), i64c(int64(g.threads/32)), func(r value.Value) {
		g.ifThen("rowin", g.b.NewICmp(enum.IPredSLT, g.b.NewAdd(m0, r), i64c(M)), func() {
			g.rowGroup(p, g.b.NewAdd(row0, r), lane, 32)
		})
	})
}
