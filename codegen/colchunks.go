package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A bias's or a layer norm's gradient sums a tensor over its rows, which
// the kernel before it wrote split by rows across the threads. Splitting
// the sum by columns makes each thread read half its rows from another
// core's cache; on the CPU, a column sum of enough rows is instead split
// into a fixed number of chunks of rows (so that results do not depend on
// the thread count), each summed into a row of partial sums in the
// kernel's scratch buffer, which the last part to finish folds in order.
const (
	// maxColumnChunks is the most chunks of rows a column sum takes.
	maxColumnChunks = 16
	// minChunkRows is the fewest rows a chunk sums.
	minChunkRows = 64
	// maxColumnScratch is the most bytes of partial sums a kernel keeps.
	maxColumnScratch = 4 << 20
	// chunkCounter is the bytes before the partial sums, where the count
	// of chunks done lives (a cache line of its own).
	chunkCounter = 64
)

// columnChunks returns the chunks of rows and the scratch bytes with which
// the CPU kernel of v sums its results by rows, or zeros when it sums
// them by columns: v (or its fusion's results) must be float sums over the
// same leading axes of one shape (leadingAxes), of at least 2·minChunkRows
// rows.
func (m *module) columnChunks(v *ir.Value) (chunks, scratch int64) {
	if m.t.gpuKernels() {
		return 0, 0
	}
	rs := []*ir.Value{v}
	if v.Op == ir.OpFusion {
		rs = v.Callee.Results
	}
	w := rs[0]
	for _, r := range rs {
		if !leadingAxes(r) || !slices.Equal(r.Attrs.Ints("axes"), w.Attrs.Ints("axes")) || !r.Args[0].Type.Shape.Equal(w.Args[0].Type.Shape) {
			return 0, 0
		}
	}
	n := int64(w.Type.Shape.NumElements())
	red := int64(w.Args[0].Type.Shape.NumElements()) / n
	chunks = min(maxColumnChunks, red/minChunkRows)
	bytes := chunks * n * int64(len(rs)) * 8
	if chunks < 2 || bytes > maxColumnScratch {
		return 0, 0
	}
	return chunks, chunkCounter + bytes
}

// emitColumnSumsByRows emits vs (emitColumnSums's) over g.chunks chunks
// of rows: each unit sums its rows into its row of partial sums in double
// (columnTiles); the last part to finish (lastPart) adds up the chunks'
// partial sums in order and rounds them to the results.
func (g *kernelBuilder) emitColumnSumsByRows(vs []*ir.Value) (extent, cost int64) {
	v := vs[0]
	n := int64(v.Type.Shape.NumElements())
	red := int64(v.Args[0].Type.Shape.NumElements()) / n
	chunks := g.chunks
	per := (red + chunks - 1) / chunks
	sums := g.b.NewBitCast(g.b.NewGetElementPtr(types.I8, g.scratch, i64c(chunkCounter)), types.NewPointer(types.Double))
	partial := func(k int, c, j value.Value) value.Value {
		row := g.b.NewAdd(g.b.NewMul(i64c(int64(k)), i64c(chunks)), c)
		return g.b.NewGetElementPtr(types.Double, sums, g.b.NewAdd(g.b.NewMul(row, i64c(n)), j))
	}
	g.forLoop("chunk", g.lo, g.hi, func(c value.Value) {
		r0 := g.b.NewMul(c, i64c(per))
		r1 := g.min64(i64c(red), g.b.NewAdd(r0, i64c(per)))
		g.columnTiles(vs, r0, r1, i64c(0), i64c(n), func(k int, acc, jlo, j value.Value) {
			g.b.NewStore(acc, partial(k, c, g.b.NewAdd(jlo, j)))
		})
	})
	g.lastPart("cfold", chunks, func() {
		// Chunk 0's row accumulates the others in order, a loop over the
		// columns per chunk (it vectorizes).
		for k := range vs {
			g.forLoop("cfold", i64c(1), i64c(chunks), func(c value.Value) {
				g.forLoop("cfcol", i64c(0), i64c(n), func(j value.Value) {
					p := partial(k, i64c(0), j)
					g.b.NewStore(g.b.NewFAdd(g.b.NewLoad(types.Double, p), g.b.NewLoad(types.Double, partial(k, c, j))), p)
				})
			})
		}
		g.forLoop("cfout", i64c(0), i64c(n), func(j value.Value) {
			for k, w := range vs {
				d := w.Type.DType
				g.storeAt(d, g.finishSum(d, g.b.NewLoad(types.Double, partial(k, i64c(0), j))), g.outs[k], j)
			}
		})
	})
	return chunks, 1 + per*n*int64(len(vs))
}

// lastPart ends a call of a kernel whose parts share its scratch buffer:
// the call adds its units, hi − lo, to the counter at the buffer's start
// (acquire and release); the one whose count completes total runs last,
// which may read what every part wrote, and resets the counter. The pool
// starts the next call only after this one's parts return.
func (g *kernelBuilder) lastPart(name string, total int64, last func()) {
	counter := g.b.NewBitCast(g.scratch, types.NewPointer(types.I64))
	mine := g.b.NewSub(g.hi, g.lo)
	old := g.b.NewAtomicRMW(enum.AtomicOpAdd, counter, mine, enum.AtomicOrderingAcquireRelease)
	g.ifThen(name, g.b.NewICmp(enum.IPredEQ, g.b.NewAdd(old, mine), i64c(total)), func() {
		last()
		g.b.NewStore(i64c(0), counter)
	})
}

// columnPrefetchRows is how far ahead, in rows, a CPU column sum asks for
// its operands' lines: its loads otherwise wait on memory, though it reads
// a chunk's rows in order (bench/NOTES.md).
const columnPrefetchRows = 4

// prefetchRow prefetches row r (at most columnTile elements from column
// jlo, n to a row) of each buffer of the rows' shape that vs's operands
// read, on the CPU (prefetchLines).
func (g *kernelBuilder) prefetchRow(vs []*ir.Value, r, jlo value.Value, n int64) {
	if g.mod.t.gpuKernels() {
		return
	}
	shape := vs[0].Args[0].Type.Shape
	var operands []*ir.Value
	for _, w := range vs {
		operands = append(operands, w.Args[0])
	}
	visitValues(operands, func(v *ir.Value) bool {
		p, ok := g.ptrs[v]
		if !ok {
			return true
		}
		if !v.Type.Shape.Equal(shape) {
			return false
		}
		et := p.Type().(*types.PointerType).ElemType
		row := g.b.NewAdd(g.b.NewMul(r, i64c(n)), jlo)
		prefetchLines(g.b, g.mod.declare, et, p, min(n, columnTile), int64(v.Type.DType.Size()), func(c int64) value.Value {
			return g.b.NewAdd(row, i64c(c))
		})
		return false
	})
}
