package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// scatterOf returns scatter_add v's updates and indices, its dtype, the
// table's rows n along the axis, the elements inner of each, and the
// number of indices m.
func scatterOf(v *ir.Value) (upd, idx *ir.Value, d ir.DType, n, inner, m int64) {
	axis := v.Attrs.Int("axis")
	s := v.Type.Shape
	return v.Args[0], v.Args[1], v.Type.DType, int64(s[axis]), int64(s[axis+1:].NumElements()), int64(v.Args[1].Type.Shape.NumElements())
}

// emitGPUScatterAdd emits scatter_add v for a GPU, without atomics or
// scratch memory, each result element summing the updates that land on it
// in index order, in double for floats: the CPU kernel's sums, so results
// are bitwise reproducible. Rows of at least minBlockRow elements (an
// embedding table's) take a block each (emitGPUScatterRows); otherwise one
// thread per result element walks every index (a table of n rows costs
// n·m index reads, fine for short rows of few tables).
func (g *kernelBuilder) emitGPUScatterAdd(v *ir.Value) (extent, cost int64) {
	upd, idx, d, n, inner, m := scatterOf(v)
	total := int64(v.Type.Shape.NumElements())
	if total == 0 {
		return 0, 1
	}
	if inner >= minBlockRow {
		return g.emitGPUScatterRows(v)
	}
	at := accType(d)
	g.forLoop("elt", g.lo, g.hi, func(e value.Value) {
		i := g.b.NewURem(e, i64c(inner))
		row := g.b.NewURem(g.b.NewUDiv(e, i64c(inner)), i64c(n))
		o := g.b.NewUDiv(e, i64c(n*inner))
		acc := g.alloca(at)
		g.b.NewStore(zeroAcc(d), acc)
		g.forLoop("upd", i64c(0), i64c(m), func(j value.Value) {
			c := g.clampIndex(g.elem(idx, atLinear(idx.Type.Shape, j)), int(n))
			g.ifThen("hit", g.b.NewICmp(enum.IPredEQ, c, row), func() {
				src := g.b.NewAdd(g.b.NewMul(g.b.NewAdd(g.b.NewMul(o, i64c(m)), j), i64c(inner)), i)
				x := g.elem(upd, atLinear(upd.Type.Shape, src))
				g.b.NewStore(g.accumulate(d, g.b.NewLoad(at, acc), x), acc)
			})
		})
		g.storeAt(d, g.finishSum(d, g.b.NewLoad(at, acc)), g.out, e)
	})
	return total, 2 + 2*m
}

// scatterInner is the most elements of a row a thread of
// emitGPUScatterRows keeps sums for at once; longer rows walk the indices
// again for each part.
const scatterInner = 8

// emitGPUScatterRows emits scatter_add v with a block per table row (of
// inner elements, each outer index's rows apart). The block walks the
// indices a block's worth at a time: each thread tests one, a block-wide
// scan gives each hit its place, the hits' positions go to shared memory
// in index order, and every thread adds those updates' elements of its
// part of the row. A table of n rows costs n·m/T index reads per thread
// rather than n·inner·m.
func (g *kernelBuilder) emitGPUScatterRows(v *ir.Value) (extent, cost int64) {
	upd, idx, d, n, inner, m := scatterOf(v)
	rows := int64(v.Type.Shape.NumElements()) / inner
	g.threads = blockThreads(inner)
	T := int64(g.threads)
	list := g.sharedArray(types.I64, T)
	tid := g.tid()
	row := g.ctaid()
	r := g.b.NewURem(row, i64c(n))
	o := g.b.NewUDiv(row, i64c(n))
	at := accType(d)
	part := T * scatterInner
	g.strideLoop("part", i64c(0), i64c(inner), i64c(part), func(i0 value.Value) {
		accs := make([]value.Value, scatterInner)
		for q := range accs {
			accs[q] = g.alloca(at)
			g.b.NewStore(zeroAcc(d), accs[q])
		}
		g.strideLoop("chunk", i64c(0), i64c(m), i64c(T), func(c0 value.Value) {
			j := g.b.NewAdd(c0, tid)
			hit := g.alloca(types.I1)
			g.b.NewStore(constant.False, hit)
			g.ifThen("inidx", g.b.NewICmp(enum.IPredSLT, j, i64c(m)), func() {
				c := g.clampIndex(g.elem(idx, atLinear(idx.Type.Shape, j)), int(n))
				g.b.NewStore(g.b.NewICmp(enum.IPredEQ, c, r), hit)
			})
			h := g.b.NewLoad(types.I1, hit)
			pos, total := g.blockScan(g.b.NewZExt(h, types.I32))
			g.ifThen("record", h, func() {
				g.b.NewStore(j, g.b.NewGetElementPtr(types.I64, list, g.b.NewZExt(pos, types.I64)))
			})
			g.barrier()
			g.forLoop("hits", i64c(0), g.b.NewZExt(total, types.I64), func(k value.Value) {
				jj := g.b.NewLoad(types.I64, g.b.NewGetElementPtr(types.I64, list, k))
				for q, acc := range accs {
					i := g.b.NewAdd(i0, g.b.NewAdd(tid, i64c(int64(q)*T)))
					g.ifThen("mine", g.b.NewICmp(enum.IPredSLT, i, i64c(inner)), func() {
						src := g.b.NewAdd(g.b.NewMul(g.b.NewAdd(g.b.NewMul(o, i64c(m)), jj), i64c(inner)), i)
						x := g.elem(upd, atLinear(upd.Type.Shape, src))
						g.b.NewStore(g.accumulate(d, g.b.NewLoad(at, acc), x), acc)
					})
				}
			})
			// The next chunk's positions overwrite the list.
			g.barrier()
		})
		for q, acc := range accs {
			i := g.b.NewAdd(i0, g.b.NewAdd(tid, i64c(int64(q)*T)))
			g.ifThen("out", g.b.NewICmp(enum.IPredSLT, i, i64c(inner)), func() {
				g.storeAt(d, g.finishSum(d, g.b.NewLoad(at, acc)), g.out, g.b.NewAdd(g.b.NewMul(row, i64c(inner)), i))
			})
		}
	})
	return rows * T, 2 + 2*m/T + m*inner/(n*T)
}

// blockScan returns, for each thread's x (an i32; every thread of the
// block calls it), the sum of the x of the threads before it and the sum
// over the block: a scan of each warp by shuffles, then the warps' sums
// through shared memory.
func (g *kernelBuilder) blockScan(x value.Value) (before, total value.Value) {
	tid := g.tid()
	lane := g.b.NewTrunc(g.b.NewURem(tid, i64c(32)), types.I32)
	warp := g.b.NewUDiv(tid, i64c(32))
	warps := int64(g.threads / 32)
	s := x
	for d := int64(1); d < 32; d *= 2 {
		y := g.shuffle(shflUp, s, i32c(d))
		s = g.b.NewAdd(s, g.b.NewSelect(g.b.NewICmp(enum.IPredUGE, lane, i32c(d)), y, i32c(0)))
	}
	sums := g.sharedArray(types.I32, warps)
	g.ifThen("wsum", g.b.NewICmp(enum.IPredEQ, lane, i32c(31)), func() {
		g.b.NewStore(s, g.b.NewGetElementPtr(types.I32, sums, warp))
	})
	g.barrier()
	prior, all := value.Value(i32c(0)), value.Value(i32c(0))
	for w := int64(0); w < warps; w++ {
		ws := g.b.NewLoad(types.I32, g.b.NewGetElementPtr(types.I32, sums, i64c(w)))
		prior = g.b.NewAdd(prior, g.b.NewSelect(g.b.NewICmp(enum.IPredULT, i64c(w), warp), ws, i32c(0)))
		all = g.b.NewAdd(all, ws)
	}
	// The sums are read before any thread's next scan writes them: the
	// caller waits at a barrier between scans.
	return g.b.NewAdd(prior, g.b.NewSub(s, x)), all
}
