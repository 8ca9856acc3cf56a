package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A flashGrad is the state of emitGPUFlashGrad: the backward's plan, its
// products' tilers (the gradients' reading P, P's half copy and dS from
// the block's tiles), the key tile's tiles, the strip's rows' sums D in
// shared memory, the thread's share of dQ, the current head and strip,
// and the partial sums of groups of strips.
type flashGrad struct {
	g       *kernelBuilder
	a       *attentionGrad
	sp, sdp *gpuDot
	grads   []gpuGrad
	red     *ir.Value // dS's row kernel's one reduction
	tp, tdp gpuTiler
	bm, bn  int64
	// p, ph and ds are the key tile's P, P's half copy (or nil) and dS; r
	// the reduction's terms, f32, over ds and ph.
	p, ph, ds, r value.Value
	d            value.Value // the strip's rows' reductions, f32
	dq           []value.Value
	started      value.Value // i1: a key tile of the strip has run
	skip         *triangle   // key tiles wholly outside it add nothing
	bt, m0, row0 value.Value
	sums         // the head's sums, by groups of strips
}

// emitGPUFlashGrad lowers attention's backward a (products sp, sdp and
// grads, planGPUAttentionGrad's) FlashAttention-2's way, or reports false
// before emitting code: where dS's row kernel has more than one
// reduction, a gradient's tile does not divide the key tile, or tiles
// exceed 64×64 (at 128×128 dQ's registers spilled). A unit is a group of
// a head's query strips (sums); per strip the block walks the key tiles
// computing dS, adding dS·K to dQ (in registers), Pᵀ·dO and dSᵀ·Q to the
// tile's rows of dV and dK; where dS's row kernel sums D itself, a first
// walk adds each row's terms of D. Key tiles where all these are zero
// (outside a causal mask) are skipped.
func (g *kernelBuilder) emitGPUFlashGrad(a *attentionGrad, sp, sdp *gpuDot, grads []gpuGrad) (extent, cost int64, ok bool) {
	k := &flashGrad{g: g, a: a, sp: sp, sdp: sdp}
	for _, w := range a.rows.row {
		if w.Op == ir.OpReduceMax || w.Op == ir.OpReduceSum && k.red != nil {
			return 0, 0, false
		}
		if w.Op == ir.OpReduceSum {
			k.red = w
		}
	}
	// With no reduction at all, each row's D comes in computed (passes'
	// attentionD): one pass over the key tiles.
	if k.red == nil && len(a.rows.row) > 0 || k.red != nil && k.red.Type.DType != ir.F32 {
		return 0, 0, false
	}
	k.tp = g.tiler(sp)
	threads := g.threads
	k.tdp = g.tiler(sdp)
	k.bm, k.bn = k.tp.tile()
	bm, bn := k.bm, k.bn
	if bm2, bn2 := k.tdp.tile(); bm2 != bm || bn2 != bn || g.threads != threads || bm*bn > 64*64 {
		return 0, 0, false
	}
	// The gradients read their first operand from the tiles: rows bn
	// apart.
	for _, gr := range grads {
		gd := *gr.gd
		gd.spec.LDA = int(bn)
		gr.gd = &gd
		gr.tl = g.tiler(&gd)
		gbm, _ := gr.tl.tile()
		if g.threads != threads || gr.sums && (gbm > bn || bn%gbm != 0) || !gr.sums && gbm != bm {
			return 0, 0, false
		}
		k.grads = append(k.grads, gr)
	}
	M, N := int64(sp.spec.M), int64(sp.spec.N)
	tile := bm * bn
	pd, dsd := a.p.Type.DType, a.ds.Type.DType
	phBytes := int64(0)
	if a.pHalf != nil {
		phBytes = stripBytes(a.pHalf.Type.DType, tile)
	}
	// r shares its bytes with dS and P's half copy: it is read before
	// they are written.
	region := stripBytes(dsd, tile) + phBytes
	if k.red != nil {
		region = max(stripBytes(ir.F32, tile), region)
	}
	pBytes := stripBytes(pd, tile)
	if k.red != nil {
		k.d = g.sharedArray(types.Float, bm)
	}
	heads := int64(sp.spec.Batch)
	k.planGroups(heads, (M+bm-1)/bm)
	units := heads * k.groups
	grid, base := g.tileMemory(units, pBytes+region)
	at := int64(0)
	k.p = g.carve(base, &at, pd, tile)
	base = g.b.NewGetElementPtr(types.I8, base, i64c(at))
	at = 0
	if k.red != nil {
		k.r = g.carve(base, &at, ir.F32, tile)
	}
	at = 0
	k.ds = g.carve(base, &at, dsd, tile)
	if a.pHalf != nil {
		k.ph = g.carve(base, &at, a.pHalf.Type.DType, tile)
	}
	k.skip = gradSkip(a, k.red)
	k.started = g.alloca(types.I1)
	g.strideLoop("unit", g.ctaid(), i64c(units), i64c(grid), func(u value.Value) {
		k.bt, k.grp = g.b.NewUDiv(u, i64c(k.groups)), g.b.NewURem(u, i64c(k.groups))
		k.zeroSums()
		// The group's strips: every groups-th, from its own.
		g.strideLoop("strip", g.b.NewMul(k.grp, i64c(bm)), i64c(M), i64c(bm*k.groups), func(m0 value.Value) {
			k.m0 = m0
			k.row0 = g.b.NewAdd(g.b.NewMul(k.bt, i64c(M)), m0)
			if k.red != nil {
				g.strideLoop("dz", g.tid(), i64c(bm), i64c(int64(g.threads)), func(r value.Value) {
					g.b.NewStore(fconst(types.Float, 0), g.b.NewGetElementPtr(types.Float, k.d, r))
				})
			}
			g.b.NewStore(constant.False, k.started)
			g.barrier()
			if k.red != nil {
				k.keys(k.termsOfD)
			}
			k.keys(k.gradients)
			k.storeDQ()
		})
		k.foldSums()
	})
	dh := int64(grads[0].gd.spec.N)
	passes := int64(1)
	if k.red != nil {
		passes = 2
	}
	work := heads * (2*M*N*(passes*int64(sp.spec.K+sdp.spec.K)+3*dh) + 2*M*N*int64(len(a.dsBody)+len(a.pBody)))
	return grid * int64(threads), work / (grid * int64(threads)), true
}

// gradSkip is the triangle outside which P, dS and the terms of dS's
// reduction red are all zero (a causal mask's), so that a key tile
// wholly outside it adds nothing, or nil.
func gradSkip(a *attentionGrad, red *ir.Value) *triangle {
	fp, ok := fillTriangle(a.p)
	fds, ok2 := fillTriangle(a.ds)
	if !ok || !ok2 || fp.c != 0 || fds.c != 0 || fp.t != fds.t || red != nil && !zeroOutside(red.Args[0], fp.t) || !tileTriangle(fp.t, len(a.p.Type.Shape)) {
		return nil
	}
	return &fp.t
}

// zeroOutside reports whether v is zero outside triangle t: a zero fill
// there, or a negation, a quotient or a product with such a factor. (A
// product of zero and an infinity is NaN, as the dot's bands assume
// away; see triangle.go.)
func zeroOutside(v *ir.Value, t triangle) bool {
	if f, ok := fillTriangle(v); ok && f.t == t && f.c == 0 {
		return true
	}
	switch v.Op {
	case ir.OpNeg, ir.OpConvert:
		return zeroOutside(v.Args[0], t)
	case ir.OpDiv:
		return zeroOutside(v.Args[0], t)
	case ir.OpMul:
		return zeroOutside(v.Args[0], t) || zeroOutside(v.Args[1], t)
	}
	return false
}

// keys runs step on every key tile of the strip, or those not wholly
// outside k.skip.
func (k *flashGrad) keys(step func(n0 value.Value)) {
	g := k.g
	N := int64(k.sp.spec.N)
	g.strideLoop("key", i64c(0), i64c(N), i64c(k.bn), func(n0 value.Value) {
		if k.skip == nil {
			step(n0)
			return
		}
		out := g.outsideTile(*k.skip, len(k.a.p.Type.Shape), k.m0, n0, k.bm, k.bn)
		g.ifThen("klive", g.b.NewXor(out, constant.True), func() { step(n0) })
	})
}

// keyTile runs tiler tl's product s for the key tile at column n0 of the
// strip, calling each with every element (m, n) inside the product, its
// index in P's shape, its place in the tiles and its value x; then waits.
func (k *flashGrad) keyTile(tl gpuTiler, s DotSpec, n0 value.Value, each func(m value.Value, ix *index, at, x value.Value)) {
	g := k.g
	M, N := int64(s.M), int64(s.N)
	offA, offB := g.batchOffsets(s, k.bt)
	klo, khi, live := g.bandRange(s, k.m0, n0, k.bm, k.bn)
	tl.product(offA, offB, k.m0, n0, klo, g.b.NewSelect(live, khi, klo), func(m, n, x value.Value) {
		g.ifThen("kin", g.inside(m, M, n, N), func() {
			ix := atLinear(k.a.p.Type.Shape, g.productIndex(k.bt, m, n, M, N))
			each(m, ix, g.tileAt(k.m0, n0, m, n, k.bn), x)
		})
	})
	g.barrier()
}

// pTile computes the key tile's P into its tile, and with half P's half
// copy.
func (k *flashGrad) pTile(n0 value.Value, half bool) {
	g, a := k.g, k.a
	k.keyTile(k.tp, k.sp.spec, n0, func(_ value.Value, ix *index, at, x value.Value) {
		g.rowVals = map[*ir.Value]value.Value{a.scores: x}
		p := g.elem(a.p, ix)
		g.storeAt(a.p.Type.DType, p, k.p, at)
		if half && a.pHalf != nil {
			g.rowVals = map[*ir.Value]value.Value{a.p: p}
			g.storeAt(a.pHalf.Type.DType, g.elem(a.pHalf, ix), k.ph, at)
		}
		g.rowVals = nil
	})
}

// dpTile runs dP's product for the key tile, calling each with the
// element (m, n) inside the product, its index in P's shape, its place in
// the tiles, and the values dP and P there.
func (k *flashGrad) dpTile(n0 value.Value, each func(m value.Value, ix *index, at, dp, p value.Value)) {
	k.keyTile(k.tdp, k.sdp.spec, n0, func(m value.Value, ix *index, at, x value.Value) {
		each(m, ix, at, x, k.g.loadAt(k.a.p.Type.DType, k.p, at))
	})
}

// termsOfD adds the key tile's terms of each row's reduction to D: the
// terms into r, then a few lanes per row sum them (flashLanes).
func (k *flashGrad) termsOfD(n0 value.Value) {
	g, a := k.g, k.a
	M, N := int64(k.sp.spec.M), int64(k.sp.spec.N)
	k.pTile(n0, false)
	cols := g.b.NewSub(i64c(N), n0)
	k.dpTile(n0, func(_ value.Value, ix *index, at, dp, p value.Value) {
		g.rowVals = map[*ir.Value]value.Value{a.dp: dp, a.p: p}
		g.storeAt(ir.F32, g.elem(k.red.Args[0], ix), k.r, at)
		g.rowVals = nil
	})
	g.laneRows(k.bm, k.bn, func(r, sub value.Value, lanes int64) {
		sum := fconst(types.Float, 0)
		for q := int64(0); q < k.bn/lanes; q++ {
			c := g.b.NewAdd(sub, i64c(lanes*q))
			x := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, k.r, g.b.NewAdd(g.b.NewMul(r, i64c(k.bn)), c)))
			sum = g.b.NewFAdd(sum, g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, c, cols), x, fconst(types.Float, 0)))
		}
		sum = g.laneReduce(sum, func(x, y value.Value) value.Value { return g.b.NewFAdd(x, y) }, lanes)
		in := g.b.NewAnd(g.b.NewICmp(enum.IPredSLT, g.b.NewAdd(k.m0, r), i64c(M)), g.b.NewICmp(enum.IPredEQ, sub, i64c(0)))
		g.ifThen("dadd", in, func() {
			p := g.b.NewGetElementPtr(types.Float, k.d, r)
			g.b.NewStore(g.b.NewFAdd(g.b.NewLoad(types.Float, p), sum), p)
		})
	})
	g.barrier()
}

// gradients computes the key tile's dS from P, dP and D, adds dS·K to
// the strip's dQ and Pᵀ·dO and dSᵀ·Q to the tile's rows of dV and dK.
func (k *flashGrad) gradients(n0 value.Value) {
	g, a := k.g, k.a
	M := int64(k.sp.spec.M)
	k.pTile(n0, true)
	k.dpTile(n0, func(m value.Value, ix *index, at, dp, p value.Value) {
		row := g.b.NewAdd(g.b.NewMul(k.bt, i64c(M)), m)
		g.rowVals = map[*ir.Value]value.Value{a.dp: dp, a.p: p}
		if k.red != nil {
			g.rowVals[k.red] = g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, k.d, g.b.NewSub(m, k.m0)))
		}
		for _, w := range a.rows.row {
			if w != k.red {
				g.rowVals[w] = g.elemOp(w, atLinear(w.Type.Shape, row))
			}
		}
		g.storeAt(a.ds.Type.DType, g.elem(a.ds, ix), k.ds, at)
		g.rowVals = nil
	})
	// The gradients read the tiles: element (q, key) at (q − m0)·bn +
	// key − n0.
	shift := g.b.NewAdd(g.b.NewMul(k.m0, i64c(k.bn)), n0)
	g.ptrs[a.p] = g.shifted(storageType(a.p.Type.DType), k.p, shift)
	g.ptrs[a.ds] = g.shifted(storageType(a.ds.Type.DType), k.ds, shift)
	if a.pHalf != nil {
		g.ptrs[a.pHalf] = g.shifted(storageType(a.pHalf.Type.DType), k.ph, shift)
	}
	first := g.b.NewXor(g.b.NewLoad(types.I1, k.started), constant.True)
	for _, gr := range k.grads {
		if gr.sums {
			k.addSums(gr, n0)
		} else {
			k.addDQ(gr, n0, first)
		}
	}
	g.forget([]*ir.Value{a.p, a.ds, a.pHalf}, nil)
	g.b.NewStore(constant.True, k.started)
	// The next key tile's products write the tiles these read.
	g.barrier()
}

// addDQ adds the key tile's dS·K to the thread's share of the strip's dQ
// (first: the strip's first tile, which sets it).
func (k *flashGrad) addDQ(gr gpuGrad, n0, first value.Value) {
	g := k.g
	_, offB := g.batchOffsets(gr.gd.spec, k.bt)
	g.slotProducts(gr.tl, gr.gd.spec, offB, k.m0, n0, k.bn, &k.dq, func(_, _, o, x value.Value) {
		old := g.b.NewSelect(first, fconst(types.Float, 0), g.b.NewLoad(types.Float, o))
		g.b.NewStore(g.b.NewFAdd(old, x), o)
	})
}

// storeDQ stores the strip's dQ, each of the thread's elements met again
// in the same order by a product of no k, through its epilogue.
func (k *flashGrad) storeDQ() {
	g := k.g
	for _, gr := range k.grads {
		if gr.sums {
			continue
		}
		_, offB := g.batchOffsets(gr.gd.spec, k.bt)
		g.ptrs[k.a.ds] = k.ds
		g.slotProducts(gr.tl, gr.gd.spec, offB, k.m0, nil, 0, &k.dq, func(m, n, o, _ value.Value) {
			// A strip whose every key tile was skipped has dQ 0.
			x := g.b.NewSelect(g.b.NewLoad(types.I1, k.started), g.b.NewLoad(types.Float, o), fconst(types.Float, 0))
			g.withResults([]*ir.Value{k.a.grads[gr.index].root}, g.outs[gr.index:gr.index+1], func() {
				g.storeProduct(gr.gd, k.bt, m, n, x)
			})
		})
		delete(g.ptrs, k.a.ds)
	}
	g.barrier()
}
