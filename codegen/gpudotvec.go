package codegen

import (
	"github.com/llir/llvm/ir/constant"
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

// stageVecF32 copies an f32 operand's tile of rows×bk elements into the
// k-major shared tile sm (sm[kk·ls + r]) simtVec floats a thread at a
// time along the operand's contiguous axis (vecF32Operand): one 16-byte
// load, the elements outside the operand's rows, the k range [klo, khi)
// or its band set to zero, then one 16-byte store when the run lies along
// a row of the tile (the free axis), else simtVec stores. Along k, k0 is
// a multiple of simtVec; the emulator checks every load's alignment.
func (g *kernelBuilder) stageVecF32(p, sm value.Value, rows, rowsN, bk, ls, ld int64, r0, k0, klo, khi, off value.Value, alongK bool, keep func(r, k value.Value) value.Value) {
	threads := int64(g.threads)
	v := types.NewVector(simtVec, types.Float)
	line := rows // the elements of a line along the contiguous axis
	if alongK {
		line = bk
	}
	per, chunks := line/simtVec, rows*bk/simtVec
	tid := g.productTid()
	for q := int64(0); q*threads < chunks; q++ {
		c := g.b.NewAdd(tid, i64c(q*threads))
		copyRun := func() {
			a, l := g.b.NewUDiv(c, i64c(per)), g.b.NewMul(g.b.NewURem(c, i64c(per)), i64c(simtVec))
			r, k := value.Value(a), value.Value(l) // the run's first element in the tile
			if !alongK {
				r, k = l, a
			}
			gr, gk := g.b.NewAdd(r0, r), g.b.NewAdd(k0, k)
			in := func(e int64) value.Value { // element e of the run inside
				er, ek := value.Value(gr), value.Value(gk)
				if alongK {
					ek = g.b.NewAdd(gk, i64c(e))
				} else {
					er = g.b.NewAdd(gr, i64c(e))
				}
				return g.b.NewAnd(g.b.NewAnd(g.inRange(er, rowsN, ek, khi), g.b.NewICmp(enum.IPredSGE, ek, klo)), keep(er, ek))
			}
			// The run lies inside its row when its first element's row and
			// k are inside (the extents are multiples of simtVec);
			// otherwise the tile's first run is read.
			src := value.Value(g.b.NewAdd(g.b.NewMul(gr, i64c(ld)), gk))
			if !alongK {
				src = g.b.NewAdd(g.b.NewMul(gk, i64c(ld)), gr)
			}
			src = g.b.NewSelect(g.inRange(gr, rowsN, gk, khi), src, g.tileStart(r0, k0, ld, alongK))
			at := g.b.NewGetElementPtr(types.Float, p, g.b.NewAdd(off, src))
			g.checkAligned(at, 16)
			run := g.b.NewLoad(v, g.b.NewBitCast(at, types.NewPointer(v)))
			run.Align = 16
			mask := value.Value(constant.NewZeroInitializer(types.NewVector(simtVec, types.I1)))
			for e := int64(0); e < simtVec; e++ {
				mask = g.b.NewInsertElement(mask, in(e), i32c(e))
			}
			x := g.b.NewSelect(mask, run, constant.NewZeroInitializer(v))
			if !alongK {
				dst := g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(g.b.NewMul(k, i64c(ls)), r))
				st := g.b.NewStore(x, g.b.NewBitCast(dst, types.NewPointer(v)))
				st.Align = 16
				return
			}
			for e := int64(0); e < simtVec; e++ {
				dst := g.b.NewGetElementPtr(types.Float, sm, g.b.NewAdd(g.b.NewMul(g.b.NewAdd(k, i64c(e)), i64c(ls)), r))
				g.b.NewStore(g.b.NewExtractElement(x, i32c(e)), dst)
			}
		}
		if (q+1)*threads <= chunks {
			copyRun()
		} else {
			g.ifThen("run", g.b.NewICmp(enum.IPredULT, c, i64c(chunks)), copyRun)
		}
	}
}
