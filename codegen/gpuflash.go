package codegen

import (
	"math"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A flashSoftmax is an attention fusion's row kernel in the form an
// online softmax computes (FlashAttention-2, Dao 2023): s, elementwise
// from the scores, its row maximum max, z = exp(s − max), its row sum
// sum, p = z / sum, and the probabilities P·V reads made from p by steps
// that are linear in it (a mask's select of zero, dropout's, a scale, a
// conversion to half). Then P·V = (Σ over key tiles of the tile's share,
// rescaled as the maximum grows) / sum, so neither the scores nor P of a
// whole row are ever held.
type flashSoftmax struct {
	s, max, z, sum, p *ir.Value
}

// planFlash returns a's row kernel as a flashSoftmax, or nil when it has
// another form (the strips' kernel then computes it): one reduce_max and
// one reduce_sum of f32, z and p as above, every value depending on the
// reductions one of these or a linear step from p to P, and the
// fusion's other results the maximum or the sum.
func planFlash(a *attention) *flashSoftmax {
	f := &flashSoftmax{}
	for _, v := range a.rowBody {
		switch {
		case v.Op == ir.OpReduceMax && f.max == nil:
			f.max = v
		case v.Op == ir.OpReduceSum && f.sum == nil:
			f.sum = v
		case v.Op == ir.OpReduceMax || v.Op == ir.OpReduceSum:
			return nil
		}
	}
	if f.max == nil || f.sum == nil || f.max.Type.DType != ir.F32 || f.sum.Type.DType != ir.F32 {
		return nil
	}
	f.s, f.z = f.max.Args[0], f.sum.Args[0]
	if f.z.Op != ir.OpExp || f.z.Args[0].Op != ir.OpSub {
		return nil
	}
	if sub := f.z.Args[0]; sub.Args[0] != f.s || !leadsTo(sub.Args[1], f.max) {
		return nil
	}
	allowed := map[*ir.Value]bool{f.max: true, f.sum: true, f.z: true, f.z.Args[0]: true}
	for v := f.z.Args[0].Args[1]; v != f.max; v = v.Args[0] {
		allowed[v] = true
	}
	// Walk back from P to p through linear steps.
	dep := rowDependent(a.rowBody, f.max, f.sum)
	v := a.p
	for {
		if v.Op == ir.OpDiv && v.Args[0] == f.z && leadsTo(v.Args[1], f.sum) {
			f.p = v
			break
		}
		next := linearStep(v, dep)
		if next == nil {
			return nil
		}
		allowed[v] = true
		v = next
	}
	allowed[f.p] = true
	for w := f.p.Args[1]; w != f.sum; w = w.Args[0] {
		allowed[w] = true
	}
	for _, v := range a.rowBody {
		if dep[v] && !allowed[v] {
			return nil
		}
	}
	for _, r := range a.rowResults[1:] {
		if r != f.max && r != f.sum {
			return nil
		}
	}
	return f
}

// leadsTo reports whether v is r seen through broadcasts, reshapes and
// stop_gradients.
func leadsTo(v, r *ir.Value) bool {
	for v != r {
		switch v.Op {
		case ir.OpBroadcast, ir.OpReshape, ir.OpStopGradient:
			v = v.Args[0]
		default:
			return false
		}
	}
	return true
}

// rowDependent returns the values of body that depend on the reductions
// max or sum.
func rowDependent(body []*ir.Value, max, sum *ir.Value) map[*ir.Value]bool {
	dep := map[*ir.Value]bool{max: true, sum: true}
	for _, v := range body {
		for _, x := range v.Args {
			if dep[x] {
				dep[v] = true
			}
		}
	}
	return dep
}

// linearStep returns the operand of v that v is linear in, when v is a
// step an online softmax may take on unnormalized probabilities: a
// conversion between floats, a negation, a product with or a quotient by
// a value not depending on the row's reductions, or a select of it and
// zero by such a predicate. Otherwise nil.
func linearStep(v *ir.Value, dep map[*ir.Value]bool) *ir.Value {
	free := func(x *ir.Value) bool { return !dep[x] }
	switch v.Op {
	case ir.OpConvert:
		if v.Type.DType.IsFloat() && v.Args[0].Type.DType.IsFloat() {
			return v.Args[0]
		}
	case ir.OpNeg:
		return v.Args[0]
	case ir.OpMul:
		if free(v.Args[1]) {
			return v.Args[0]
		}
		if free(v.Args[0]) {
			return v.Args[1]
		}
	case ir.OpDiv:
		if free(v.Args[1]) {
			return v.Args[0]
		}
	case ir.OpSelect:
		if !free(v.Args[0]) {
			return nil
		}
		if isZero(v.Args[2]) {
			return v.Args[1]
		}
		if isZero(v.Args[1]) {
			return v.Args[2]
		}
	}
	return nil
}

// isZero reports whether v is a constant zero.
func isZero(v *ir.Value) bool {
	return v.Op == ir.OpConstant && v.Attrs.Float("value") == 0
}

// emitGPUFlash lowers an attention fusion whose row kernel is an online
// softmax (fl), FlashAttention-2's forward per thread block: a unit is a
// strip of query rows of one batch and head, the scores' tile tall; the
// block walks the keys a tile at a time (flashKernel.step), then divides
// its share of the output by the rows' sums, stores it through P·V's
// epilogue, and stores the rows' maximum and sum. Where the scores hold a
// constant outside a causal triangle (a mask's fill), the key tiles
// wholly outside it come last, and only when some row of the strip needs
// them: when the fill is not far enough below the row's maximum for exp
// to make it 0.
func (g *kernelBuilder) emitGPUFlash(a *attention, fl *flashSoftmax, sc, pv *gpuDot) (extent, cost int64) {
	k := &flashKernel{g: g, a: a, fl: fl, sc: sc, pv: pv}
	s1, s3 := sc.spec, pv.spec
	k.t1 = g.tiler(sc)
	threads := g.threads
	bm, bn := k.t1.tile()
	// P·V reads P from the block's tile: rows bn apart, its columns the
	// key tile's.
	pt := *pv
	pt.spec.LDA = int(bn)
	k.t3 = g.tiler(&pt)
	bm3, _ := k.t3.tile()
	M, N := int64(s1.M), int64(s1.N)
	if g.threads != threads || bm3 != bm || s3.Batch != s1.Batch || int64(s3.M) != M || int64(s3.K) != N || s3.TransA {
		fail("an attention fusion's products take different tiles (%d and %d threads, %d and %d rows)", threads, g.threads, bm, bm3)
	}
	pd := a.p.Type.DType
	tile := bm * bn
	strips := (M + bm - 1) / bm
	units := int64(s1.Batch) * strips
	k.st = &flashTiles{bm: bm, bn: bn,
		max: g.sharedArray(types.Float, bm), sum: g.sharedArray(types.Float, bm), alpha: g.sharedArray(types.Float, bm),
	}
	need := g.sharedArray(types.I32, 1)
	// The key tile's scores and P (f32 P over the scores: a lane reads an
	// element's score before it writes its P).
	pb := stripBytes(pd, tile)
	if pd == ir.F32 {
		pb = 0
	}
	grid, base := g.tileMemory(units, stripBytes(ir.F32, tile)+pb)
	at := int64(0)
	k.st.s = g.carve(base, &at, ir.F32, tile)
	k.st.p = k.st.s
	if pd != ir.F32 {
		k.st.p = g.carve(base, &at, pd, tile)
	}
	rank := len(a.scores.Type.Shape)
	f, masked := fillTriangle(fl.s)
	masked = masked && tileTriangle(f.t, rank)
	k.started = g.alloca(types.I1)
	g.strideLoop("unit", g.ctaid(), i64c(units), i64c(grid), func(u value.Value) {
		k.bt = g.b.NewUDiv(u, i64c(strips))
		k.m0 = g.b.NewMul(g.b.NewURem(u, i64c(strips)), i64c(bm))
		k.row0 = g.b.NewAdd(g.b.NewMul(k.bt, i64c(M)), k.m0)
		k.offQ, k.offK = g.batchOffsets(s1, k.bt)
		_, k.offV = g.batchOffsets(s3, k.bt)
		g.b.NewStore(constant.False, k.started)
		if !masked {
			g.strideLoop("key", i64c(0), i64c(N), i64c(bn), k.step)
			k.finish()
			return
		}
		// A tile wholly outside the triangle holds the fill f.
		outside := func(n0 value.Value) value.Value { return g.outsideTile(f.t, rank, k.m0, n0, bm, bn) }
		g.ifThen("needz", g.b.NewICmp(enum.IPredEQ, g.tid(), i64c(0)), func() { g.b.NewStore(i32c(0), need) })
		g.barrier()
		g.strideLoop("key", i64c(0), i64c(N), i64c(bn), func(n0 value.Value) {
			g.ifThen("live", g.b.NewXor(outside(n0), constant.True), func() { k.step(n0) })
		})
		// A row needs the fill's tiles unless its maximum is finite and
		// exp(f − max) is 0; every row does when no tile ran (its
		// maximum is not the strip's yet).
		started := g.b.NewLoad(types.I1, k.started)
		g.strideLoop("need", g.tid(), i64c(bm), i64c(int64(g.threads)), func(r value.Value) {
			mx := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, k.st.max, r))
			fine := g.b.NewAnd(g.b.NewFCmp(enum.FPredOGT, mx, fconst(types.Float, math.Inf(-1))),
				g.b.NewFCmp(enum.FPredOLE, g.b.NewFSub(fconst(types.Float, f.c), mx), fconst(types.Float, -128)))
			fine = g.b.NewAnd(fine, started)
			g.ifThen("needs", g.b.NewAnd(g.b.NewICmp(enum.IPredSLT, g.b.NewAdd(k.m0, r), i64c(M)), g.b.NewXor(fine, constant.True)), func() {
				g.b.NewStore(i32c(1), need)
			})
		})
		g.barrier()
		g.ifThen("fills", g.b.NewICmp(enum.IPredNE, g.b.NewLoad(types.I32, need), i32c(0)), func() {
			g.strideLoop("fkey", i64c(0), i64c(N), i64c(bn), func(n0 value.Value) {
				g.ifThen("fill", outside(n0), func() { k.step(n0) })
			})
		})
		k.finish()
	})
	k1 := int64(s1.K)
	work := units * (2*bm*N*(k1+int64(s3.N)) + bm*N*int64(1+len(a.rowBody)))
	return grid * int64(threads), work / (grid * int64(threads))
}

// A flashKernel is the state of emitGPUFlash: the fusion, its products
// and their tilers (t3 reading P from the block's tile), the tiles, the
// thread's share of the output (out, f32 slots in the order the P·V tiler
// hands its elements out) and the current unit's batch, strip and
// operand offsets.
type flashKernel struct {
	g                              *kernelBuilder
	a                              *attention
	fl                             *flashSoftmax
	sc, pv                         *gpuDot
	t1, t3                         gpuTiler
	st                             *flashTiles
	out                            []value.Value
	started                        value.Value // i1: a key tile of the unit has run
	bt, m0, row0, offQ, offK, offV value.Value
}

// step runs the key tile at column n0: its scores into the scores tile,
// the rows' online softmax step (flashRows), and the tile's P times its
// rows of V added to the output, what the earlier tiles added rescaled.
func (k *flashKernel) step(n0 value.Value) {
	g, st, a := k.g, k.st, k.a
	s1, s3 := k.sc.spec, k.pv.spec
	M, N := int64(s1.M), int64(s1.N)
	bm, bn := st.bm, st.bn
	first := g.b.NewXor(g.b.NewLoad(types.I1, k.started), constant.True)
	klo, khi, live := g.bandRange(s1, k.m0, n0, bm, bn)
	k.t1.product(k.offQ, k.offK, k.m0, n0, klo, g.b.NewSelect(live, khi, klo), func(m, n, x value.Value) {
		g.ifThen("sstore", g.inside(m, M, n, N), func() {
			g.b.NewStore(x, g.b.NewGetElementPtr(types.Float, st.s, g.tileAt(k.m0, n0, m, n, bn)))
		})
	})
	g.barrier()
	g.flashRows(a, k.fl, st, first, k.m0, n0, k.row0, M, N)
	g.barrier()
	// P's element (m, kk) at the tile's (m − m0)·bn + kk − n0.
	pd := a.p.Type.DType
	g.ptrs[a.p] = g.shifted(storageType(pd), st.p, g.b.NewAdd(g.b.NewMul(k.m0, i64c(bn)), n0))
	g.slotProducts(k.t3, s3, k.offV, k.m0, n0, bn, &k.out, func(m, _, o, x value.Value) {
		al := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, st.alpha, g.b.NewSub(m, k.m0)))
		old := g.b.NewSelect(first, fconst(types.Float, 0), g.b.NewFMul(g.b.NewLoad(types.Float, o), al))
		g.b.NewStore(g.b.NewFAdd(old, x), o)
	})
	delete(g.ptrs, a.p)
	g.b.NewStore(constant.True, k.started)
}

// finish stores the unit's rows' maximum and sum, then its output: each
// of the thread's elements, met again in the same order by a product of
// no k, divided by its row's sum, through P·V's epilogue.
func (k *flashKernel) finish() {
	g, st, a := k.g, k.st, k.a
	M := int64(k.sc.spec.M)
	g.strideLoop("rres", g.tid(), i64c(st.bm), i64c(int64(g.threads)), func(r value.Value) {
		g.ifThen("rresin", g.b.NewICmp(enum.IPredSLT, g.b.NewAdd(k.m0, r), i64c(M)), func() {
			for i, res := range g.results[1:] {
				from := st.max
				if res == k.fl.sum {
					from = st.sum
				}
				x := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, from, r))
				g.storeAt(ir.F32, x, g.outs[i+1], g.b.NewAdd(k.row0, r))
			}
		})
	})
	g.ptrs[a.p] = st.p
	g.slotProducts(k.t3, k.pv.spec, k.offV, k.m0, nil, 0, &k.out, func(m, n, o, _ value.Value) {
		l := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, st.sum, g.b.NewSub(m, k.m0)))
		g.withResults([]*ir.Value{a.root}, g.outs[:1], func() {
			g.storeProduct(k.pv, k.bt, m, n, g.b.NewFDiv(g.b.NewLoad(types.Float, o), l))
		})
	})
	delete(g.ptrs, a.p)
	// The next unit's rows overwrite the sums this one's stores read.
	g.barrier()
}

// flashTiles are a flash attention block's tiles: the key tile's scores
// (f32) and probabilities (P's type) in global memory of the block's own,
// bm rows of bn, and each row's running maximum and sum and the factor
// by which the last tile rescaled them, in shared memory.
type flashTiles struct {
	s, p, max, sum, alpha value.Value
	bm, bn                int64
}

// tileAt is the place of a product's element (m, n) in a tile of rows bn
// elements apart whose first element is (m0, n0).
func (g *kernelBuilder) tileAt(m0, n0, m, n value.Value, bn int64) value.Value {
	return g.b.NewAdd(g.b.NewMul(g.b.NewSub(m, m0), i64c(bn)), g.b.NewSub(n, n0))
}

// flashRows runs the online softmax's step for the key tile at column n0
// on the strip of rows from m0 (tensor row row0) of M rows of N keys,
// flashLanes lanes per row: the tile's s, the row's new maximum, z =
// exp(s − max) and P from it into the P tile, and the new sum; the row's
// first lane keeps the maximum, the sum and the factor exp(old max − new
// max) that rescales the earlier tiles' share. first marks the row's
// first tile. A column past N counts as −inf, and rows past M compute the
// last row's values and keep none, so that every lane shuffles.
func (g *kernelBuilder) flashRows(a *attention, fl *flashSoftmax, st *flashTiles, first, m0, n0, row0 value.Value, M, N int64) {
	pd := a.p.Type.DType
	f32 := types.Float
	inf := fconst(f32, math.Inf(-1))
	// max with NaN kept, as the unfused reduce_max.
	fmax := func(x, y value.Value) value.Value {
		pick := g.b.NewOr(g.b.NewFCmp(enum.FPredUNO, y, y), g.b.NewFCmp(enum.FPredOGT, y, x))
		return g.b.NewSelect(pick, y, x)
	}
	fadd := func(x, y value.Value) value.Value { return g.b.NewFAdd(x, y) }
	g.laneRows(st.bm, st.bn, func(r, sub value.Value, lanes int64) {
		in := g.b.NewICmp(enum.IPredSLT, g.b.NewAdd(m0, r), i64c(M))
		last := g.b.NewAdd(g.b.NewSub(row0, m0), i64c(M-1))
		kept := g.dims(atLinear(a.rows.rows, g.b.NewSelect(in, g.b.NewAdd(row0, r), last)))
		type elt struct {
			ix       *index
			at       value.Value // in the tiles
			valid, s value.Value
		}
		var es []elt
		tmax := inf
		for q := int64(0); q < st.bn/lanes; q++ {
			c := g.b.NewAdd(sub, i64c(lanes*q))
			col := g.b.NewAdd(n0, c)
			e := elt{at: g.b.NewAdd(g.b.NewMul(r, i64c(st.bn)), c), valid: g.b.NewICmp(enum.IPredSLT, col, i64c(N))}
			e.ix = g.rowElem(a.rows, kept, g.min64(col, i64c(N-1)))
			g.rowVals = map[*ir.Value]value.Value{a.scores: g.b.NewLoad(f32, g.b.NewGetElementPtr(f32, st.s, e.at))}
			e.s = g.b.NewSelect(e.valid, g.elem(fl.s, e.ix), inf)
			tmax = fmax(tmax, e.s)
			es = append(es, e)
		}
		tmax = g.laneReduce(tmax, fmax, lanes)
		slot := func(p value.Value) value.Value { return g.b.NewGetElementPtr(f32, p, r) }
		mold := g.b.NewSelect(first, inf, g.b.NewLoad(f32, slot(st.max)))
		mnew := fmax(mold, tmax)
		// A row of −inf so far subtracts 0, so that exp gives 0, not NaN.
		msub := g.b.NewSelect(g.b.NewFCmp(enum.FPredOEQ, mnew, inf), fconst(f32, 0), mnew)
		alpha := g.unary(ir.OpExp, ir.F32, g.b.NewFSub(mold, msub))
		tsum := fconst(f32, 0)
		for _, e := range es {
			g.rowVals = map[*ir.Value]value.Value{fl.s: e.s, fl.max: msub}
			z := g.b.NewSelect(e.valid, g.elem(fl.z, e.ix), fconst(f32, 0))
			g.rowVals[fl.p] = z
			g.storeAt(pd, g.elem(a.p, e.ix), st.p, e.at)
			tsum = fadd(tsum, z)
		}
		g.rowVals = nil
		tsum = g.laneReduce(tsum, fadd, lanes)
		lold := g.b.NewSelect(first, fconst(f32, 0), g.b.NewLoad(f32, slot(st.sum)))
		lnew := g.b.NewFAdd(g.b.NewFMul(alpha, lold), tsum)
		// Every lane has read the row's maximum and sum before the first
		// writes them.
		g.syncWarp()
		g.ifThen("fkeep", g.b.NewAnd(in, g.b.NewICmp(enum.IPredEQ, sub, i64c(0))), func() {
			g.b.NewStore(mnew, slot(st.max))
			g.b.NewStore(lnew, slot(st.sum))
			g.b.NewStore(alpha, slot(st.alpha))
		})
	})
}
