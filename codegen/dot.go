package codegen

import (
	"fmt"
	"strings"

	llir "github.com/llir/llvm/ir"

	"xlc/ir"
)

// DotSpec describes one batched f32 matrix product kernel (A and B may
// be half: AType, BType):
//
//	C[b] = Alpha · A[b]·B[b] (+ Bias broadcast over rows) (+ each residual R[b]) (+ C[b] when Accumulate)
//
// for b in [0, Batch), with A[b] an M×K matrix (stored K×M when TransA),
// B[b] a K×N matrix (stored N×K when TransB) and C[b] M×N. Each matrix is
// stored by rows: unit stride along a row, LDA, LDB or LDC elements from
// one row to the next (0: dense, the row's length). The batches follow one
// another densely unless BatchDims says otherwise.
//
// The kernel's buffers (see DotKernel) are, in order: A, B, Bias (only
// when Bias is set; N floats), the residuals (as C), C.
type DotSpec struct {
	Batch, M, N, K int
	TransA, TransB bool
	// AType and BType are how A and B are stored: ir.F32 (the zero value
	// means F32), ir.BF16 or ir.F16 (2-byte elements, which LDA, LDB and
	// BatchDims count). A half operand is widened to f32 as it is packed
	// (it is always packed, whatever Blocking asks); the product is
	// accumulated in f32, and C, the bias and the residuals are f32 (as
	// TF's and PyTorch's autocast have them). When both are bf16 and the
	// target has AVX-512 BF16, they stay bf16, packed by pairs of k, and
	// the micro-kernel multiplies by vdpbf16ps (dotbf16.go).
	AType, BType ir.DType
	// LDA, LDB and LDC are the row strides (leading dimensions) of A, B
	// and C as stored, in elements of their types; 0 means dense: K for A
	// (M when TransA), N for B (K when TransB), N for C.
	LDA, LDB, LDC int
	// BatchDims, when not nil, splits the batch index b into dims,
	// outermost first, whose sizes multiply to Batch; each has its own
	// stride in A, B and C (the offset of batch b is the sum over the dims
	// of index·stride). Nil means one dim of strides M·K, K·N and M·N with
	// the dense leading dimensions (LDA·rows otherwise).
	BatchDims []DotBatchDim
	// Alpha multiplies the product; 0 is taken as 1.
	Alpha float32
	// Bias adds a vector of N floats (one more buffer, before C) to every
	// row of the result.
	Bias bool
	// Residuals adds that many tensors laid out as C (buffers after the
	// bias, before C) to the result: a residual connection's add.
	Residuals int
	// Accumulate adds the result to what C holds (BLAS beta = 1) instead of
	// overwriting it.
	Accumulate bool
	// BandA, BandB and BandC, when on, restrict the work to bands of
	// each batch's index pairs (causal attention's products): A[i, k] is
	// zero outside BandA's band of (i, k), B[k, n] outside BandB's of
	// (k, n), and C[i, j] outside BandC's of (i, j) is not needed (the
	// kernel may leave any value there). Each tile of C then runs only the
	// k its rows and columns need, and a tile outside BandC is skipped.
	BandA, BandB, BandC DotBand
	// Target is the machine the kernel is for (its vector width, tile and
	// cache sizes); nil means HostTarget.
	Target *Target

	// Blocking, when not nil, sets the blocking (benchmarks and tuning);
	// its zero fields take the defaults.
	Blocking *DotBlocking
}

// DotBatchDim is one batch dim of a DotSpec: its size and its stride, in
// elements of each buffer's type, in each of A, B and C.
type DotBatchDim struct {
	Size    int
	A, B, C int64
}

// DotBand is a band of index pairs (r, s): those with r − s ≥ D, or
// r − s ≤ D when Upper. The zero value is off: every pair.
type DotBand struct {
	On, Upper bool
	D         int
}

// keeps reports whether the pair (r, s) lies in band d.
func (d DotBand) keeps(r, s int) bool {
	switch {
	case !d.On:
		return true
	case d.Upper:
		return r-s <= d.D
	}
	return r-s >= d.D
}

// lds returns the leading dimensions of A, B and C, with the dense
// defaults filled in.
func (s DotSpec) lds() (lda, ldb, ldc int64) {
	lda, ldb, ldc = int64(s.LDA), int64(s.LDB), int64(s.LDC)
	if lda == 0 {
		lda = int64(s.K)
		if s.TransA {
			lda = int64(s.M)
		}
	}
	if ldb == 0 {
		ldb = int64(s.N)
		if s.TransB {
			ldb = int64(s.K)
		}
	}
	if ldc == 0 {
		ldc = int64(s.N)
	}
	return
}

// batchDims returns the batch dims, the dense default when BatchDims is
// nil: one dim with the strides of a whole matrix of each operand.
func (s DotSpec) batchDims() []DotBatchDim {
	if s.BatchDims != nil {
		return s.BatchDims
	}
	lda, ldb, ldc := s.lds()
	ra, rb := int64(s.M), int64(s.K) // rows of A and B as stored
	if s.TransA {
		ra = int64(s.K)
	}
	if s.TransB {
		rb = int64(s.N)
	}
	return []DotBatchDim{{Size: s.Batch, A: ra * lda, B: rb * ldb, C: int64(s.M) * ldc}}
}

// DotBlocking is the blocking of one kernel (Goto's algorithm, as in
// BLIS): the micro-kernel keeps an MR×NR tile of C in registers (MR·NR/Vec
// vector accumulators); B is packed by panels of KC×NC into slivers of NR
// columns; A is read in place or packed by blocks of MC×KC into slivers of
// MR rows. Packed panels and blocks hold f32 whatever the operands' types,
// but for vdpbf16ps's pairs of bf16 (dotbf16.go).
type DotBlocking struct {
	MR, NR     int // micro-tile; NR is a multiple of the target's Vec
	KC, MC, NC int // cache blocks; MC and RB are made multiples of MR, NC of NR
	RB         int // rows of C in one unit of the parallel range
	KU         int // unrolling of the micro-kernel's k loop
	PackA      int // 1: copy A blocks before use; -1: read A in place (f32 A); 0: decide
	PackB      int // 1: copy B panels before use; -1: read B in place (f32 B, not TransB); 0: decide
	// BF16Dot, for bf16 A and B on a target with AVX-512 BF16: 1 multiplies
	// them by vdpbf16ps, -1 widens them to f32, 0 decides (dotbf16.go).
	BF16Dot int
	// NP splits the columns into that many parts, each a range of units
	// over all of a batch's rows, so that a thread packs only its part of
	// B; 0 decides (plan).
	NP int
}

// The micro-kernel broadcasts A[i, k] for its MR rows i from addresses
// a + k·sk + i·si with constant strides. Read in place, A's rows are K
// floats apart; when 4·K bytes is a multiple of a large power of two, all
// MR rows fall in one set of the 8-way L1 and evict each other. Packing A
// copies the block row by row to a stride of gemmLDA(KC) (a memcpy per row)
// whose rows spread over the sets. A stored transposed is packed into
// slivers of MR floats per k instead, so that the micro-kernel reads it
// contiguously.

// gemmL1Crowd is the largest number of the MR rows, k floats apart, that
// share one set of a 64-set L1 (lines of 64 bytes).
func gemmL1Crowd(mr, k int) int {
	count := map[int]int{}
	most := 0
	for i := 0; i < mr; i++ {
		set := (i * k * 4 / 64) % 64
		count[set]++
		most = max(most, count[set])
	}
	return most
}

// gemmLDA is the row stride of packed A blocks: at least kc, a multiple of
// 16 floats, with at most 2 of the MR rows sharing an L1 set.
func gemmLDA(mr, kc int) int {
	ld := (kc + 15) / 16 * 16
	for gemmL1Crowd(mr, ld) > 2 {
		ld += 16
	}
	return ld
}

// target is the spec's Target, HostTarget when nil (x86-64 when XLC_CPU
// names no target; Compile reports that error first).
func (s DotSpec) target() *Target {
	if s.Target != nil {
		return s.Target
	}
	if t, err := HostTarget(); err == nil {
		return t
	}
	t, _ := TargetFor("x86-64")
	return t
}

// gemmKU is the unrolling of the micro-kernel's k loop.
const gemmKU = 4

// gemmBlocks derives the cache blocks from the target (Goto's rules, which
// give the best measured on Zen 4: KC 256, MC 96, NC 1024): the L1 holds a
// sliver of B (KC×NR floats) and, for A read in place stored K×M, the line
// of A each k touches (KC = L1/(4·NR + 64), else L1/(4·NR); 128..512); a
// panel of B (KC×NC) fills the L2; a block of A is 8 micro-tiles high.
func gemmBlocks(t *Target, mr, nr int, aLines bool) (kc, mc int) {
	per := 4 * nr
	if aLines {
		per += 64
	}
	return min(max(t.L1/per, 128), 512), 8 * mr
}

// gemmNC is the panel width for K blocks of kc: the panel fills the L2.
func gemmNC(t *Target, kc, nr int) int {
	return max(t.L2/(4*kc)/nr*nr, nr)
}

// chooseMR returns the micro-tile rows, the target's MR or AltMR: the one
// whose busiest part (the range split into Target.Parts contiguous parts,
// as runtime/cpu does) computes the fewest rows, weighted by the speed of
// its micro-kernel; MR on a tie. With M = 128, one batch, two parts and
// AVX-512's 12 and 8, 12 rows give 11 units split 5/6 (60 and 68 rows), 8
// rows give 8/8.
func (s DotSpec) chooseMR() int {
	t := s.target()
	if t.AltMR == 0 {
		return t.MR
	}
	parts := int64(max(t.Parts, 1))
	busiest := func(mr int) float64 {
		bpb := (s.M + mr - 1) / mr
		n := int64(s.Batch) * int64(bpb)
		if n > 1<<14 {
			return 0 // fine enough either way
		}
		rows := func(lo, hi int64) int64 {
			t := int64(0)
			for u := lo; u < hi; u++ {
				r := int(u % int64(bpb))
				t += int64(min(s.M, (r+1)*mr) - r*mr)
			}
			return t
		}
		most := int64(0)
		for w := int64(0); w < parts; w++ {
			most = max(most, rows(n*w/parts, n*(w+1)/parts))
		}
		return float64(most)
	}
	if bm, ba := busiest(t.MR), busiest(t.AltMR); ba/t.AltSpeed < bm {
		return t.AltMR
	}
	return t.MR
}

// pageBytes is the size of a memory page.
const pageBytes = 4096

func (s DotSpec) plan() DotBlocking {
	var p DotBlocking
	if s.Blocking != nil {
		p = *s.Blocking
	}
	def := func(x *int, v int) {
		if *x <= 0 {
			*x = v
		}
	}
	t := s.target()
	if p.MR <= 0 {
		p.MR = s.chooseMR()
	}
	def(&p.NR, t.NR)
	if s.halfA() {
		p.PackA = 1 // converted to f32 as it is packed
	}
	if p.PackA == 0 {
		// Packing A costs a copy of A per panel of B; it pays when A's
		// rows would crowd the L1. A stored transposed is read in place:
		// the micro-kernel's MR floats for one k are contiguous, and
		// packing them measured slower on every weight-gradient and
		// attention shape of the GPT configs on Zen 4, but faster for
		// the weight gradients on Intel's cores and under AVX2
		// (Target.PackTransA; bench/NOTES.md).
		p.PackA = -1
		lda, _, _ := s.lds()
		if !s.TransA && gemmL1Crowd(p.MR, int(lda)) > 4 || s.TransA && s.Batch == 1 && t.PackTransA {
			p.PackA = 1
		}
	}
	kc, mc := gemmBlocks(t, p.MR, p.NR, p.PackA < 0 && s.TransA)
	def(&p.KC, kc)
	def(&p.MC, mc)
	def(&p.NC, gemmNC(t, p.KC, p.NR))
	def(&p.KU, gemmKU)
	def(&p.RB, p.MR) // fine units: a range covering several merges them
	if p.PackB == 0 || s.TransB {
		// Packing B (a read and a write of each element per thread)
		// pays when many row tiles of one thread share each sliver;
		// with at most Target.InPlaceBTiles the micro-kernel reads B
		// in place (see bench/dot/README.md), unless its rows are
		// Target.InPlaceBRow or more apart (on Intel's cores a page: a
		// sliver's kc rows then touch kc pages). B strided (attention's
		// v and do, 32 floats of every 128) stays packed.
		p.PackB = 1
		rows := s.M
		if parts := max(t.Parts, 1); s.Batch == 1 {
			rows = (s.M + parts - 1) / parts
		}
		_, ldb, _ := s.lds()
		if !s.TransB && ldb == int64(s.N) && (t.InPlaceBRow == 0 || ldb*4 < int64(t.InPlaceBRow)) && (rows+p.MR-1)/p.MR <= t.InPlaceBTiles {
			p.PackB = -1
		}
	}
	if s.halfB() {
		p.PackB = 1 // converted to f32 as it is packed
	}
	if p.NP <= 0 {
		// Split by rows, each of the parts packs all of B; by columns, it
		// packs its part of B and reads all of A, which is less where A
		// is the smaller (a weight gradient of few rows: M < N). fit keeps
		// the parts whole slivers.
		p.NP = 1
		if parts := max(t.Parts, 1); parts > 1 && s.Batch == 1 && p.PackB > 0 && s.M < s.N {
			p.NP = parts
		}
	}
	return p.fit(s)
}

// fit shrinks the blocks to the problem, keeping their multiples.
func (p DotBlocking) fit(s DotSpec) DotBlocking {
	roundUp := func(x, m int) int { return (x + m - 1) / m * m }
	p.MC = roundUp(max(p.MC, p.MR), p.MR)
	p.RB = roundUp(max(p.RB, p.MR), p.MR)
	p.NC = roundUp(max(p.NC, p.NR), p.NR)
	p.KC = max(p.KC, 1)
	p.KU = max(p.KU, 1)
	if p.NP = max(p.NP, 1); s.N%(p.NP*p.NR) != 0 {
		p.NP = 1 // parts of whole slivers
	}
	if m := roundUp(s.M, p.MR); p.MC > m {
		p.MC = m
	}
	if m := roundUp(s.M, p.MR); p.RB > m {
		p.RB = m
	}
	if n := roundUp(s.N, p.NR); p.NC > n {
		p.NC = n
	}
	if s.K < p.KC {
		p.KC = s.K
	} else {
		// Even K blocks: K = 600 with KC 256 gives 200, 200, 200, not
		// 256, 256, 88.
		nb := (s.K + p.KC - 1) / p.KC
		p.KC = (s.K + nb - 1) / nb
	}
	return p
}

func (s DotSpec) check() error {
	if s.Batch < 1 || s.M < 1 || s.N < 1 || s.K < 1 {
		return fmt.Errorf("codegen: dot: sizes must be positive: batch %d, M %d, N %d, K %d", s.Batch, s.M, s.N, s.K)
	}
	const lim = 1 << 40
	if int64(s.Batch)*int64(s.M)*int64(s.K) > lim || int64(s.Batch)*int64(s.K)*int64(s.N) > lim || int64(s.Batch)*int64(s.M)*int64(s.N) > lim {
		return fmt.Errorf("codegen: dot: operands too large: batch %d, M %d, N %d, K %d", s.Batch, s.M, s.N, s.K)
	}
	if s.LDA < 0 || s.LDB < 0 || s.LDC != 0 && s.LDC < s.N {
		return fmt.Errorf("codegen: dot: bad leading dimensions %d, %d, %d", s.LDA, s.LDB, s.LDC)
	}
	if s.BatchDims != nil {
		if len(s.BatchDims) > 8 {
			return fmt.Errorf("codegen: dot: %d batch dims, at most 8", len(s.BatchDims))
		}
		n := int64(1)
		for _, d := range s.BatchDims {
			if d.Size < 1 || d.A < 0 || d.B < 0 || d.C < 0 || d.A > lim || d.B > lim || d.C > lim {
				return fmt.Errorf("codegen: dot: bad batch dim %+v", d)
			}
			n *= int64(d.Size)
			if n > lim {
				break
			}
		}
		if n != int64(s.Batch) {
			return fmt.Errorf("codegen: dot: batch dims %+v do not multiply to %d", s.BatchDims, s.Batch)
		}
	}
	lda, ldb, ldc := s.lds()
	if lda > lim || ldb > lim || ldc > lim {
		return fmt.Errorf("codegen: dot: leading dimensions too large: %d, %d, %d", lda, ldb, ldc)
	}
	if !dotOperandType(s.AType) || !dotOperandType(s.BType) {
		return fmt.Errorf("codegen: dot: operands of types %v and %v, want f32, bf16 or f16", s.aType(), s.bType())
	}
	if s.Residuals < 0 || s.Residuals > maxResiduals {
		return fmt.Errorf("codegen: dot: %d residuals, at most %d", s.Residuals, maxResiduals)
	}
	if vec := s.target().Vec; s.Blocking != nil && (s.Blocking.NR%vec != 0 || s.Blocking.MR > 64 || s.Blocking.NR > 256) {
		return fmt.Errorf("codegen: dot: bad micro-tile %d×%d (NR must be a multiple of %d)", s.Blocking.MR, s.Blocking.NR, vec)
	}
	return nil
}

// denseC reports whether C is dense: the batches one after another, M
// rows of N floats each (the layout of an IR value of the product's shape).
func (s DotSpec) denseC() bool {
	_, _, ldc := s.lds()
	if ldc != int64(s.N) {
		return false
	}
	stride := int64(s.M) * int64(s.N)
	dims := s.batchDims()
	for i := len(dims) - 1; i >= 0; i-- {
		if dims[i].Size > 1 && dims[i].C != stride {
			return false
		}
		stride *= int64(dims[i].Size)
	}
	return true
}

// maxResiduals is the most residuals a dot kernel adds.
const maxResiduals = 4

// Extent is the size of the kernel's parallel range: Batch times the
// number of row blocks of C per batch. Unit u covers rows
// [r·RB, min(M, (r+1)·RB)) of batch u / blocks, with r = u mod blocks.
func (s DotSpec) Extent() int64 {
	p := s.plan()
	return int64(s.Batch) * int64(p.NP) * int64((s.M+p.RB-1)/p.RB)
}

// byRows is s with its units whole rows of C (DotBlocking.NP 1), as an
// epilogue over the rows its units computed needs.
func (s DotSpec) byRows() DotSpec {
	b := DotBlocking{}
	if s.Blocking != nil {
		b = *s.Blocking
	}
	b.NP = 1
	s.Blocking = &b
	return s
}

// PackBytes is the size of the packing buffers that a call of the kernel
// allocates on the heap (aligned_alloc at entry, free on return): a panel
// of B, then, when A is packed, a block of A, both of f32 (of bf16 pairs
// for vdpbf16ps).
func (s DotSpec) PackBytes() int64 {
	p := s.plan()
	if s.dpbf16() {
		b, a := s.dpPackFloats(p)
		return 4 * (b + a)
	}
	n := int64(16) // the allocation is never empty
	if p.PackB > 0 {
		n = (int64(p.KC)*int64(p.NC) + 15) / 16 * 16
	}
	if p.PackA > 0 {
		if s.TransA {
			n += int64(p.MC) * int64(p.KC)
		} else {
			n += int64(p.MC) * int64(gemmLDA(p.MR, p.KC))
		}
	}
	return 4 * n
}

// key is a hash of everything the kernel's code depends on: the spec with
// its blocking resolved (the plan) and its operand types, so that two
// specs with one key have identical kernels. The types join the hashed
// text only when one is half: f32 kernels keep the names they had before
// there were types (the driver's golden modules, testdata/kernels).
func (s DotSpec) key() string { return gemmHash(s.keyText()) }

// keyText is the text key hashes.
func (s DotSpec) keyText() string {
	p := s.plan()
	t := s.target()
	dp := s.dpbf16()
	s.Blocking, s.Target = nil, nil
	at, bt := s.aType(), s.bType()
	s.AType, s.BType = 0, 0
	zero := fmt.Sprintf(" AType:%v BType:%v", s.AType, s.BType)
	text := strings.Replace(fmt.Sprintf("%+v", s), zero, "", 1)
	if at != ir.F32 || bt != ir.F32 {
		text += fmt.Sprintf(" types %v %v", at, bt)
	}
	if dp {
		text += " vdpbf16ps"
	}
	p.BF16Dot = 0 // told by dp; keys as they were before the fields
	plan := strings.Replace(strings.Replace(fmt.Sprintf("%+v", p), " BF16Dot:0", "", 1), " NP:1", "", 1)
	return fmt.Sprintf("%s %s %s", text, plan, t.codeKey())
}

// Flops is the number of floating-point operations of the product (2·B·M·N·K).
func (s DotSpec) Flops() float64 {
	return 2 * float64(s.Batch) * float64(s.M) * float64(s.N) * float64(s.K)
}

// DotKernel adds to mod the kernel name computing spec, framed by its
// target's lowering (on a CPU void name(void **bufs, int64_t lo, int64_t
// hi), bufs holding A, B, the bias when spec.Bias, the residuals, then C),
// and returns the size of its parallel range (DotSpec.Extent). Units are
// blocks of whole rows of C, so calls on disjoint ranges may run at once.
// A call packs the panels of B it uses, so give each call a large range.
// Each call allocates its packing buffers (DotSpec.PackBytes) as scratch
// memory; when it cannot, the kernel stops with "xlc: out of memory for
// the dot kernel's packing buffers". The module gets the target's triple
// and data layout when it has none.
func DotKernel(mod *llir.Module, name string, spec DotSpec) (extent int64, err error) {
	if err := spec.check(); err != nil {
		return 0, err
	}
	if name == "" {
		return 0, fmt.Errorf("codegen: dot: empty kernel name")
	}
	for _, f := range mod.Funcs {
		if f.Name() == name || f.Name() == name+".body" {
			return 0, fmt.Errorf("codegen: dot: module already has a function %q", f.Name())
		}
	}
	t := spec.target()
	if mod.TargetTriple == "" {
		mod.TargetTriple = t.Triple
	}
	if mod.DataLayout == "" {
		mod.DataLayout = t.DataLayout
	}
	p := spec.plan()
	g := &gemmGen{mod: mod, s: spec, p: p, name: name, t: t, dp: spec.dpbf16()}
	g.lda, g.ldb, g.ldc = spec.lds()
	g.emit()
	return spec.Extent(), nil
}

func gemmIota(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}
