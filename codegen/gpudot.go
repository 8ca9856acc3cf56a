package codegen

import (
	"fmt"
	"os"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// gpuDotTile is the tiled GPU dot's blocking: a block of 16×16 threads
// computes BM×BN of one batch's C, stepping through K by BK columns of A
// and rows of B staged in shared memory; each thread keeps BM/16 × BN/16
// results in registers.
type gpuDotTile struct{ BM, BN, BK int }

// gpuDotTiles are the tiles a GPU target may use, by their names; the
// first is the default.
var gpuDotTiles = []gpuDotTile{{64, 64, 16}, {128, 64, 16}, {64, 128, 16}, {128, 128, 8}, {32, 32, 16}}

func (t gpuDotTile) String() string { return fmt.Sprintf("%dx%dx%d", t.BM, t.BN, t.BK) }

// gpuDotTileFor returns the tile a GPU target names ("" the default).
func gpuDotTileFor(name string) (gpuDotTile, error) {
	return tileNamed(gpuDotTiles, "XLC_GPU_DOT", "GPU dot", name)
}

// tileNamed returns the tile of tiles (the first the default) that name
// names, "" the default, or an error naming env, what the tiles are and
// the names there are.
func tileNamed[T fmt.Stringer](tiles []T, env, what, name string) (T, error) {
	if name == "" {
		return tiles[0], nil
	}
	var names []string
	for _, t := range tiles {
		if t.String() == name {
			return t, nil
		}
		names = append(names, t.String())
	}
	var none T
	return none, fmt.Errorf("%s=%s: unknown %s tile (have %v)", env, name, what, names)
}

// tileFromEnv is the tile name the environment variable env gives GPU
// targets made now, checked by tileFor; "" for the default.
func tileFromEnv[T any](env string, tileFor func(string) (T, error)) (string, error) {
	name := os.Getenv(env)
	_, err := tileFor(name)
	return name, err
}

// gpuDot is the use of the tiled GPU dot for one kernel: the dot, its
// spec (dense C) and the root of its elementwise epilogue.
type gpuDot struct {
	dot, root *ir.Value
	spec      DotSpec
	// transposed, when set, is the kernel's result, a transpose of the
	// product (attention's P·V and gradients): the epilogue stores each
	// element at its place in that order.
	transposed *ir.Value
}

// planGPUDot returns how a GPU kernel computes root with the tiled dot, or
// nil: one f32 dot read in place from buffers (DotSpecOf) into a dense
// result, then elementwise ops of its shape up to the root, or the root
// transposes the product.
func (g *kernelBuilder) planGPUDot(body []*ir.Value, root *ir.Value) *gpuDot {
	if root.Op == ir.OpTranspose && len(body) == 2 && body[0].Op == ir.OpDot && root.Args[0] == body[0] && len(g.results) == 1 {
		gd := g.gpuDotFor(body[0], body[0], nil, nil)
		if gd != nil {
			gd.transposed = root
		}
		return gd
	}
	dot := dotEpilogue(body, root)
	if dot == nil || len(g.results) != 1 {
		return nil
	}
	return g.gpuDotFor(dot, root, body, g.results)
}

// gpuDotFor is the tiled dot computing dot, with root the kernel's result,
// the spec's bands found in body and results (dotBands), or nil: an
// operand is not read from a buffer, or DotSpecOf cannot read them in
// place into a dense product.
func (g *kernelBuilder) gpuDotFor(dot, root *ir.Value, body, results []*ir.Value) *gpuDot {
	for _, a := range dot.Args {
		if _, ok := g.ptrs[a]; !ok {
			return nil
		}
	}
	s, err := DotSpecOf(dot.Args[0].Type, dot.Args[1].Type, dot.Attrs)
	if err != nil || !s.denseC() || s.M == 0 || s.N == 0 {
		return nil
	}
	dotBands(&s, dot, g.fills, body, results)
	return &gpuDot{dot: dot, root: root, spec: s}
}

// bandRange returns, for the bm×bn tile at rows m0 and columns n0 of s's
// product, the k range [klo, khi) its operands' bands leave nonzero (the
// tiles stage zeros outside them), and whether the tile meets BandC
// (outside it the product's value does not matter): causal attention's
// products skip the k beyond the diagonal and the tiles above it.
func (g *kernelBuilder) bandRange(s DotSpec, m0, n0 value.Value, bm, bn int64) (klo, khi, live value.Value) {
	klo, khi, live = i64c(0), i64c(int64(s.K)), constant.True
	smax := func(a, b value.Value) value.Value { return g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, a, b), a, b) }
	smin := func(a, b value.Value) value.Value { return g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, a, b), a, b) }
	mLast, nLast := g.b.NewAdd(m0, i64c(bm-1)), g.b.NewAdd(n0, i64c(bn-1))
	d := func(b DotBand) value.Value { return i64c(int64(b.D)) }
	// A[i, k]: i − k ≥ D keeps k ≤ i − D; upper: k ≥ i − D.
	if b := s.BandA; b.On && !b.Upper {
		khi = smin(khi, g.b.NewAdd(g.b.NewSub(mLast, d(b)), i64c(1)))
	} else if b.On {
		klo = smax(klo, g.b.NewSub(m0, d(b)))
	}
	// B[k, n]: k − n ≥ D keeps k ≥ n + D; upper: k ≤ n + D.
	if b := s.BandB; b.On && !b.Upper {
		klo = smax(klo, g.b.NewAdd(n0, d(b)))
	} else if b.On {
		khi = smin(khi, g.b.NewAdd(g.b.NewAdd(nLast, d(b)), i64c(1)))
	}
	// C[i, j]: some i − j ≥ D (upper: ≤ D) in the tile.
	if b := s.BandC; b.On && !b.Upper {
		live = g.b.NewICmp(enum.IPredSGE, g.b.NewSub(mLast, n0), d(b))
	} else if b.On {
		live = g.b.NewICmp(enum.IPredSLE, g.b.NewSub(m0, nLast), d(b))
	}
	return klo, khi, live
}

// A gpuTiler computes tiles of a dot's product in one block of threads:
// product emits the loop over k in [klo, khi) for the BM×BN tile at rows
// m0, columns n0 of the batch whose operands start at offA and offB, then
// calls each for every element (m, n) of the tile the thread holds, with
// its f32 value; the caller checks m < M and n < N. Every thread of the
// block must run it.
type gpuTiler interface {
	tile() (bm, bn int64)
	product(offA, offB, m0, n0, klo, khi value.Value, each func(m, n, acc value.Value))
}

// tiler returns the tiler of gd's dot: tensor cores for bf16 or f16
// operands, else the f32 tiles; it sets the block's threads.
func (g *kernelBuilder) tiler(gd *gpuDot) gpuTiler {
	g.tilers++
	if gd.spec.mmaDot() {
		return g.newMMATiler(gd)
	}
	return g.newSIMTTiler(gd)
}

// emitGPUDot emits gd's dot with its elementwise epilogue: block b
// computes tile (tm, tn) of batch bt, b = (bt·tilesM + tm)·tilesN + tn,
// and each thread computes the root from each of its results before the
// store.
func (g *kernelBuilder) emitGPUDot(gd *gpuDot) (extent, cost int64) {
	s := gd.spec
	tl := g.tiler(gd)
	bm, bn := tl.tile()
	M, N, K := int64(s.M), int64(s.N), int64(s.K)
	tilesM, tilesN := (M+bm-1)/bm, (N+bn-1)/bn
	blk := g.ctaid()
	tileN := g.b.NewURem(blk, i64c(tilesN))
	tileM := g.b.NewURem(g.b.NewUDiv(blk, i64c(tilesN)), i64c(tilesM))
	bt := g.b.NewUDiv(blk, i64c(tilesN*tilesM))
	offA, offB := g.batchOffsets(s, bt)
	m0, n0 := g.b.NewMul(tileM, i64c(bm)), g.b.NewMul(tileN, i64c(bn))
	// A tile outside BandC runs no k, but its epilogue still writes the
	// root, which there does not depend on the product (a mask's fill).
	klo, khi, live := g.bandRange(s, m0, n0, bm, bn)
	khi = g.b.NewSelect(live, khi, klo)
	tl.product(offA, offB, m0, n0, klo, khi, func(m, n, acc value.Value) {
		g.storeProduct(gd, bt, m, n, acc)
	})
	grid := int64(s.Batch) * tilesM * tilesN
	return grid * int64(g.threads), 2 * K * bm * bn / int64(g.threads)
}

// productRows runs tiler tl over rows [m0, m0+bm) of batch bt's product
// (s its spec, bm the tile's height), tile by tile across its columns,
// calling each for every element (m, n) the thread holds. A tile outside
// the product's needed band (BandC) runs no k: its elements are zero.
func (g *kernelBuilder) productRows(tl gpuTiler, s DotSpec, bt, m0 value.Value, each func(m, n, acc value.Value)) {
	bm, bn := tl.tile()
	offA, offB := g.batchOffsets(s, bt)
	g.strideLoop("ntile", i64c(0), i64c(int64(s.N)), i64c(bn), func(n0 value.Value) {
		klo, khi, live := g.bandRange(s, m0, n0, bm, bn)
		tl.product(offA, offB, m0, n0, klo, g.b.NewSelect(live, khi, klo), each)
	})
}

// storeProduct stores the root of gd's epilogue at element (m, n) of
// batch bt's product, whose value is acc, when the element lies inside
// the product.
func (g *kernelBuilder) storeProduct(gd *gpuDot, bt, m, n, acc value.Value) {
	M, N := int64(gd.spec.M), int64(gd.spec.N)
	g.ifThen("cstore", g.inside(m, M, n, N), func() {
		lin := g.productIndex(bt, m, n, M, N)
		g.rowVals = map[*ir.Value]value.Value{gd.dot: acc}
		at := g.rootIndex(gd, lin)
		g.storeAt(gd.root.Type.DType, g.elem(gd.root, atLinear(gd.dot.Type.Shape, lin)), g.out, at)
		g.rowVals = nil
	})
}

// productIndex is the linear index of element (m, n) of batch bt's
// product in a dense M×N product stored batch after batch.
func (g *kernelBuilder) productIndex(bt, m, n value.Value, M, N int64) value.Value {
	return g.b.NewAdd(g.b.NewMul(g.b.NewAdd(g.b.NewMul(bt, i64c(M)), m), i64c(N)), n)
}

// rootIndex is where gd's result holds the product's element at linear
// index lin: lin itself, or its place in the transpose gd's root is.
func (g *kernelBuilder) rootIndex(gd *gpuDot, lin value.Value) value.Value {
	if gd.transposed == nil {
		return lin
	}
	return g.rootAt(gd.transposed, gd.dot, atLinear(gd.dot.Type.Shape, lin))
}

// storeAcc stores the f32 acc as element (m, n) of batch bt's dense M×N
// product in p (productIndex) when the element lies inside the product.
func (g *kernelBuilder) storeAcc(p, bt, m, n value.Value, M, N int64, acc value.Value) {
	g.ifThen("astore", g.inside(m, M, n, N), func() { g.storeAt(ir.F32, acc, p, g.productIndex(bt, m, n, M, N)) })
}

// stageTile emits the copy of an operand's tile of rows×bk elements, the
// rows of its free side (M for A, N for B) from r0 and the k from k0, into
// shared memory: thread tid copies elements tid, tid + threads, ..., each
// read along k when the operand stores a row's k contiguously (rowMajor),
// else along the rows, so that a warp's reads are coalesced; each copies one
// element, (r, k) in the tile, (gr, gk) in the operand. When the threads
// cover whole lines of the tile, a thread's elements lie a constant apart
// (whole lines), which the addresses then show: LLVM folds them into
// offsets from one base instead of keeping a register pair for each.
func (g *kernelBuilder) stageTile(rows, bk int64, r0, k0 value.Value, rowMajor bool, each func(r, k, gr, gk value.Value)) {
	threads := int64(g.threads)
	tid := g.productTid()
	line := bk // the elements of a line, along which threads read
	if !rowMajor {
		line = rows
	}
	var across, along value.Value // the thread's first element
	if threads%line == 0 {
		across, along = g.b.NewUDiv(tid, i64c(line)), g.b.NewURem(tid, i64c(line))
	}
	for q := int64(0); q < rows*bk/threads; q++ {
		var a, l value.Value
		if across != nil {
			a, l = g.b.NewAdd(across, i64c(q*threads/line)), along
		} else {
			e := g.b.NewAdd(tid, i64c(q*threads))
			a, l = g.b.NewUDiv(e, i64c(line)), g.b.NewURem(e, i64c(line))
		}
		r, k := a, l
		if !rowMajor {
			r, k = l, a
		}
		each(r, k, g.b.NewAdd(r0, r), g.b.NewAdd(k0, k))
	}
}

// tileStart is the offset of an operand's element (r0, k0), the first of
// the tile at rows r0 and k k0 (both inside the operand): where a tile's
// copy reads in place of an element outside the operand or its band, so
// that every load stays inside the rows and k the tile covers.
func (g *kernelBuilder) tileStart(r0, k0 value.Value, ld int64, rowMajor bool) value.Value {
	if rowMajor {
		return g.b.NewAdd(g.b.NewMul(r0, i64c(ld)), k0)
	}
	return g.b.NewAdd(g.b.NewMul(k0, i64c(ld)), r0)
}

// bandKeeps reports whether the pair (r, s) lies in band b (true when b
// is off). The tiles stage an operand's elements outside its band as
// zeros, whatever its buffer holds there.
func (g *kernelBuilder) bandKeeps(b DotBand, r, s value.Value) value.Value {
	switch {
	case !b.On:
		return constant.True
	case b.Upper:
		return g.b.NewICmp(enum.IPredSLE, g.b.NewSub(r, s), i64c(int64(b.D)))
	}
	return g.b.NewICmp(enum.IPredSGE, g.b.NewSub(r, s), i64c(int64(b.D)))
}

// inRange reports r < n and k < khi: a tile's element (r, k) lies inside
// the operand's rows and before the end of the product's k range, which
// a last step of the k loop may run past (the range need not start at a
// multiple of the step: a band off the diagonal, a strip of the sums in
// attention's backward).
func (g *kernelBuilder) inRange(r value.Value, n int64, k, khi value.Value) value.Value {
	return g.b.NewAnd(g.b.NewICmp(enum.IPredSLT, r, i64c(n)), g.b.NewICmp(enum.IPredSLT, k, khi))
}

// inside reports i < n and k < kn (i64 values, constant bounds).
func (g *kernelBuilder) inside(i value.Value, n int64, k value.Value, kn int64) value.Value {
	return g.b.NewAnd(g.b.NewICmp(enum.IPredSLT, i, i64c(n)), g.b.NewICmp(enum.IPredSLT, k, i64c(kn)))
}

// simtTiler is the f32 tiler: 16×16 threads, BM×BN×BK tiles (the target's
// GPUDot). Per step of BK, the block's threads copy A's BM×BK and B's
// BK×BN tiles into shared memory (stageTile; widened to f32), wait and
// multiply them into their registers (double buffered, tileBuffers: one
// barrier a step). When a thread keeps a multiple of 4 rows and of 4
// columns (vec), thread (ty, tx) owns runs of 4 rows from ty·4 and of 4
// columns from tx·4 in each part of the tile, read from shared memory 16
// bytes at a time; otherwise rows ty + 16i and columns tx + 16j. Either
// way a warp reads B's tile without bank conflicts and stores C's rows in
// runs.
type simtTiler struct {
	g          *kernelBuilder
	gd         *gpuDot
	bm, bn, bk int64
	lsa, lsb   int64 // shared rows, in floats
	vec        bool
	as, bs     value.Value // two tiles each (double buffered), half elements apart
	half       int64
	tx, ty     value.Value
}

// own is the offset in the tile, less the thread's base (ty or tx, times
// 4 when vec), of the i-th of the n rows (or columns) it keeps of a tile
// side of size.
func (t *simtTiler) own(i, n, size int64) int64 {
	if !t.vec {
		return 16 * i
	}
	return i/4*(size/(n/4)) + i%4
}

// frag loads the n values a thread keeps of row kk of a shared tile sm
// (rows of ls floats, a tile side of size), base its ty or tx.
func (t *simtTiler) frag(sm, base value.Value, kk, ls, n, size int64) []value.Value {
	g := t.g
	out := make([]value.Value, n)
	if !t.vec {
		for i := range out {
			out[i] = g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(base, i64c(kk*ls+t.own(int64(i), n, size)))))
		}
		return out
	}
	v4 := types.NewVector(4, types.Float)
	for i := int64(0); i < n; i += 4 {
		p := g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(g.b.NewMul(base, i64c(4)), i64c(kk*ls+t.own(i, n, size))))
		ld := g.b.NewLoad(v4, g.b.NewBitCast(p, types.NewPointer(v4)))
		ld.Align = 16
		for q := int64(0); q < 4; q++ {
			out[i+q] = g.b.NewExtractElement(ld, constant.NewInt(types.I32, q))
		}
	}
	return out
}

func (g *kernelBuilder) newSIMTTiler(gd *gpuDot) *simtTiler {
	tile, err := gpuDotTileFor(g.mod.t.GPUDot)
	if err != nil {
		fail("%v", err)
	}
	g.threads = 256
	t := &simtTiler{g: g, gd: gd, bm: int64(tile.BM), bn: int64(tile.BN), bk: int64(tile.BK)}
	t.vec = t.bm/16%4 == 0 && t.bn/16%4 == 0
	// Shared tiles, k-major; a row padded where the copy writes down its
	// columns, so that a warp's stores spread over the banks: by one
	// float, or by four to keep rows 16-byte aligned for vec's loads.
	pad := int64(1)
	if t.vec {
		pad = 4
	}
	t.lsa, t.lsb = t.bm, t.bn
	if !gd.spec.TransA {
		t.lsa += pad
	}
	if gd.spec.TransB {
		t.lsb += pad
	}
	t.half = t.bk * (max(t.bm, t.bn) + pad)
	t.as, t.bs = g.tileArrays(types.Float, 2*t.half)
	return t
}

func (t *simtTiler) tile() (bm, bn int64) { return t.bm, t.bn }

func (t *simtTiler) product(offA, offB, m0, n0, klo, khi value.Value, each func(m, n, acc value.Value)) {
	t.g.ptid = t.g.freshTid()
	defer func() { t.g.ptid = nil }()
	t.tx, t.ty = t.g.b.NewURem(t.g.ptid, i64c(16)), t.g.b.NewUDiv(t.g.ptid, i64c(16))
	g, s := t.g, t.gd.spec
	bm, bn, bk := t.bm, t.bn, t.bk
	tm, tn := bm/16, bn/16
	M, N := int64(s.M), int64(s.N)
	lda, ldb, _ := s.lds()
	acc := make([]value.Value, tm*tn)
	for i := range acc {
		acc[i] = g.alloca(types.Float)
		g.b.NewStore(fconst(types.Float, 0), acc[i])
	}
	pa, pb := g.ptrs[t.gd.dot.Args[0]], g.ptrs[t.gd.dot.Args[1]]
	// An f32 operand is copied 16 bytes at a time along its contiguous
	// axis where it can be; along k, the loop then starts at a multiple
	// of simtVec.
	vecA, kA := s.vecF32Operand(true)
	vecB, kB := s.vecF32Operand(false)
	start := klo
	if vecA && kA || vecB && kB {
		start = g.b.NewAnd(klo, i64c(-simtVec))
	}
	// Each operand's tile is fetched into registers and put into the
	// step's shared tile (stepLoop).
	ops := []*tileOperand{
		{d: s.aType(), p: pa, off: offA, r0: m0, rows: bm, n: M, ls: t.lsa, ld: lda, rowMajor: !s.TransA, vec: vecA, alongK: kA,
			keep: func(m, k value.Value) value.Value { return g.bandKeeps(s.BandA, m, k) }},
		{d: s.bType(), p: pb, off: offB, r0: n0, rows: bn, n: N, ls: t.lsb, ld: ldb, rowMajor: s.TransB, vec: vecB, alongK: kB,
			keep: func(n, k value.Value) value.Value { return g.bandKeeps(s.BandB, k, n) }},
	}
	for _, o := range ops {
		if o.vec {
			g.slotsFor(o, vecF32Runs(o.rows, bk, int64(g.threads)), types.NewVector(simtVec, types.Float))
		} else {
			g.slotsFor(o, o.rows*bk/int64(g.threads), types.Float)
		}
	}
	fetch := func(k0 value.Value) {
		for _, o := range ops {
			if o.vec {
				g.stageVecF32(o, bk, k0, klo, khi, func(q int64, x value.Value) {
					g.b.NewStore(x, o.slots[q])
				})
				continue
			}
			g.fetchElems(o, bk, k0, klo, khi, func(src value.Value) value.Value {
				x := g.loadAt(o.d, o.p, src)
				if !x.Type().Equal(types.Float) {
					x = g.b.NewFPTrunc(x, types.Float)
				}
				return x
			}, fconst(types.Float, 0))
		}
	}
	// A[m, k] into as[kk·lsa + mm], B[k, n] into bs[kk·lsb + nn].
	put := func(k0 value.Value) {
		as, bs := g.tileBuffers(t.as, t.bs, types.Float, t.half, start, k0, bk)
		for i, o := range ops {
			sm := []value.Value{as, bs}[i]
			if o.vec {
				g.placeVecF32(sm, o.ls, o.rows, bk, o.alongK, func(q int64) value.Value {
					return g.b.NewLoad(types.NewVector(simtVec, types.Float), o.slots[q])
				})
				continue
			}
			g.putElems(o, bk, sm, types.Float, func(r, k value.Value) value.Value { return g.b.NewAdd(g.b.NewMul(k, i64c(o.ls)), r) })
		}
	}
	g.stepLoop(start, khi, bk, fetch, put, func(k0 value.Value) {
		as, bs := g.tileBuffers(t.as, t.bs, types.Float, t.half, start, k0, bk)
		fma := g.mod.declare(g.mod.t.lower().mathSym("fma", types.Float, false), types.Float, types.Float, types.Float, types.Float)
		for kk := int64(0); kk < bk; kk++ {
			a := t.frag(as, t.ty, kk, t.lsa, tm, bm)
			b := t.frag(bs, t.tx, kk, t.lsb, tn, bn)
			for i := range a {
				for j := range b {
					c := acc[int64(i)*tn+int64(j)]
					g.b.NewStore(g.b.NewCall(fma, a[i], b[j], g.b.NewLoad(types.Float, c)), c)
				}
			}
		}
	})
	ty, tx := t.ty, t.tx
	if t.vec {
		ty, tx = g.b.NewMul(ty, i64c(4)), g.b.NewMul(tx, i64c(4))
	}
	for i := int64(0); i < tm; i++ {
		m := g.b.NewAdd(m0, g.b.NewAdd(ty, i64c(t.own(i, tm, bm))))
		for j := int64(0); j < tn; j++ {
			n := g.b.NewAdd(n0, g.b.NewAdd(tx, i64c(t.own(j, tn, bn))))
			each(m, n, g.b.NewLoad(types.Float, acc[i*tn+j]))
		}
	}
}

// tileBuffers returns the shared tiles of the k step at k0 of a loop from
// klo by bk: the first of each pair (as, bs, half elements of type t
// apart) on even steps, the second on odd ones. A step writes its tiles,
// waits at a barrier and reads them; the next step writes the other pair,
// which no thread still reads (every thread has passed this step's
// barrier, so finished the step before it), so one barrier a step
// suffices; the loop needs one more after it before the tiles are reused.
// The step's pointers also keep each element's address an offset from
// them inside the loop, not a register of its own held across it.
func (g *kernelBuilder) tileBuffers(as, bs value.Value, t types.Type, half int64, klo, k0 value.Value, bk int64) (a, b value.Value) {
	off := g.b.NewMul(g.b.NewAnd(g.b.NewUDiv(g.b.NewSub(k0, klo), i64c(bk)), i64c(1)), i64c(half))
	return g.b.NewGetElementPtr(t, as, off), g.b.NewGetElementPtr(t, bs, off)
}

// batchOffsets returns the element offsets of batch bt's A and B.
func (g *kernelBuilder) batchOffsets(s DotSpec, bt value.Value) (offA, offB value.Value) {
	offA, offB = i64c(0), i64c(0)
	rest := bt
	dims := s.batchDims()
	for d := len(dims) - 1; d >= 0; d-- {
		bd := dims[d]
		if bd.Size <= 1 {
			continue
		}
		idx := g.b.NewURem(rest, i64c(int64(bd.Size)))
		rest = g.b.NewUDiv(rest, i64c(int64(bd.Size)))
		offA = g.b.NewAdd(offA, g.b.NewMul(idx, i64c(bd.A)))
		offB = g.b.NewAdd(offB, g.b.NewMul(idx, i64c(bd.B)))
	}
	return offA, offB
}

// dotEpilogue returns the one dot of body when every value depending on
// it up to root is an elementwise op of its shape and root is a float of
// that shape (an epilogue computed element by element from the product,
// maybe ending in a conversion to half), else nil.
func dotEpilogue(body []*ir.Value, root *ir.Value) *ir.Value {
	var dot *ir.Value
	dep := map[*ir.Value]bool{}
	for _, v := range body {
		if v.Op == ir.OpDot {
			if dot != nil {
				return nil
			}
			dot = v
			dep[v] = true
			continue
		}
		for _, a := range v.Args {
			if dep[a] {
				dep[v] = true
			}
		}
		if dep[v] && (!elementwise(v) || !v.Type.Shape.Equal(dot.Type.Shape)) {
			return nil
		}
	}
	if dot == nil || dot.Type.DType != ir.F32 || !dep[root] || !root.Type.DType.IsFloat() || !root.Type.Shape.Equal(dot.Type.Shape) {
		return nil
	}
	return dot
}
