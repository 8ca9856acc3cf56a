package codegen

import (
	"math"
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// minBlockRow is the smallest row a GPU row kernel gives a block of
// threads: below it, one thread per row does the row's work.
const minBlockRow = 32

// blockThreads is the threads per block of a GPU row kernel whose rows
// have r elements: a multiple of the warp, up to gpuBlock, none idle when
// the row is short.
func blockThreads(r int64) int {
	t := int64(gpuBlock)
	for t > 32 && t/2 >= r {
		t /= 2
	}
	return int(t)
}

// emitGPURows emits plan p's row kernel for a GPU: several blocks per row
// where gridChunks says so, else one.
func (g *kernelBuilder) emitGPURows(p *rowPlan, root *ir.Value, instrs int) (extent, cost int64) {
	if c := gridChunks(p, g.results); c > 1 {
		return g.emitGridRows(p, c, instrs)
	}
	return g.emitBlockRows(p, root, instrs)
}

// emitBlockRows emits plan p's row kernel for a GPU: one block per row
// (rowGroup).
func (g *kernelBuilder) emitBlockRows(p *rowPlan, root *ir.Value, instrs int) (extent, cost int64) {
	n, r := int64(p.rows.NumElements()), p.rowLen()
	if n == 0 {
		return 0, 1
	}
	g.threads = blockThreads(r)
	g.rowGroup(p, g.ctaid(), g.tid(), g.threads)
	return n * int64(g.threads), 1 + int64(instrs)*max(r/int64(g.threads), 1)
}

// rowGroup emits plan p's work on row `row` by a group of size threads
// (the block, or one warp when size is 32), lane being the thread's index
// in it. The group's threads walk the row's elements with a stride of its
// size; each reduction sums (or maxes) each thread's part, then the group's
// (groupReduce), so every thread holds the row value; per-row results are
// stored by lane 0 and the row's elements are written by all threads,
// coalesced. Sums accumulate in double, as on the CPU, in an order fixed
// by the group's size.
func (g *kernelBuilder) rowGroup(p *rowPlan, row, lane value.Value, size int) {
	var perRow, perElem []int
	for k, res := range g.results {
		if slices.Contains(p.row, res) || !res.Type.Shape.Equal(p.shape) {
			perRow = append(perRow, k)
		} else {
			perElem = append(perElem, k)
		}
	}
	rix := atLinear(p.rows, row)
	kept := g.dims(rix)
	walk := func(name string, body func(ix *index)) {
		g.strideLoop(name, lane, i64c(p.rowLen()), i64c(int64(size)), func(e value.Value) { body(g.rowElem(p, kept, e)) })
	}
	reduce := func(x value.Value, op func(a, b value.Value) value.Value) value.Value {
		return g.groupReduce(x, op, size, lane)
	}
	g.rowVals = map[*ir.Value]value.Value{}
	defer func() { g.rowVals = nil }()
	for _, w := range p.row {
		wix := rix
		if !w.Type.Shape.Equal(p.rows) {
			wix = atLinear(w.Type.Shape, row)
		}
		if w.Op != ir.OpReduceSum && w.Op != ir.OpReduceMax {
			g.rowVals[w] = g.elemOp(w, wix)
			continue
		}
		r := g.rowReductionOf(w, walk)
		folded := make([]value.Value, len(r.parts))
		for i, x := range r.parts {
			folded[i] = reduce(x, r.ops[i])
		}
		g.rowVals[w] = r.finish(folded)
	}
	if len(perRow) > 0 {
		g.ifThen("row0", g.b.NewICmp(enum.IPredEQ, lane, i64c(0)), func() {
			for _, k := range perRow {
				res := g.results[k]
				g.storeAt(res.Type.DType, g.elem(res, atLinear(res.Type.Shape, row)), g.outs[k], row)
			}
		})
	}
	if len(perElem) > 0 {
		walk("elt", func(ix *index) { g.storeResults(ix, g.linear(ix), perElem) })
	}
}

// reducePlan is the row plan of a reduction v computed alone: its rows
// are its result's elements.
func reducePlan(v *ir.Value) *rowPlan {
	axes := v.Attrs.Ints("axes")
	s := v.Args[0].Type.Shape
	p := &rowPlan{shape: s, axes: axes, rows: v.Type.Shape, row: []*ir.Value{v}}
	for i := range s {
		if !slices.Contains(axes, i) {
			p.kept = append(p.kept, i)
		}
	}
	return p
}

// rowLen is the number of elements in each of p's rows.
func (p *rowPlan) rowLen() int64 {
	r := int64(1)
	for _, a := range p.axes {
		r *= int64(p.shape[a])
	}
	return r
}

// rowElem is the index in plan p's reductions' operand of element e (a
// linear index over the reduced axes) of the row whose kept indices are
// kept.
func (g *kernelBuilder) rowElem(p *rowPlan, kept []value.Value, e value.Value) *index {
	var sizes []int
	for _, a := range p.axes {
		sizes = append(sizes, p.shape[a])
	}
	red := g.dims(atLinear(ir.Shape(sizes), e))
	full := make([]value.Value, len(p.shape))
	for i, a := range p.kept {
		full[a] = kept[i]
	}
	for i, a := range p.axes {
		full[a] = red[i]
	}
	return atDims(p.shape, full)
}

// A rowReduction is one reduction of a row in parts: each thread's
// partial values over its elements, the ops that fold them (associative
// and commutative), and finish, which makes the row value of the folded
// values.
type rowReduction struct {
	parts  []value.Value
	ops    []func(a, b value.Value) value.Value
	finish func(folded []value.Value) value.Value
}

// rowReductionOf computes the thread's parts of reduction w (reduce_sum
// or reduce_max) over the elements walk visits. Sums accumulate in
// accType and are rounded once; a float max is rowMax's pair of the
// maximum order key and whether an element is NaN.
func (g *kernelBuilder) rowReductionOf(w *ir.Value, walk func(string, func(*index))) rowReduction {
	d := w.Type.DType
	smax := func(a, b value.Value) value.Value {
		return g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, b, a), b, a)
	}
	switch {
	case w.Op == ir.OpReduceSum:
		acc := g.alloca(accType(d))
		g.b.NewStore(zeroAcc(d), acc)
		walk("bsum", func(ix *index) {
			g.b.NewStore(g.accumulate(d, g.b.NewLoad(accType(d), acc), g.elem(w.Args[0], ix)), acc)
		})
		add := func(a, b value.Value) value.Value {
			if d.IsFloat() {
				return g.b.NewFAdd(a, b)
			}
			return g.b.NewAdd(a, b)
		}
		return rowReduction{parts: []value.Value{g.b.NewLoad(accType(d), acc)}, ops: []func(a, b value.Value) value.Value{add},
			finish: func(f []value.Value) value.Value { return g.finishSum(d, f[0]) }}
	case !d.IsFloat():
		t := computeType(d)
		acc := g.alloca(t)
		g.b.NewStore(minValue(d), acc)
		walk("bmax", func(ix *index) {
			g.b.NewStore(smax(g.b.NewLoad(t, acc), g.elem(w.Args[0], ix)), acc)
		})
		return rowReduction{parts: []value.Value{g.b.NewLoad(t, acc)}, ops: []func(a, b value.Value) value.Value{smax},
			finish: func(f []value.Value) value.Value { return f[0] }}
	}
	t := computeType(d)
	fk := g.floatKeys(t)
	it, bits, ic, key, fbits := fk.it, fk.w, fk.ic, fk.key, fk.bits
	kacc, nacc := g.alloca(it), g.alloca(types.I32)
	g.b.NewStore(key(ic(fbits(math.Inf(-1)))), kacc)
	g.b.NewStore(i32c(0), nacc)
	walk("bfmax", func(ix *index) {
		e := g.elem(w.Args[0], ix)
		nan := g.b.NewFCmp(enum.FPredUNO, e, e)
		ke := g.b.NewSelect(nan, ic(-1<<(bits-1)), key(g.b.NewBitCast(e, it)))
		g.b.NewStore(smax(g.b.NewLoad(it, kacc), ke), kacc)
		g.b.NewStore(g.b.NewOr(g.b.NewLoad(types.I32, nacc), g.b.NewZExt(nan, types.I32)), nacc)
	})
	or := func(a, b value.Value) value.Value { return g.b.NewOr(a, b) }
	return rowReduction{
		parts: []value.Value{g.b.NewLoad(it, kacc), g.b.NewLoad(types.I32, nacc)},
		ops:   []func(a, b value.Value) value.Value{smax, or},
		finish: func(f []value.Value) value.Value {
			km, anyNaN := f[0], f[1]
			m := g.b.NewBitCast(key(km), t)
			isNaN := g.b.NewAnd(g.b.NewICmp(enum.IPredNE, anyNaN, i32c(0)), g.b.NewICmp(enum.IPredNE, km, ic(fbits(math.Inf(1)))))
			return g.b.NewSelect(isNaN, fconst(t, math.NaN()), m)
		},
	}
}

// groupReduce folds x over a group of size threads (a warp, or the
// block) with op (associative and commutative), returning the result in
// every thread: a butterfly over each warp's lanes, then, for a block,
// each thread folds the warps' results in order from shared memory.
// Every thread of the group must call it.
func (g *kernelBuilder) groupReduce(x value.Value, op func(a, b value.Value) value.Value, size int, lane value.Value) value.Value {
	for off := int64(16); off >= 1; off /= 2 {
		x = op(x, g.shuffle(shflBfly, x, i32c(off)))
	}
	warps := int64(size / 32)
	if warps <= 1 {
		return x
	}
	t := x.Type()
	smem := g.sharedArray(t, warps)
	g.ifThen("lane0", g.b.NewICmp(enum.IPredEQ, g.b.NewURem(lane, i64c(32)), i64c(0)), func() {
		g.b.NewStore(x, g.b.NewGetElementPtr(t, smem, g.b.NewUDiv(lane, i64c(32))))
	})
	g.barrier()
	r := value.Value(g.b.NewLoad(t, smem))
	for w := int64(1); w < warps; w++ {
		r = op(r, g.b.NewLoad(t, g.b.NewGetElementPtr(t, smem, i64c(w))))
	}
	return r
}
