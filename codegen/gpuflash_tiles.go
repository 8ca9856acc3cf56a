package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// What the flash kernels (gpuflash.go, gpuflash_grad.go) share: products
// accumulated in registers from key tile to key tile, the k ranges of a
// tile, the lanes that share a tile's row, and where a block's tiles live.

// kWithin narrows a product's k range [kl, kh), empty where live is false
// (bandRange's), to [lo, lo+n).
func (g *kernelBuilder) kWithin(kl, kh, live, lo value.Value, n int64) (value.Value, value.Value) {
	kl = g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, kl, lo), kl, lo)
	return kl, g.b.NewSelect(live, g.min64(kh, g.b.NewAdd(lo, i64c(n))), kl)
}

// slotProducts runs tiler tl's product s (its first operand at offset 0,
// its second at offB) for the tile's rows from m0, a column tile at a
// time, over the k in [klo, klo+kn) its band leaves (kn 0: none), and
// calls each with every element the thread holds and that element's
// slot: the i-th of *slots (made on first use), i counted from 0 over
// the call. Calls with the same tiler and spec meet the elements in the
// same order, so a slot holds one element's value from call to call.
func (g *kernelBuilder) slotProducts(tl gpuTiler, s DotSpec, offB, m0, klo value.Value, kn int64, slots *[]value.Value, each func(m, n, slot, x value.Value)) {
	bm, bn := tl.tile()
	i := 0
	for n0 := int64(0); n0 < int64(s.N); n0 += bn {
		kl, kh := value.Value(i64c(0)), value.Value(i64c(0))
		if kn > 0 {
			lo, hi, live := g.bandRange(s, m0, i64c(n0), bm, bn)
			kl, kh = g.kWithin(lo, hi, live, klo, kn)
		}
		tl.product(i64c(0), offB, m0, i64c(n0), kl, kh, func(m, n, x value.Value) {
			if i == len(*slots) {
				*slots = append(*slots, g.alloca(types.Float))
			}
			each(m, n, (*slots)[i], x)
			i++
		})
	}
}

// flashLanes is the number of a warp's lanes that share a row of a key
// tile bn wide in flashRows, warps warps taking bm rows: eight elements
// each, so that a warp steps through several rows at once and a row's
// reductions take few shuffles, or more lanes where the warps would
// otherwise step past the rows.
func flashLanes(bm, bn, warps int64) int64 { return min(32, max(1, bn/8, 32*warps/bm)) }

// laneRows runs body for every row r of a tile of bm rows of bn, the
// rows' flashLanes lanes each taking the columns sub, sub+lanes, ....
// Every lane of a warp runs body the same number of times, so body may
// shuffle (laneReduce).
func (g *kernelBuilder) laneRows(bm, bn int64, body func(r, sub value.Value, lanes int64)) {
	warps := int64(g.threads / 32)
	lanes := flashLanes(bm, bn, warps)
	rows := 32 / lanes // a warp's at a time
	step := warps * rows
	if 32%lanes != 0 || bn%lanes != 0 || bm%step != 0 {
		fail("flash attention rows of %d×%d do not divide among %d threads", bm, bn, g.threads)
	}
	tid := g.tid()
	lane := g.b.NewURem(tid, i64c(32))
	sub, grp := g.b.NewURem(lane, i64c(lanes)), g.b.NewUDiv(lane, i64c(lanes))
	g.strideLoop("lrow", g.b.NewMul(g.b.NewUDiv(tid, i64c(32)), i64c(rows)), i64c(bm), i64c(step), func(rw value.Value) {
		body(g.b.NewAdd(rw, grp), sub, lanes)
	})
}

// laneReduce folds x over the lanes lanes of a row (laneRows), by a
// butterfly of shuffles: every one of them gets the result.
func (g *kernelBuilder) laneReduce(x value.Value, op func(x, y value.Value) value.Value, lanes int64) value.Value {
	for off := lanes / 2; off >= 1; off /= 2 {
		x = op(x, g.shuffle(shflBfly, x, i32c(off)))
	}
	return x
}

// outsideTile reports whether the tile of bm×bn at rows m0 and columns
// n0 lies wholly outside triangle t (idx[A] − idx[B] ≥ C) of a tensor of
// rank rank whose last two axes are the rows and columns (tileTriangle):
// whether the largest difference in it, at a corner, is below C.
func (g *kernelBuilder) outsideTile(t triangle, rank int, m0, n0 value.Value, bm, bn int64) value.Value {
	d := g.b.NewSub(g.b.NewAdd(m0, i64c(bm-1)), n0)
	if t.A == rank-1 {
		d = g.b.NewSub(g.b.NewAdd(n0, i64c(bn-1)), m0)
	}
	return g.b.NewICmp(enum.IPredSLT, d, i64c(int64(t.C)))
}

// tileTriangle reports whether triangle t relates the rows and columns,
// the last two axes of a tensor of rank rank.
func tileTriangle(t triangle, rank int) bool {
	return t.A == rank-2 && t.B == rank-1 || t.A == rank-1 && t.B == rank-2
}

// tileMemory returns bytes of memory for each block's tiles, as an i8
// pointer, and the grid for units units: shared memory where it fits
// beside the kernel's shared arrays so far, else the block's own part of
// the module's global scratch (attnBlocks).
func (g *kernelBuilder) tileMemory(units, bytes int64) (grid int64, base value.Value) {
	if g.smem+bytes <= gpuStaticShared {
		return max(1, min(units, int64(GPUUnitGrid))), g.b.NewBitCast(g.sharedArray(types.Float, bytes/4), types.I8Ptr)
	}
	return g.attnBlocks(units, bytes)
}

// gpuStaticShared is the most shared memory a kernel's static arrays may
// take (CUDA's limit without opting in to more).
const gpuStaticShared = 48 << 10
