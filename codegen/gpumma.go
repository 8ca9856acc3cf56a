package codegen

import (
	"fmt"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// The tensor-core dot: a dot whose operands are both bf16 or both f16
// (the precision pass's products) multiplies them by mma.sync m16n8k16,
// accumulating in f32. A block of warps computes a BM×BN tile of C (by
// default 2×2 warps, 64×64, each warp 32×32 as 2×4 mma tiles), stepping
// through K by mmaBK: the block copies A's BM×mmaBK and B's mmaBK×BN
// tiles into shared memory as they are stored (16-bit elements, zero
// outside the matrices), both k-contiguous, each row padded by 8 elements
// so that the eight rows an ldmatrix reads at once hit distinct banks;
// the warp then loads its fragments by ldmatrix, four 8×8 matrices an
// instruction. The tiles are double buffered (tileBuffers): one barrier a
// step.
const (
	mmaBK  = 32
	mmaPad = 8
)

// mmaTile is a tensor-core tile: a block of WarpsM×WarpsN warps computes
// BM×BN of C, each warp (BM/WarpsM)×(BN/WarpsN).
type mmaTile struct{ BM, BN, WarpsM, WarpsN int64 }

// mmaTiles are the tensor-core tiles a GPU target may use (XLC_GPU_MMA),
// by their names; the first is the default. The larger ones give each
// warp 64×32 (4×4 mma tiles, 64 accumulators a thread), reading fewer
// fragments and operand bytes per mma.
var mmaTiles = []mmaTile{{64, 64, 2, 2}, {128, 128, 2, 4}, {128, 64, 2, 2}}

func (t mmaTile) String() string { return fmt.Sprintf("%dx%d", t.BM, t.BN) }

// mmaTileFor returns the tile a GPU target names ("" the default).
func mmaTileFor(name string) (mmaTile, error) {
	return tileNamed(mmaTiles, "XLC_GPU_MMA", "tensor-core", name)
}

// mmaDot reports whether s multiplies on tensor cores.
func (s DotSpec) mmaDot() bool { return s.halfA() && s.aType() == s.bType() }

// mmaTiler is the tensor-core tiler (gpuTiler).
type mmaTiler struct {
	g  *kernelBuilder
	gd *gpuDot
	mmaTile
	ti, tj           int64 // a warp's mma tiles along M (16 rows) and N (8 columns)
	half             int64 // a shared tile (of A or B), in elements
	as, bs           value.Value
	grp, tig, wm, wn value.Value
}

func (g *kernelBuilder) newMMATiler(gd *gpuDot) *mmaTiler {
	tile, err := mmaTileFor(g.mod.t.GPUMMA)
	if err != nil {
		fail("%v", err)
	}
	g.threads = int(tile.WarpsM * tile.WarpsN * 32)
	t := &mmaTiler{g: g, gd: gd, mmaTile: tile, ti: tile.BM / tile.WarpsM / 16, tj: tile.BN / tile.WarpsN / 8}
	t.half = max(tile.BM, tile.BN) * mmaLS
	t.as, t.bs = g.tileArrays(types.I16, 2*t.half)
	return t
}

// mmaLS is a shared row, in elements.
const mmaLS = mmaBK + mmaPad

// mmaAt is the index of element (r, k) of a tensor-core shared tile.
func (g *kernelBuilder) mmaAt(r, k value.Value) value.Value {
	return g.b.NewAdd(g.b.NewMul(r, i64c(mmaLS)), k)
}

func (t *mmaTiler) tile() (bm, bn int64) { return t.BM, t.BN }

func (t *mmaTiler) product(offA, offB, m0, n0, klo, khi value.Value, each func(m, n, acc value.Value)) {
	g, s := t.g, t.gd.spec
	g.ptid = g.freshTid()
	defer func() { g.ptid = nil }()
	lane, warp := g.b.NewURem(g.ptid, i64c(32)), g.b.NewUDiv(g.ptid, i64c(32))
	t.grp, t.tig = g.b.NewUDiv(lane, i64c(4)), g.b.NewURem(lane, i64c(4))
	t.wm = g.b.NewMul(g.b.NewUDiv(warp, i64c(t.WarpsN)), i64c(16*t.ti))
	t.wn = g.b.NewMul(g.b.NewURem(warp, i64c(t.WarpsN)), i64c(8*t.tj))
	half := s.aType()
	M, N := int64(s.M), int64(s.N)
	lda, ldb, _ := s.lds()
	acc := make([][][4]value.Value, t.ti)
	for i := range acc {
		acc[i] = make([][4]value.Value, t.tj)
		for j := range acc[i] {
			for q := range acc[i][j] {
				acc[i][j][q] = g.alloca(types.Float)
				g.b.NewStore(fconst(types.Float, 0), acc[i][j][q])
			}
		}
	}
	pa := g.b.NewBitCast(g.ptrs[t.gd.dot.Args[0]], types.NewPointer(types.I16))
	pb := g.b.NewBitCast(g.ptrs[t.gd.dot.Args[1]], types.NewPointer(types.I16))
	// An operand's tile is fetched into registers and put into the
	// step's shared tile (stepLoop). A k-contiguous operand is fetched 16
	// bytes at a time from k that are multiples of mmaVec (the loop then
	// starts at one); another one element at a time, zero outside the
	// operand, the k range or its band.
	vecA, vecB := s.vecOperand(true), s.vecOperand(false)
	start := klo
	if vecA || vecB {
		start = g.b.NewAnd(klo, i64c(-mmaVec))
	}
	ops := []*tileOperand{
		{p: pa, off: offA, rows: t.BM, n: M, r0: m0, ld: lda, rowMajor: !s.TransA, vec: vecA,
			keep: func(m, k value.Value) value.Value { return g.bandKeeps(s.BandA, m, k) }},
		{p: pb, off: offB, rows: t.BN, n: N, r0: n0, ld: ldb, rowMajor: s.TransB, vec: vecB,
			keep: func(n, k value.Value) value.Value { return g.bandKeeps(s.BandB, k, n) }},
	}
	threads := int64(g.threads)
	for _, o := range ops {
		if o.vec {
			g.slotsFor(o, vecRuns(o.rows, threads), types.NewVector(mmaVec, types.I16))
		} else {
			g.slotsFor(o, o.rows*mmaBK/threads, types.I16)
		}
	}
	fetch := func(k0 value.Value) {
		for _, o := range ops {
			if o.vec {
				g.stageVec(o, k0, klo, khi, func(q int64, x value.Value) {
					g.b.NewStore(x, o.slots[q])
				})
				continue
			}
			g.fetchElems(o, mmaBK, k0, klo, khi, func(src value.Value) value.Value {
				return g.b.NewLoad(types.I16, g.b.NewGetElementPtr(types.I16, o.p, src))
			}, constant.NewInt(types.I16, 0))
		}
	}
	// A is M×K by rows unless TransA; B is K×N by rows unless TransB, and
	// its tile is stored n-major (k contiguous).
	put := func(k0 value.Value) {
		as, bs := g.tileBuffers(t.as, t.bs, types.I16, t.half, start, k0, mmaBK)
		for i, o := range ops {
			sm := []value.Value{as, bs}[i]
			if o.vec {
				for q, slot := range o.slots {
					g.vecPlace(sm, int64(q), g.b.NewLoad(types.NewVector(mmaVec, types.I16), slot))
				}
				continue
			}
			g.putElems(o, mmaBK, sm, types.I16, g.mmaAt)
		}
	}
	// The fragments come from the shared tiles by ldmatrix, each lane
	// pointing at the row mmaFrag gives it.
	aRow, aK := mmaFrag.aRow.emit(g, lane), mmaFrag.aK.emit(g, lane)
	bRow, bRow1, bK := mmaFrag.bRow.emit(g, lane), mmaFrag.bRow1.emit(g, lane), mmaFrag.bK.emit(g, lane)
	at := func(sm, row, k value.Value) value.Value {
		return g.b.NewGetElementPtr(types.I16, sm, g.mmaAt(row, k))
	}
	g.stepLoop(start, khi, mmaBK, fetch, put, func(k0 value.Value) {
		as, bs := g.tileBuffers(t.as, t.bs, types.I16, t.half, start, k0, mmaBK)
		for ks := int64(0); ks < mmaBK; ks += 16 {
			a := make([][4]value.Value, t.ti)
			for i := range a {
				r := g.b.NewAdd(g.b.NewAdd(t.wm, i64c(16*int64(i))), aRow)
				copy(a[i][:], g.ldmatrix(4, at(as, r, g.b.NewAdd(aK, i64c(ks)))))
			}
			for j := int64(0); j < t.tj; j += 2 {
				n, row := int64(4), bRow
				if j+1 == t.tj {
					n, row = 2, bRow1
				}
				regs := g.ldmatrix(n, at(bs, g.b.NewAdd(g.b.NewAdd(t.wn, i64c(8*j)), row), g.b.NewAdd(bK, i64c(ks))))
				for jj := j; jj < min(j+2, t.tj); jj++ {
					b := [2]value.Value{regs[2*(jj-j)], regs[2*(jj-j)+1]}
					for i := range a {
						var c [4]value.Value
						for q := range c {
							c[q] = g.b.NewLoad(types.Float, acc[i][jj][q])
						}
						d := g.mma(half, a[i], b, c)
						for q := range d {
							g.b.NewStore(d[q], acc[i][jj][q])
						}
					}
				}
			}
		}
	})
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
