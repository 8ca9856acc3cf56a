package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A few long rows (a whole tensor's sum of squares for the gradient norm)
// would leave all but a few of the GPU's multiprocessors idle with a block
// per row, so several blocks share each row: each reduces a chunk of at
// least gridRowChunk elements, and the kernel launches about gridBlocks
// blocks in all.
const (
	gridRowChunk = 4096
	gridBlocks   = 256
)

// gridChunks returns how many blocks share each row of plan p whose
// kernel has results res: 1 (a block per row) unless the rows are few and
// long, every result has one value per row, and no reduction reads
// another row value (they can be combined in one step).
func gridChunks(p *rowPlan, res []*ir.Value) int64 {
	n, r := int64(p.rows.NumElements()), p.rowLen()
	c := min(r/gridRowChunk, gridBlocks/max(n, 1))
	if c < 2 {
		return 1
	}
	for _, v := range res {
		if !slices.Contains(p.row, v) && v.Type.Shape.Equal(p.shape) {
			return 1
		}
	}
	rowVal := map[*ir.Value]bool{}
	for _, w := range p.row {
		rowVal[w] = true
	}
	seen := map[*ir.Value]bool{}
	var reads func(v *ir.Value) bool
	reads = func(v *ir.Value) bool {
		if rowVal[v] {
			return true
		}
		if seen[v] {
			return false
		}
		seen[v] = true
		return slices.ContainsFunc(v.Args, reads)
	}
	for _, w := range p.row {
		if (w.Op == ir.OpReduceSum || w.Op == ir.OpReduceMax) && reads(w.Args[0]) {
			return 1
		}
	}
	return c
}

// emitGridRows emits plan p's row kernel with chunks blocks per row:
// block b reduces chunk b mod chunks of row b / chunks (rowReductionOf,
// then over the block) and thread 0 writes the block's values to a
// global scratch array, fences, and counts the row's finished blocks
// atomically. The block that finishes last folds the row's partial values
// in chunk order, so the result does not depend on which block that is,
// computes the row values, stores the results and resets the count for
// the next launch.
func (g *kernelBuilder) emitGridRows(p *rowPlan, chunks int64, instrs int) (extent, cost int64) {
	n, L := int64(p.rows.NumElements()), p.rowLen()
	g.threads = gpuBlock
	T := int64(g.threads)
	blk, tid := g.ctaid(), g.tid()
	row := g.b.NewUDiv(blk, i64c(chunks))
	chunk := g.b.NewURem(blk, i64c(chunks))
	lo := g.b.NewUDiv(g.b.NewMul(chunk, i64c(L)), i64c(chunks))
	hi := g.b.NewUDiv(g.b.NewMul(g.b.NewAdd(chunk, i64c(1)), i64c(L)), i64c(chunks))
	rix := atLinear(p.rows, row)
	kept := g.dims(rix)
	walk := func(name string, body func(ix *index)) {
		g.strideLoop(name, g.b.NewAdd(lo, tid), hi, i64c(T), func(e value.Value) { body(g.rowElem(p, kept, e)) })
	}
	// The block's values of every reduction, in order.
	type part struct {
		w       *ir.Value
		r       rowReduction
		scratch []value.Value // per part: [n·chunks] values
	}
	var parts []part
	isTid0 := g.b.NewICmp(enum.IPredEQ, tid, i64c(0))
	slot := g.b.NewAdd(g.b.NewMul(row, i64c(chunks)), chunk)
	for _, w := range p.row {
		if w.Op != ir.OpReduceSum && w.Op != ir.OpReduceMax {
			continue
		}
		pt := part{w: w, r: g.rowReductionOf(w, walk)}
		for i, x := range pt.r.parts {
			folded := g.groupReduce(x, pt.r.ops[i], g.threads, tid)
			arr := g.globalScratch(x.Type(), n*chunks)
			pt.scratch = append(pt.scratch, arr)
			g.ifThen("gpart", isTid0, func() {
				g.b.NewStore(folded, g.b.NewGetElementPtr(x.Type(), arr, slot)).Volatile = true
			})
		}
		parts = append(parts, pt)
	}
	count := g.globalScratch(types.I32, n)
	flag := g.sharedArray(types.I32, 1)
	g.ifThen("gcount", isTid0, func() {
		g.threadFence()
		old := g.b.NewAtomicRMW(enum.AtomicOpAdd, g.b.NewGetElementPtr(types.I32, count, row), i32c(1), enum.AtomicOrderingSequentiallyConsistent)
		g.b.NewStore(g.b.NewZExt(g.b.NewICmp(enum.IPredEQ, old, i32c(chunks-1)), types.I32), flag)
	})
	g.barrier()
	last := g.b.NewICmp(enum.IPredNE, g.b.NewLoad(types.I32, flag), i32c(0))
	g.ifThen("glast", g.b.NewAnd(last, isTid0), func() {
		g.threadFence()
		g.rowVals = map[*ir.Value]value.Value{}
		defer func() { g.rowVals = nil }()
		base := g.b.NewMul(row, i64c(chunks))
		for _, pt := range parts {
			folded := make([]value.Value, len(pt.scratch))
			for i, arr := range pt.scratch {
				t := pt.r.parts[i].Type()
				at := func(c value.Value) value.Value {
					ld := g.b.NewLoad(t, g.b.NewGetElementPtr(t, arr, g.b.NewAdd(base, c)))
					ld.Volatile = true
					return ld
				}
				acc := g.alloca(t)
				g.b.NewStore(at(i64c(0)), acc)
				g.forLoop("gfold", i64c(1), i64c(chunks), func(c value.Value) {
					g.b.NewStore(pt.r.ops[i](g.b.NewLoad(t, acc), at(c)), acc)
				})
				folded[i] = g.b.NewLoad(t, acc)
			}
			g.rowVals[pt.w] = pt.r.finish(folded)
		}
		for _, w := range p.row {
			if _, ok := g.rowVals[w]; !ok {
				wix := rix
				if !w.Type.Shape.Equal(p.rows) {
					wix = atLinear(w.Type.Shape, row)
				}
				g.rowVals[w] = g.elemOp(w, wix)
			}
		}
		for k, res := range g.results {
			g.storeAt(res.Type.DType, g.elem(res, atLinear(res.Type.Shape, row)), g.outs[k], row)
		}
		g.b.NewStore(i32c(0), g.b.NewGetElementPtr(types.I32, count, row)).Volatile = true
	})
	return n * chunks * T, 1 + int64(instrs)*L/(chunks*T)
}

// globalScratch is a zeroed array of n elements of type t in the
// device's global memory, shared by every block of every launch of the
// kernel (launches run one after another), as a generic pointer to its
// first element.
func (g *kernelBuilder) globalScratch(t types.Type, n int64) value.Value {
	return g.moduleArray("grid", t, n, 1)
}
