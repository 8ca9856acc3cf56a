package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// mmaVec is the elements the tensor-core tiler copies at once from an
// operand whose k are contiguous: 8 halves, one 16-byte load and store.
const mmaVec = 8

// vecOperand reports whether the tensor-core tiler may copy operand A (or
// B) of s mmaVec elements at a time: its k are contiguous, and its row
// length, K and every batch offset are multiples of mmaVec, so that with
// the buffer 16-byte aligned (every buffer is) each run from a k that is
// a multiple of mmaVec is too, and lies inside its row.
func (s DotSpec) vecOperand(a bool) bool {
	lda, ldb, _ := s.lds()
	rowMajor, ld := !s.TransA, lda
	if !a {
		rowMajor, ld = s.TransB, ldb
	}
	if !rowMajor || ld%mmaVec != 0 || s.K%mmaVec != 0 {
		return false
	}
	for _, bd := range s.batchDims() {
		stride := bd.A
		if !a {
			stride = bd.B
		}
		if bd.Size > 1 && stride%mmaVec != 0 {
			return false
		}
	}
	return true
}

// stageVec fetches operand o's tile of o.rows×mmaBK elements, its k
// contiguous (vecOperand), mmaVec elements a thread at a time: one 16-byte
// load (maskedRun), the elements outside the operand's rows, the k range
// [klo, khi) or its band set to zero, and put(q, x) with the thread's
// q-th run x; vecPlace is where the run goes in the shared tile. k0 is a
// multiple of mmaVec.
func (g *kernelBuilder) stageVec(o *tileOperand, k0, klo, khi value.Value, put func(q int64, x value.Value)) {
	for q := range vecRuns(o.rows, int64(g.threads)) {
		r, kc := g.vecRun(q)
		gr, gk := g.b.NewAdd(o.r0, r), g.b.NewAdd(k0, kc)
		// The run lies inside its row when gk < K (a multiple of mmaVec
		// bounds every k range); otherwise the tile's first run is read.
		src := g.b.NewSelect(g.inRange(gr, o.n, gk, khi), g.b.NewAdd(g.b.NewMul(gr, i64c(o.ld)), gk), g.tileStart(o.r0, k0, o.ld, true))
		put(q, g.maskedRun(o.p, types.I16, g.b.NewAdd(o.off, src), mmaVec, func(e int64) value.Value {
			return o.kept(g, gr, g.b.NewAdd(gk, i64c(e)), klo, khi)
		}))
	}
}

// vecRuns is how many runs of mmaVec elements each of threads threads
// copies of a tile of rows×mmaBK.
func vecRuns(rows, threads int64) int64 { return rows * (mmaBK / mmaVec) / threads }

// vecRun returns the tile row and first k of the thread's q-th run.
func (g *kernelBuilder) vecRun(q int64) (r, k value.Value) {
	per := int64(mmaBK / mmaVec) // runs in a row of the tile
	c := g.b.NewAdd(g.productTid(), i64c(q*int64(g.threads)))
	return g.b.NewUDiv(c, i64c(per)), g.b.NewMul(g.b.NewURem(c, i64c(per)), i64c(mmaVec))
}

// vecPlace stores run x, the thread's q-th, into shared tile sm.
func (g *kernelBuilder) vecPlace(sm value.Value, q int64, x value.Value) {
	r, kc := g.vecRun(q)
	dst := g.b.NewGetElementPtr(types.I16, sm, g.mmaAt(r, kc))
	st := g.b.NewStore(x, g.b.NewBitCast(dst, types.NewPointer(x.Type())))
	st.Align = 16
}

// checkAligned stops the kernel with a message when the emulator finds p
// not aligned to align bytes, where a GPU would fault; a GPU kernel has
// no check.
func (g *kernelBuilder) checkAligned(p value.Value, align int64) {
	if !g.gpu().emu {
		return
	}
	text := "xlc: a misaligned vector access in " + g.sym + "\n"
	glob := messageIn(g.mod.m, g.sym+".align", text)
	msg := constant.NewGetElementPtr(glob.ContentType, glob, i64c(0), i64c(0))
	bad, ok := g.newBlock("misaligned"), g.newBlock("aligned")
	low := g.b.NewAnd(g.b.NewPtrToInt(p, types.I64), i64c(align-1))
	g.b.NewCondBr(g.b.NewICmp(enum.IPredNE, low, i64c(0)), bad, ok)
	bad.NewCall(g.mod.oomHandler(), msg, i64c(int64(len(text))))
	bad.NewUnreachable()
	g.b = ok
}
