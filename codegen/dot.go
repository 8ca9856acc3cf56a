package codegen

import (
	"fmt"

	llir "github.com/llir/llvm/ir"

	"xlc/ir"
)

// DotSpec describes one batched f32 matrix product kernel:
//
//	C[b] = Alpha · A[b]·B[b] (+ Bias broadcast over rows) (+ C[b] when Accumulate)
//
// for b in [0, Batch), with A[b] an M×K matrix (stored K×M when TransA),
// B[b] a K×N matrix (stored N×K when TransB) and C[b] M×N. Every operand is
// dense and row-major; the batches of each operand follow one another.
//
// The kernel's buffers (see DotKernel) are, in order: A, B, Bias (only when
// Bias is set; N floats), C.
type DotSpec struct {
	Batch, M, N, K int
	TransA, TransB bool
	// Alpha multiplies the product; 0 is taken as 1.
	Alpha float32
	// Bias adds a vector of N floats (one more buffer, before C) to every
	// row of the result.
	Bias bool
	// Accumulate adds the result to what C holds (BLAS beta = 1) instead of
	// overwriting it.
	Accumulate bool
	// CPU is the function attribute "target-cpu"; "" means znver4. The
	// kernel assumes AVX-512 (it computes on <16 x float> vectors).
	CPU string

	// Blocking, when not nil, sets the blocking (benchmarks and tuning);
	// its zero fields take the defaults.
	Blocking *DotBlocking
}

// DotBlocking is the blocking of one kernel (Goto's algorithm, as in
// BLIS): the micro-kernel keeps an MR×NR tile of C in registers (MR·NR/16
// accumulators of <16 x float>); B is packed by panels of KC×NC into
// slivers of NR columns; A is read in place or packed by blocks of MC×KC
// into slivers of MR rows.
type DotBlocking struct {
	MR, NR     int // micro-tile; NR is a multiple of 16
	KC, MC, NC int // cache blocks; MC and RB are made multiples of MR, NC of NR
	RB         int // rows of C in one unit of the parallel range
	KU         int // unrolling of the micro-kernel's k loop
	PackA      int // 1: copy A blocks before use; -1: read A in place; 0: decide
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

// Blocking for Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 zmm registers).
const (
	gemmMR = 12
	gemmNR = 32
	gemmKC = 256
	gemmMC = 96
	gemmNC = 1024
	gemmKU = 4
)

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
	def(&p.MR, gemmMR)
	def(&p.NR, gemmNR)
	def(&p.KC, gemmKC)
	def(&p.MC, gemmMC)
	def(&p.NC, gemmNC)
	def(&p.KU, gemmKU)
	def(&p.RB, p.MR) // fine units: a range covering several merges them
	if p.PackA == 0 {
		// Packing A costs a copy of A per panel of B; it pays when A's
		// rows would crowd the L1, and for A stored transposed (whose
		// rows would be read with a stride of M) unless the product is
		// too narrow to pay for the copy.
		p.PackA = -1
		if s.TransA && s.N >= 4*p.NR || !s.TransA && gemmL1Crowd(p.MR, s.K) > 4 {
			p.PackA = 1
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
	if b := s.Blocking; b != nil && (b.NR%16 != 0 || b.MR > 64 || b.NR > 256) {
		return fmt.Errorf("codegen: dot: bad micro-tile %d×%d (NR must be a multiple of 16)", b.MR, b.NR)
	}
	return nil
}

// Extent is the size of the kernel's parallel range: Batch times the
// number of row blocks of C per batch. Unit u covers rows
// [r·RB, min(M, (r+1)·RB)) of batch u / blocks, with r = u mod blocks.
func (s DotSpec) Extent() int64 {
	p := s.plan()
	return int64(s.Batch) * int64((s.M+p.RB-1)/p.RB)
}

// StackBytes is the size of the packing buffers that a call of the kernel
// allocates on its thread's stack.
func (s DotSpec) StackBytes() int64 {
	p := s.plan()
	n := int64(p.KC) * int64(p.NC)
	if p.PackA > 0 {
		if s.TransA {
			n += int64(p.MC) * int64(p.KC)
		} else {
			n += int64(p.MC) * int64(gemmLDA(p.MR, p.KC))
		}
	}
	return 4 * n
}

// Flops is the number of floating-point operations of the product (2·B·M·N·K).
func (s DotSpec) Flops() float64 {
	return 2 * float64(s.Batch) * float64(s.M) * float64(s.N) * float64(s.K)
}

// DotKernel adds to mod the kernel name computing spec, with the kernel ABI
// of this package:
//
//	void name(void **bufs, int64_t lo, int64_t hi)
//
// bufs holds A, B, the bias when spec.Bias, then C; the call computes units
// [lo, hi) of the parallel range, whose size it returns (see
// DotSpec.Extent). Units are blocks of whole rows of C, so calls on
// disjoint ranges may run at once. A call packs the panels of B it uses,
// so give each call a large range (the range split evenly across threads,
// not one unit at a time). The packing buffers live on the caller's
// stack (DotSpec.StackBytes; at most about 1.1 MiB with the default
// blocking), probed page by page.
//
// The module gets the x86-64 triple and data layout when it has none.
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
	if mod.TargetTriple == "" {
		mod.TargetTriple = gemmTriple
	}
	if mod.DataLayout == "" {
		mod.DataLayout = gemmDataLayout
	}
	p := spec.plan()
	g := &gemmGen{mod: mod, s: spec, p: p, name: name}
	g.emit()
	return spec.Extent(), nil
}

const (
	gemmTriple     = "x86_64-pc-linux-gnu"
	gemmDataLayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
)

// DotSpecOf returns the DotSpec of a dot instruction with operand types a
// and b and attributes attrs when its layout is one the kernel reads in
// place: the batch dims lead both operands in the same order, and in each
// operand the free dims and the contracting dims form two runs (the
// contracting run last for A unless TransA, first for B unless TransB).
// Several free or contracting dims are flattened into one (a
// [b,s,d]·[d,e] product has M = b·s).
func DotSpecOf(a, b ir.Type, attrs ir.Attrs) (DotSpec, error) {
	if a.DType != ir.F32 || b.DType != ir.F32 {
		return DotSpec{}, fmt.Errorf("codegen: dot: only f32 operands, have %v and %v", a, b)
	}
	lb, rb, lc, rc := ir.DotDims(attrs)
	if len(lb) != len(rb) || len(lc) != len(rc) {
		return DotSpec{}, fmt.Errorf("codegen: dot: batch and contract lists must pair up")
	}
	s := DotSpec{Batch: 1, M: 1, N: 1, K: 1}
	for i := range lb {
		if lb[i] != i || rb[i] != i {
			return DotSpec{}, fmt.Errorf("codegen: dot: batch dims must lead both operands in order, have %v and %v", lb, rb)
		}
		s.Batch *= a.Shape[i]
	}
	nb := len(lb)
	// side classifies an operand: its free dims and contracting dims after
	// the batch dims must form two runs; contractFirst tells their order.
	side := func(t ir.Type, contract []int) (free, k int, contractFirst bool, err error) {
		free, k = 1, 1
		fd := ir.DotFree(t.Rank(), nil, append(append([]int{}, contract...), gemmIota(nb)...))
		for _, d := range fd {
			free *= t.Shape[d]
		}
		for _, d := range contract {
			k *= t.Shape[d]
		}
		// contracting dims must be consecutive, in order, at one end.
		nc := len(contract)
		atEnd, atStart := true, true
		for i, d := range contract {
			if d != t.Rank()-nc+i {
				atEnd = false
			}
			if d != nb+i {
				atStart = false
			}
		}
		switch {
		case nc == 0 || atEnd:
			return free, k, false, nil
		case atStart:
			return free, k, true, nil
		}
		return 0, 0, false, fmt.Errorf("codegen: dot: contracting dims %v of %v are not one run at either end", contract, t)
	}
	m, ka, cfA, err := side(a, lc)
	if err != nil {
		return DotSpec{}, err
	}
	n, kb, cfB, err := side(b, rc)
	if err != nil {
		return DotSpec{}, err
	}
	if ka != kb {
		return DotSpec{}, fmt.Errorf("codegen: dot: contracting sizes differ: %v and %v", a, b)
	}
	s.M, s.N, s.K = m, n, ka
	s.TransA = cfA && m > 1
	s.TransB = !cfB && n > 1 && len(rc) > 0
	return s, nil
}

func gemmIota(n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = i
	}
	return r
}
