package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// The tensor-core dot: a dot whose operands are both bf16 or both f16
// (the precision pass's products) multiplies them by mma.sync m16n8k16,
// accumulating in f32. A block of 2×2 warps computes a 64×64 tile of C,
// each warp 32×32 as 2×4 mma tiles, stepping through K by mmaBK: the
// block copies A's 64×mmaBK and B's mmaBK×64 tiles into shared memory as
// they are stored (16-bit elements, zero outside the matrices), both
// k-contiguous, each row padded by 8 elements so that a warp's fragment
// loads hit distinct banks; each thread then loads its fragments two
// elements at a time. The tiles are double buffered (tileBuffers): one
// barrier a step.
const (
	mmaBM, mmaBN, mmaBK = 64, 64, 32
	mmaPad              = 8
	mmaThreads          = 128
)

// mmaDot reports whether s multiplies on tensor cores.
func (s DotSpec) mmaDot() bool { return s.halfA() && s.aType() == s.bType() }

// mmaTiler is the tensor-core tiler (gpuTiler).
type mmaTiler struct {
	g                *kernelBuilder
	gd               *gpuDot
	as, bs           value.Value
	grp, tig, wm, wn value.Value
}

func (g *kernelBuilder) newMMATiler(gd *gpuDot) *mmaTiler {
	g.threads = mmaThreads
	t := &mmaTiler{g: g, gd: gd}
	t.as, t.bs = g.tileArrays(types.I16, 2*mmaTile)
	return t
}

// mmaLS is a shared row, in elements; mmaTile a shared tile (of A or B).
const (
	mmaLS   = mmaBK + mmaPad
	mmaTile = max(mmaBM, mmaBN) * mmaLS
)

func (t *mmaTiler) tile() (bm, bn int64) { return mmaBM, mmaBN }

func (t *mmaTiler) product(offA, offB, m0, n0, klo, khi value.Value, each func(m, n, acc value.Value)) {
	g, s := t.g, t.gd.spec
	g.ptid = g.freshTid()
	defer func() { g.ptid = nil }()
	lane, warp := g.b.NewURem(g.ptid, i64c(32)), g.b.NewUDiv(g.ptid, i64c(32))
	t.grp, t.tig = g.b.NewUDiv(lane, i64c(4)), g.b.NewURem(lane, i64c(4))
	t.wm, t.wn = g.b.NewMul(g.b.NewUDiv(warp, i64c(2)), i64c(32)), g.b.NewMul(g.b.NewURem(warp, i64c(2)), i64c(32))
	half := s.aType()
	M, N := int64(s.M), int64(s.N)
	lda, ldb, _ := s.lds()
	var acc [2][4][4]value.Value
	for i := range acc {
		for j := range acc[i] {
			for q := range acc[i][j] {
				acc[i][j][q] = g.alloca(types.Float)
				g.b.NewStore(fconst(types.Float, 0), acc[i][j][q])
			}
		}
	}
	pa := g.b.NewBitCast(g.ptrs[t.gd.dot.Args[0]], types.NewPointer(types.I16))
	pb := g.b.NewBitCast(g.ptrs[t.gd.dot.Args[1]], types.NewPointer(types.I16))
	// stage copies an operand's tile (rowsN rows of K) into
	// sm[row·mmaLS + k] as its 16-bit elements, zero outside the operand
	// or its band.
	stage := func(p, sm value.Value, rows, rowsN int64, r0, k0 value.Value, ld int64, off value.Value, rowMajor bool, band func(r, k value.Value) value.Value) {
		g.stageTile(rows, mmaBK, r0, k0, rowMajor, func(r, k, gr, gk value.Value) {
			src := g.b.NewAdd(g.b.NewMul(gr, i64c(ld)), gk)
			if !rowMajor {
				src = g.b.NewAdd(g.b.NewMul(gk, i64c(ld)), gr)
			}
			inb := g.b.NewAnd(g.b.NewAnd(g.inRange(gr, rowsN, gk, khi), g.b.NewICmp(enum.IPredSGE, gk, klo)), band(gr, gk))
			x := g.loadIf(inb, func() value.Value {
				return g.b.NewLoad(types.I16, g.b.NewGetElementPtr(types.I16, p, g.b.NewAdd(off, src)))
			}, constant.NewInt(types.I16, 0))
			dst := g.b.NewGetElementPtr(types.I16, sm, g.b.NewAdd(g.b.NewMul(r, i64c(mmaLS)), k))
			g.b.NewStore(x, dst)
		})
	}
	// reg loads the two elements (row, k), (row, k+1) of a shared tile.
	reg := func(sm, row, k value.Value) value.Value {
		p := g.b.NewGetElementPtr(types.I16, sm, g.b.NewAdd(g.b.NewMul(row, i64c(mmaLS)), k))
		return g.b.NewLoad(types.I32, g.b.NewBitCast(p, types.NewPointer(types.I32)))
	}
	// An operand whose k are contiguous is copied 16 bytes at a time, from
	// k that are multiples of mmaVec: the loop then starts at one.
	vecA, vecB := s.vecOperand(true), s.vecOperand(false)
	start := klo
	if vecA || vecB {
		start = g.b.NewAnd(klo, i64c(-mmaVec))
	}
	keepA := func(m, k value.Value) value.Value { return g.bandKeeps(s.BandA, m, k) }
	keepB := func(n, k value.Value) value.Value { return g.bandKeeps(s.BandB, k, n) }
	g.strideLoop("ktile", start, khi, i64c(mmaBK), func(k0 value.Value) {
		// A is M×K by rows unless TransA; B is K×N by rows unless TransB,
		// and its tile is stored n-major (k contiguous).
		as, bs := g.tileBuffers(t.as, t.bs, types.I16, mmaTile, start, k0, mmaBK)
		if vecA {
			g.stageVec(pa, as, mmaBM, M, m0, k0, klo, khi, lda, offA, keepA)
		} else {
			stage(pa, as, mmaBM, M, m0, k0, lda, offA, !s.TransA, keepA)
		}
		if vecB {
			g.stageVec(pb, bs, mmaBN, N, n0, k0, klo, khi, ldb, offB, keepB)
		} else {
			stage(pb, bs, mmaBN, N, n0, k0, ldb, offB, s.TransB, keepB)
		}
		g.barrier()
		for ks := int64(0); ks < mmaBK; ks += 16 {
			k := g.b.NewAdd(g.b.NewMul(t.tig, i64c(2)), i64c(ks))
			k8 := g.b.NewAdd(k, i64c(8))
			var a [2][4]value.Value
			for i := range a {
				r := g.b.NewAdd(g.b.NewAdd(t.wm, i64c(16*int64(i))), t.grp)
				r8 := g.b.NewAdd(r, i64c(8))
				a[i] = [4]value.Value{reg(as, r, k), reg(as, r8, k), reg(as, r, k8), reg(as, r8, k8)}
			}
			for j := 0; j < 4; j++ {
				n := g.b.NewAdd(g.b.NewAdd(t.wn, i64c(8*int64(j))), t.grp)
				b := [2]value.Value{reg(bs, n, k), reg(bs, n, k8)}
				for i := range a {
					var c [4]value.Value
					for q := range c {
						c[q] = g.b.NewLoad(types.Float, acc[i][j][q])
					}
					d := g.mma(half, a[i], b, c)
					for q := range d {
						g.b.NewStore(d[q], acc[i][j][q])
					}
				}
			}
		}
	})
	g.barrier()
	for i := range acc {
		for j := range acc[i] {
			for q := range acc[i][j] {
				m := g.b.NewAdd(m0, g.b.NewAdd(g.b.NewAdd(t.wm, i64c(16*int64(i)+8*int64(q/2))), t.grp))
				n := g.b.NewAdd(n0, g.b.NewAdd(g.b.NewAdd(t.wn, i64c(8*int64(j)+int64(q%2))), g.b.NewMul(t.tig, i64c(2))))
				each(m, n, g.b.NewLoad(types.Float, acc[i][j][q]))
			}
		}
	}
}
