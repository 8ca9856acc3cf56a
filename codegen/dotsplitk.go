package codegen

import (
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A linear layer's weight gradient xᵀ·dy contracts over the tokens
// (K = batch·seq), whose rows the kernels before it wrote split across the
// threads, into a small product. Split by rows of the product, every
// thread reads and packs all of dy, half of it from another core's cache.
// On the CPU such a product is instead dotKChunks products over parts of
// K: a batch of the dot kernel, each product in the kernel's scratch
// buffer, which the last part to finish adds up in order into the result.
// The chunks are fixed, so results do not depend on the thread count.
const (
	// dotKChunks is the number of parts of K.
	dotKChunks = 2
	// minSplitK is the least K split.
	minSplitK = 1024
	// maxSplitKFloats is the largest product split (M·N floats): its
	// partial products stay in cache for the sum.
	maxSplitKFloats = 64 << 10
)

// dotSplit returns the parts of K and the scratch bytes with which the CPU
// kernel of v computes it (emitSplitKDot), or zeros: v must be an f32 dot
// of one product whose first operand is stored K×M (DotSpec.TransA), with
// K at least minSplitK, a multiple of dotKChunks, and M·N at most
// maxSplitKFloats.
func (m *module) dotSplit(v *ir.Value) (chunks, scratch int64) {
	if m.t.gpuKernels() || m.t.MR == 0 || v.Op != ir.OpDot || v.Type.DType != ir.F32 {
		return 0, 0
	}
	s, err := DotSpecOf(v.Args[0].Type, v.Args[1].Type, v.Attrs)
	if err != nil || !splitK(s) {
		return 0, 0
	}
	return dotKChunks, chunkCounter + dotKChunks*int64(s.M)*int64(s.N)*4
}

// splitK reports whether spec s is one dotSplit splits.
func splitK(s DotSpec) bool {
	return s.Batch == 1 && s.TransA && s.BatchDims == nil && s.K >= minSplitK && s.K%dotKChunks == 0 &&
		s.M*s.N <= maxSplitKFloats && !s.halfA() && !s.halfB() && !s.Bias &&
		s.Residuals == 0 && !s.Accumulate && s.BandA == (DotBand{}) && s.BandB == (DotBand{}) &&
		s.BandC == (DotBand{}) && s.denseC() && s.Flops() >= MinFastDotFlops
}

// emitSplitKDot emits fd (a plain dot that dotSplit splits) as g.chunks
// products over consecutive parts of K, a batch dim of the dot kernel
// whose products go to the scratch buffer after its counter; the last part
// to finish (lastPart) sums the products in order into the result.
func (g *kernelBuilder) emitSplitKDot(fd *fastDot) (extent, cost int64) {
	s := fd.spec
	lda, ldb, _ := s.lds()
	kc := int64(s.K) / g.chunks
	kb := ldb // a k of B stored K×N is a row, of B stored N×K a column
	if s.TransB {
		kb = 1
	}
	mn := int64(s.M) * int64(s.N)
	parts := s
	parts.Batch, parts.K, parts.LDA, parts.LDB = int(g.chunks), int(kc), int(lda), int(ldb)
	parts.BatchDims = []DotBatchDim{{Size: int(g.chunks), A: kc * lda, B: kc * kb, C: mn}}
	// The whole product's choice: plan packs a transposed A unbatched only.
	parts.Blocking = &DotBlocking{PackA: s.plan().PackA}
	split := *fd
	split.spec = parts
	prods := g.b.NewBitCast(g.b.NewGetElementPtr(types.I8, g.scratch, i64c(chunkCounter)), types.NewPointer(types.Float))
	extent, cost = g.emitFastDotRowsVia(&split, nil, 0, prods)

	g.lastPart("ksum", extent, func() {
		g.forLoop("ksum", i64c(0), i64c(mn), func(i value.Value) {
			at := func(c int64) value.Value {
				return g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, prods, g.b.NewAdd(i, i64c(c*mn))))
			}
			sum := at(0)
			for c := int64(1); c < g.chunks; c++ {
				sum = g.b.NewFAdd(sum, at(c))
			}
			g.b.NewStore(sum, g.b.NewGetElementPtr(types.Float, g.out, i))
		})
	})
	return extent, cost
}
