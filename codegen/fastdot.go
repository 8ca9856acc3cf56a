package codegen

import (
	"slices"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// narrowChunkFloats is about how many floats of product a fast dot with a
// half root computes before converting them (1 MiB): few enough to stay
// in L2 for the epilogue, enough units that packing B is amortized.
const narrowChunkFloats = 256 << 10

// MinFastDotFlops is the size of product below which the CPU uses the
// naive dot: each distinct fast dot spec is about 100 KiB of LLVM IR, and
// the smallest products gain little from it (bench/NOTES.md).
const MinFastDotFlops = 1 << 16

// fastDot is the use of the fast f32 dot kernel (DotKernel) for one
// kernel: the dot, its spec, and the root of its elementwise epilogue (the
// dot itself when there is none).
type fastDot struct {
	dot, root *ir.Value
	spec      DotSpec
	// bias is the vector the kernel adds to every row (spec.Bias), or
	// nil; res are the tensors it adds (spec.Residuals).
	bias *ir.Value
	res  []*ir.Value
	// sum, when the kernel folds adds under a narrowing root, is the
	// folded sum the product buffer holds.
	sum *ir.Value
}

// planFastDot returns how kernel g (whose operands' pointers are known)
// computes root with the fast dot kernel, or nil when it cannot: the dot
// must be f32 with a layout DotSpecOf reads in place, of at least
// MinFastDotFlops, read its operands
// from buffers, and every value depending on it up to the root must be an
// elementwise op of the dot's shape, f32 but for a root converting to half
// (so the epilogue can run over the product, element by element).
func (g *kernelBuilder) planFastDot(body []*ir.Value, root *ir.Value) *fastDot {
	if root.Op == ir.OpTranspose && len(body) == 2 && body[0].Op == ir.OpDot && root.Args[0] == body[0] {
		return g.planTransposedDot(body[0], root)
	}
	dot := dotEpilogue(body, root)
	if dot == nil {
		return nil
	}
	fd := g.fastDotOf(dot, root, body)
	if fd != nil {
		g.foldAdds(fd, body)
	}
	return fd
}

// foldAdds makes the fast dot compute the epilogue itself when that is only
// a sum of the product with a bias (a vector of N floats broadcast along
// the last axis) and at most maxResiduals tensors of the product's shape
// (residual connections), each read from a buffer other than the result's
// and each partial sum used only by the next add: the micro-kernel adds
// them to each tile as it stores it (the bias first, then the tensors
// from the product outwards), and no pass over the product follows.
func (g *kernelBuilder) foldAdds(fd *fastDot, body []*ir.Value) {
	s := &fd.spec
	rank := fd.dot.Type.Rank()
	if s.Bias || s.Accumulate || s.Residuals > 0 || rank == 0 || fd.dot.Type.Shape[rank-1] != s.N || !s.denseC() {
		return
	}
	uses := map[*ir.Value]int{}
	for _, v := range body {
		for _, a := range v.Args {
			uses[a]++
		}
	}
	// A root converting the sum to a half type (a pre-activation) keeps
	// the conversion as the epilogue.
	top := fd.root
	if top.Op == ir.OpConvert && top.Type.DType != ir.F32 {
		top = top.Args[0]
	}
	var bias *ir.Value
	var res []*ir.Value
	for v := top; v != fd.dot; {
		if v.Op != ir.OpAdd || v != fd.root && uses[v] != 1 {
			return
		}
		next := (*ir.Value)(nil)
		for i, c := range v.Args {
			t := v.Args[1-i]
			if c != fd.dot && c.Op != ir.OpAdd {
				continue
			}
			if t.Op == ir.OpBroadcast && bias == nil && slices.Equal(t.Attrs.Ints("dims"), []int{rank - 1}) {
				if b := t.Args[0]; g.ptrs[b] != nil && b.Type.DType == ir.F32 && b.Type.Shape.Equal(ir.Shape{s.N}) {
					bias, next = b, c
					break
				}
			}
			if p := g.ptrs[t]; p != nil && p != g.out && t.Type.Equal(fd.dot.Type) && len(res) < maxResiduals {
				res, next = append(res, t), c
				break
			}
		}
		if next == nil {
			return
		}
		v = next
	}
	if uses[fd.dot] != 1 {
		return
	}
	slices.Reverse(res)
	s.Bias, s.Residuals = bias != nil, len(res)
	fd.bias, fd.res = bias, res
	if top == fd.root {
		fd.root = fd.dot
	} else if top != fd.dot {
		fd.sum = top
	}
}

// fastDotOf is the fast dot computing dot, with root the kernel's result
// (body the kernel's instructions), or nil: dot is f32, of at least
// MinFastDotFlops, reads its operands from buffers in a layout DotSpecOf
// reads in place. Its spec has the bands dotBands finds.
func (g *kernelBuilder) fastDotOf(dot, root *ir.Value, body []*ir.Value) *fastDot {
	if dot.Type.DType != ir.F32 {
		return nil
	}
	spec, err := DotSpecOf(dot.Args[0].Type, dot.Args[1].Type, dot.Attrs)
	return g.fastDotFor(dot, root, spec, err, body, g.results)
}

// fastDotFor is the fast dot computing dot with spec (err: the error of
// making it) and root the kernel's result, its bands found in body and
// results, or nil: the target has no dot tile (a GPU takes the naive dot),
// an operand is not read from a buffer, or the spec is invalid or below
// MinFastDotFlops.
func (g *kernelBuilder) fastDotFor(dot, root *ir.Value, spec DotSpec, err error, body, results []*ir.Value) *fastDot {
	if err != nil || g.mod.t.MR == 0 || spec.check() != nil || spec.Flops() < MinFastDotFlops {
		return nil
	}
	for _, a := range dot.Args {
		if _, ok := g.ptrs[a]; !ok {
			return nil
		}
	}
	spec.Target = g.mod.t
	if root != dot {
		spec = spec.byRows() // the epilogue runs over the units' rows
	}
	dotBands(&spec, dot, g.fills, body, results)
	return &fastDot{dot: dot, root: root, spec: spec}
}

// planRowDot returns how kernel g computes a dot fusion whose epilogue is a
// row kernel over the product's rows (softmax of attention scores, or its
// backward): the fast dot writes the product into the result buffer, then
// the row kernel runs in place over the rows each part computed, while
// they are in cache. It needs one result, f32 of the product's shape, and
// rows that reduce the product's last axis only; else nil.
func (g *kernelBuilder) planRowDot(body []*ir.Value, rows *rowPlan, root *ir.Value) *fastDot {
	if len(g.results) != 1 {
		return nil
	}
	dot := dotIn(body)
	r := dot.Type.Rank()
	if !rows.shape.Equal(dot.Type.Shape) || len(rows.axes) != 1 || rows.axes[0] != r-1 ||
		root.Type.DType != ir.F32 || !root.Type.Shape.Equal(dot.Type.Shape) {
		return nil
	}
	return g.fastDotOf(dot, root, body)
}

// planTransposedDot plans a dot fusion whose root transposes the product
// (fusion's transposed-result rule): the fast dot writes the product
// straight in the transposed order, with the strides
// ir.TransposedDotStrides gives (no epilogue).
func (g *kernelBuilder) planTransposedDot(dot, root *ir.Value) *fastDot {
	a, b := dot.Args[0], dot.Args[1]
	lb, _, lc, _ := ir.DotDims(dot.Attrs)
	cst, ok := ir.TransposedDotStrides(dot.Type.Shape, len(lb), a.Type.Rank()-len(lb)-len(lc), root.Attrs.Ints("perm"))
	if !ok || dot.Type.DType != ir.F32 {
		return nil
	}
	spec, err := dotSpecStrided(a.Type, b.Type, dot.Attrs, cst)
	return g.fastDotFor(dot, dot, spec, err, nil, nil)
}

// emitFastDot emits a kernel that calls the fast dot kernel (added to the
// module as <sym>.gemm, writing the f32 product to the result buffer) on
// its units [lo, hi), then, when there is an epilogue, computes the root
// in place over the rows of the result those units cover. The parallel
// range is the dot kernel's (blocks of rows of C, see DotSpec.Extent). A
// weight gradient that dotSplit splits is emitSplitKDot's.
func (g *kernelBuilder) emitFastDot(fd *fastDot) (extent, cost int64) {
	if g.chunks > 0 && fd.root == fd.dot && splitK(fd.spec) {
		return g.emitSplitKDot(fd)
	}
	if fd.root.Type.DType == ir.F32 {
		return g.emitFastDotRows(fd, nil, 0)
	}
	// A narrower root (a pre-activation kept in half) cannot hold the
	// product: each unit's goes into a buffer of the call's own, and the
	// epilogue reads it there while it is in cache.
	s := fd.spec
	rb := int64(min(s.plan().RB, s.M))
	per := max(1, narrowChunkFloats/(rb*int64(s.N))) // units a chunk
	raw := g.heap(i64c(per*rb*int64(s.N)*4), 64)
	buf := g.b.NewBitCast(raw, types.NewPointer(types.Float))
	lo, hi := g.lo, g.hi
	g.strideLoop("chunk", lo, hi, i64c(per), func(u value.Value) {
		off := g.b.NewMul(g.unitRow(u, s.M, s.plan().RB), i64c(int64(s.N)))
		g.lo, g.hi = u, g.min64(g.b.NewAdd(u, i64c(per)), hi)
		extent, cost = g.emitFastDotRowsVia(fd, nil, 0, g.shifted(types.Float, buf, off))
	})
	g.lo, g.hi = lo, hi
	g.mod.t.lower().release(g.b, g.mod.declare, raw)
	return extent, cost
}

// emitFastDotRows is emitFastDot with, when rows is not nil, the row
// kernel of plan rows (planRowDot) as the epilogue: it runs over the rows
// of the product the call's units cover, reading the product from the
// result buffer and writing the root over it, row by row.
func (g *kernelBuilder) emitFastDotRows(fd *fastDot, rows *rowPlan, instrs int) (extent, cost int64) {
	return g.emitFastDotRowsVia(fd, rows, instrs, g.out)
}

// emitFastDotRowsVia is emitFastDotRows with the product written to prod,
// where the epilogue reads it, instead of the result buffer (the same, or
// another buffer laid out as the product: attention_grad.go).
func (g *kernelBuilder) emitFastDotRowsVia(fd *fastDot, rows *rowPlan, instrs int, prod value.Value) (extent, cost int64) {
	s := fd.spec
	// Kernels of one module with the same spec share one dot kernel,
	// named by a hash of the spec and its blocking; it and the functions
	// it calls are internal and noinline, so that a shard of the module
	// (toolchain.go) gets its own copy of those its kernels call.
	name := "xlc.gemm." + s.key()
	// The kernel calls the dot's body (A, B, [bias,] residuals..., C, lo,
	// hi); the dot's exported frame is not needed.
	body := funcIn(g.mod.m, name+".body")
	if body == nil {
		if _, err := DotKernel(g.mod.m, name, s); err != nil {
			fail("%v", err)
		}
		g.mod.m.Funcs = slices.DeleteFunc(g.mod.m.Funcs, func(f *llir.Func) bool { return f.Name() == name })
		body = funcIn(g.mod.m, name+".body")
	}
	ptrs := []value.Value{g.ptrs[fd.dot.Args[0]], g.ptrs[fd.dot.Args[1]], prod}
	var adds []value.Value // before C: the bias, the residuals
	if fd.bias != nil {
		adds = append(adds, g.ptrs[fd.bias])
	}
	for _, r := range fd.res {
		adds = append(adds, g.ptrs[r])
	}
	ptrs = slices.Insert(ptrs, 2, adds...)
	for i, p := range ptrs {
		if t := body.Params[i].Typ; !t.Equal(p.Type()) {
			ptrs[i] = g.b.NewBitCast(p, t)
		}
	}
	g.b.NewCall(body, append(ptrs, g.lo, g.hi)...)
	p := s.plan()
	extent = s.Extent()
	cost = 2 * int64(min(p.RB, s.M)) * int64(s.N) * int64(s.K)
	if fd.root == fd.dot {
		return extent, cost
	}
	// The units' rows of C over all batches, [R(lo), R(hi)): its elements
	// [R(lo)·N, R(hi)·N).
	row := func(u value.Value) value.Value { return g.unitRow(u, s.M, p.RB) }
	lo, hi := g.lo, g.hi
	g.ptrs[fd.dot] = prod
	if fd.sum != nil {
		g.ptrs[fd.sum] = prod
		defer delete(g.ptrs, fd.sum)
	}
	if rows != nil {
		g.lo, g.hi = row(lo), row(hi)
		_, rcost := g.emitRows(rows, fd.root, instrs)
		g.lo, g.hi = lo, hi
		return extent, cost + int64(min(p.RB, s.M))*rcost
	}
	g.lo, g.hi = g.b.NewMul(row(lo), i64c(int64(s.N))), g.b.NewMul(row(hi), i64c(int64(s.N)))
	g.emitElemental(fd.root)
	g.lo, g.hi = lo, hi
	return extent, cost + int64(min(p.RB, s.M))*int64(s.N)*int64(len(fd.dot.Args)+2)
}

// emitNaiveDotRows lowers a dot fusion whose epilogue is a row kernel (see
// planRowDot) when the fast dot does not apply: per call, the naive dot
// writes the product's rows [lo, hi) into the result buffer (the root has
// the product's f32 shape), then the row kernel runs over them in place,
// so the rows' passes read the product instead of recomputing it.
func (g *kernelBuilder) emitNaiveDotRows(body []*ir.Value, rows *rowPlan, root *ir.Value) (extent, cost int64) {
	dot := dotIn(body)
	if dot.Type.DType != ir.F32 || root.Type.DType != ir.F32 || !root.Type.Shape.Equal(dot.Type.Shape) || len(g.results) != 1 {
		fail("a dot fusion with a row epilogue needs one f32 result of the product's shape")
	}
	n := int64(dot.Type.Shape[dot.Type.Rank()-1])
	k := int64(dot.Args[0].Type.Shape.NumElements()) * n / max(1, int64(dot.Type.Shape.NumElements()))
	g.forLoop("ndot", g.b.NewMul(g.lo, i64c(n)), g.b.NewMul(g.hi, i64c(n)), func(i value.Value) {
		g.storeAt(ir.F32, g.elem(dot, atLinear(dot.Type.Shape, i)), g.out, i)
	})
	g.ptrs[dot] = g.out
	extent, cost = g.emitRows(rows, root, len(body))
	return extent, cost + n*(2*k+1)
}

// unitRow is R(u), the first row of unit u of a dot kernel's range over
// all batches' rows: unit u covers rows [r·rb, min(m, (r+1)·rb)) of batch
// u / blocks, r = u mod blocks, so R(u) = (u / blocks)·m + min(r·rb, m).
func (g *kernelBuilder) unitRow(u value.Value, m, rb int) value.Value {
	blocks := int64((m + rb - 1) / rb)
	bt := g.b.NewUDiv(u, i64c(blocks))
	r := g.b.NewURem(u, i64c(blocks))
	return g.b.NewAdd(g.b.NewMul(bt, i64c(int64(m))), g.min64(g.b.NewMul(r, i64c(int64(rb))), i64c(int64(m))))
}

// dotIn is the dot of a dot fusion's callee body (which has exactly one).
func dotIn(body []*ir.Value) *ir.Value {
	for _, v := range body {
		if v.Op == ir.OpDot {
			return v
		}
	}
	return nil
}
