package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// simtVec is the floats the f32 tiler copies at once from an f32 operand
// along its contiguous axis: one 16-byte load.
const simtVec = 4

// vecF32Operand reports whether the f32 tiler may copy operand A (or B) of
// s simtVec floats at a time along the axis its buffer holds contiguous
// (k when alongK, else its free axis): it is f32, and its row length, the
// contiguous axis's extent and every batch offset are multiples of
// simtVec, so that with the buffer 16-byte aligned every run from a
// multiple of simtVec is too and lies inside its row.
func (s DotSpec) vecF32Operand(a bool) (ok, alongK bool) {
	lda, ldb, _ := s.lds()
	d, alongK, ld, free := s.aType(), !s.TransA, lda, s.M
	if !a {
		d, alongK, ld, free = s.bType(), s.TransB, ldb, s.N
	}
	extent := free
	if alongK {
		extent = s.K
	}
	if d != ir.F32 || ld%simtVec != 0 || extent%simtVec != 0 {
		return false, false
	}
	for _, bd := range s.batchDims() {
		stride := bd.A
		if !a {
			stride = bd.B
		}
		if bd.Size > 1 && stride%simtVec != 0 {
			return false, false
		}
	}
	return true, alongK
}

// stageVecF32 fetches f32 operand o's tile of o.rows×bk elements simtVec
// floats a thread at a time along the operand's contiguous axis
// (vecF32Operand): one 16-byte load (maskedRun), the elements outside the
// operand's rows, the k range [klo, khi) or its band set to zero, and
// put(q, x) with the thread's q-th run x; placeVecF32 stores a run into
// the k-major shared tile. Along k, k0 is a multiple of simtVec.
func (g *kernelBuilder) stageVecF32(o *tileOperand, bk int64, k0, klo, khi value.Value, put func(q int64, x value.Value)) {
	g.eachVecF32(o.rows, bk, o.alongK, func(q int64, r, k value.Value) {
		gr, gk := g.b.NewAdd(o.r0, r), g.b.NewAdd(k0, k)
		// The run lies inside its row when its first element's row and k
		// are inside (the extents are multiples of simtVec); otherwise the
		// tile's first run is read.
		src := value.Value(g.b.NewAdd(g.b.NewMul(gr, i64c(o.ld)), gk))
		if !o.alongK {
			src = g.b.NewAdd(g.b.NewMul(gk, i64c(o.ld)), gr)
		}
		src = g.b.NewSelect(g.inRange(gr, o.n, gk, khi), src, g.tileStart(o.r0, k0, o.ld, o.alongK))
		put(q, g.maskedRun(o.p, types.Float, g.b.NewAdd(o.off, src), simtVec, func(e int64) value.Value {
			if o.alongK {
				return o.kept(g, gr, g.b.NewAdd(gk, i64c(e)), klo, khi)
			}
			return o.kept(g, g.b.NewAdd(gr, i64c(e)), gk, klo, khi)
		}))
	})
}

// vecF32Runs is how many runs of simtVec floats a thread handles of a
// tile of rows×bk (the last maybe not every thread's).
func vecF32Runs(rows, bk, threads int64) int64 {
	return (rows*bk/simtVec + threads - 1) / threads
}

// eachVecF32 calls each with q and the tile row and k of the first
// element of the thread's q-th run of a tile of rows×bk, runs along k
// when alongK, else along the rows; a thread past the tile's runs skips.
func (g *kernelBuilder) eachVecF32(rows, bk int64, alongK bool, each func(q int64, r, k value.Value)) {
	threads := int64(g.threads)
	line := rows // the elements of a line along the contiguous axis
	if alongK {
		line = bk
	}
	per, chunks := line/simtVec, rows*bk/simtVec
	tid := g.productTid()
	for q := range vecF32Runs(rows, bk, threads) {
		c := g.b.NewAdd(tid, i64c(q*threads))
		run := func() {
			a, l := g.b.NewUDiv(c, i64c(per)), g.b.NewMul(g.b.NewURem(c, i64c(per)), i64c(simtVec))
			if alongK {
				each(q, a, l)
			} else {
				each(q, l, a)
			}
		}
		if (q+1)*threads <= chunks {
			run()
		} else {
			g.ifThen("run", g.b.NewICmp(enum.IPredULT, c, i64c(chunks)), run)
		}
	}
}

// placeVecF32 stores the thread's fetched runs (vals[q], as stageVecF32
// put them) into the k-major shared tile sm (sm[kk·ls + r]): one 16-byte
// store for a run along a row of the tile (the free axis), else simtVec.
func (g *kernelBuilder) placeVecF32(sm value.Value, ls, rows, bk int64, alongK bool, vals func(q int64) value.Value) {
	g.eachVecF32(rows, bk, alongK, func(q int64, r, k value.Value) {
		x := vals(q)
		if !alongK {
			dst := g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(g.b.NewMul(k, i64c(ls)), r))
			st := g.b.NewStore(x, g.b.NewBitCast(dst, types.NewPointer(x.Type())))
			st.Align = 16
			return
		}
		for e := int64(0); e < simtVec; e++ {
			dst := g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(g.b.NewMul(g.b.NewAdd(k, i64c(e)), i64c(ls)), r))
			g.b.NewStore(g.b.NewExtractElement(x, i32c(e)), dst)
		}
	})
}
