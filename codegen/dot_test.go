package codegen

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	llir "github.com/llir/llvm/ir"

	"xlc/codegen/internal/dlopen"
	"xlc/internal/llvmtest"
	"xlc/ir"
)

// gemmTools returns the LLVM 19 tools, skipping the test when they are
// missing (failing under CI=true, where .ci/run installs them).
func gemmTools(t testing.TB) (opt, llc, cc string) {
	t.Helper()
	var err error
	find := func(name string) string {
		p, e := exec.LookPath(name)
		if e != nil && err == nil {
			err = e
		}
		return p
	}
	opt, llc, cc = find("opt-19"), find("llc-19"), find("cc")
	llvmtest.Require(t, err)
	return
}

// gemmBuild compiles mod with opt -O3, llc -O3 and cc -shared and loads it.
func gemmBuild(t testing.TB, mod *llir.Module) *dlopen.Lib {
	t.Helper()
	so := filepath.Join(t.TempDir(), "k.so")
	gemmBuildTo(t, mod, so)
	lib, err := dlopen.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

// gemmBuildTo compiles mod into the shared object so.
func gemmBuildTo(t testing.TB, mod *llir.Module, so string) {
	t.Helper()
	opt, llc, cc := gemmTools(t)
	dir := t.TempDir()
	ll, bc, obj := filepath.Join(dir, "k.ll"), filepath.Join(dir, "k.bc"), filepath.Join(dir, "k.o")
	if err := os.WriteFile(ll, []byte(mod.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{opt, "-O3", ll, "-o", bc},
		{llc, "-O3", "-filetype=obj", "-relocation-model=pic", bc, "-o", obj},
		{cc, "-shared", obj, "-o", so},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(c[0]), err, out)
		}
	}
}

// gemmOffsets returns the offsets of batch bt in A, B and C.
func gemmOffsets(s DotSpec, bt int) (oa, ob, oc int) {
	dims := s.batchDims()
	for d := len(dims) - 1; d >= 0; d-- {
		idx := bt % dims[d].Size
		bt /= dims[d].Size
		oa += idx * int(dims[d].A)
		ob += idx * int(dims[d].B)
		oc += idx * int(dims[d].C)
	}
	return
}

// storedDims are the rows and columns of A and B as stored for an M×K by
// K×N product with the given transpositions.
func storedDims(m, n, k int, transA, transB bool) (ra, ca, rb, cb int) {
	ra, ca, rb, cb = m, k, k, n
	if transA {
		ra, ca = k, m
	}
	if transB {
		rb, cb = n, k
	}
	return ra, ca, rb, cb
}

// gemmSizes returns the lengths of the A, B and C buffers of s: one past
// the largest offset each reads or writes.
func gemmSizes(s DotSpec) (na, nb, nc int) {
	lda, ldb, ldc := s.lds()
	ra, ca, rb, cb := storedDims(s.M, s.N, s.K, s.TransA, s.TransB)
	for bt := 0; bt < s.Batch; bt++ {
		oa, ob, oc := gemmOffsets(s, bt)
		na = max(na, oa+(ra-1)*int(lda)+ca)
		nb = max(nb, ob+(rb-1)*int(ldb)+cb)
		nc = max(nc, oc+(s.M-1)*int(ldc)+s.N)
	}
	return
}

// gemmRef is C = Alpha·A·B (+ bias) (+ C) in float64 over the whole C
// buffer (c0 where the product writes nothing), with the bound
// 1e-4·Σ|terms| for each element (0 where nothing is written).
func gemmRef(s DotSpec, a, b, bias []float32, res [][]float32, c0 []float32) (want, bound []float64) {
	alpha := float64(s.Alpha)
	if alpha == 0 {
		alpha = 1
	}
	lda, ldb, ldc := s.lds()
	want = make([]float64, len(c0))
	bound = make([]float64, len(want))
	for o := range c0 {
		want[o] = float64(c0[o])
	}
	for bt := 0; bt < s.Batch; bt++ {
		oa, ob, oc := gemmOffsets(s, bt)
		for i := 0; i < s.M; i++ {
			for j := 0; j < s.N; j++ {
				var sum, abs float64
				for k := 0; k < s.K; k++ {
					var x, y float64
					if s.TransA {
						x = float64(a[oa+k*int(lda)+i])
					} else {
						x = float64(a[oa+i*int(lda)+k])
					}
					if s.TransB {
						y = float64(b[ob+j*int(ldb)+k])
					} else {
						y = float64(b[ob+k*int(ldb)+j])
					}
					sum += x * y
					abs += math.Abs(x * y)
				}
				sum *= alpha
				abs *= math.Abs(alpha)
				o := oc + i*int(ldc) + j
				if s.Bias {
					sum += float64(bias[j])
					abs += math.Abs(float64(bias[j]))
				}
				for _, r := range res {
					sum += float64(r[o])
					abs += math.Abs(float64(r[o]))
				}
				if s.Accumulate {
					sum += float64(c0[o])
					abs += math.Abs(float64(c0[o]))
				}
				want[o] = sum
				bound[o] = 1e-4*abs + 1e-30
				if !s.BandC.keeps(i, j) {
					bound[o] = math.Inf(1) // not needed: any value
				}
			}
		}
	}
	return want, bound
}

// gemmBandZeros zeroes the elements of a and b outside s.BandA and
// s.BandB, as the kernel may assume.
func gemmBandZeros(s DotSpec, a, b []float32) {
	lda, ldb, _ := s.lds()
	for bt := 0; bt < s.Batch; bt++ {
		oa, ob, _ := gemmOffsets(s, bt)
		for k := 0; k < s.K; k++ {
			for i := 0; i < s.M; i++ {
				if !s.BandA.keeps(i, k) {
					a[oa+gemmAt(s.TransA, lda, i, k)] = 0
				}
			}
			for j := 0; j < s.N; j++ {
				if !s.BandB.keeps(k, j) {
					b[ob+gemmAt(s.TransB, ldb, k, j)] = 0
				}
			}
		}
	}
}

// gemmAt is the offset of element (r, c) of a matrix stored by rows with
// leading dimension ld, or stored transposed.
func gemmAt(trans bool, ld int64, r, c int) int {
	if trans {
		return c*int(ld) + r
	}
	return r*int(ld) + c
}

func gemmRand(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64()*2 - 1)
	}
	return x
}

type gemmCase struct {
	name string
	s    DotSpec
}

// gemmName is a test's name for a case of spec s.
func gemmName(s DotSpec) string {
	name := fmt.Sprintf("b%d_%dx%dx%d_ta%v_tb%v_bias%v_acc%v_alpha%g", s.Batch, s.M, s.N, s.K, s.TransA, s.TransB, s.Bias, s.Accumulate, s.Alpha)
	if s.Residuals > 0 {
		name += fmt.Sprintf("_res%d", s.Residuals)
	}
	if b := s.Blocking; b != nil {
		name += fmt.Sprintf("_mr%d_nr%d_kc%d_pa%d_pb%d", b.MR, b.NR, b.KC, b.PackA, b.PackB)
	}
	if s.LDA != 0 || s.LDB != 0 || s.LDC != 0 || s.BatchDims != nil {
		name += fmt.Sprintf("_ld%d,%d,%d_bd%d", s.LDA, s.LDB, s.LDC, len(s.BatchDims))
	}
	if s.halfA() || s.halfB() {
		name += fmt.Sprintf("_%v,%v", s.aType(), s.bType())
	}
	for i, d := range []DotBand{s.BandA, s.BandB, s.BandC} {
		if d.On {
			name += fmt.Sprintf("_band%c%v%d", "ABC"[i], map[bool]string{false: "L", true: "U"}[d.Upper], d.D)
		}
	}
	return name
}

func gemmCases() []gemmCase {
	var cs []gemmCase
	add := func(s DotSpec) { cs = append(cs, gemmCase{gemmName(s), s}) }
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, d := range [][4]int{
				{1, 1, 1, 1}, {1, 7, 13, 5}, {1, 13, 7, 5}, {3, 7, 13, 5},
				{1, 12, 32, 4}, {1, 25, 33, 9}, {1, 300, 3, 17}, {1, 3, 300, 17},
				{2, 50, 70, 600}, {1, 97, 161, 257}, {1, 1, 40, 3},
			} {
				add(DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: tb})
			}
		}
	}
	add(DotSpec{Batch: 2, M: 29, N: 45, K: 31, Bias: true})
	add(DotSpec{Batch: 2, M: 29, N: 45, K: 300, Accumulate: true, Alpha: -0.5})
	add(DotSpec{Batch: 1, M: 40, N: 64, K: 520, Bias: true, Accumulate: true, TransA: true})
	// The model's shapes.
	add(DotSpec{Batch: 1, M: 16 * 128, N: 512, K: 128})
	add(DotSpec{Batch: 1, M: 2048, N: 128, K: 512})
	add(DotSpec{Batch: 64, M: 128, N: 128, K: 32, TransB: true})
	add(DotSpec{Batch: 64, M: 128, N: 32, K: 128})
	add(DotSpec{Batch: 1, M: 512, N: 128, K: 2048, TransA: true})
	// A transposed: read in place with 8-row tiles (M=128 balances
	// better with them), and packed by vectors when asked to, with tiles
	// of more than 16 rows and odd remainders.
	add(DotSpec{Batch: 1, M: 128, N: 96, K: 520, TransA: true})
	add(DotSpec{Batch: 2, M: 29, N: 45, K: 31, TransA: true, Blocking: &DotBlocking{PackA: 1}})
	add(DotSpec{Batch: 1, M: 37, N: 70, K: 300, TransA: true, Blocking: &DotBlocking{PackA: 1, MR: 20, NR: 16, KC: 64}})
	add(DotSpec{Batch: 3, M: 13, N: 33, K: 9, TransA: true, TransB: true, Blocking: &DotBlocking{MR: 8, PackA: 1}})
	// Units by column parts (a weight gradient of few rows), with a bias,
	// residuals and batches.
	add(DotSpec{Batch: 1, M: 40, N: 192, K: 300, TransA: true, Blocking: &DotBlocking{NP: 2}})
	add(DotSpec{Batch: 2, M: 21, N: 192, K: 70, Bias: true, Residuals: 1, Blocking: &DotBlocking{NP: 3}})
	// B read in place (few row tiles share a sliver) or packed, with a
	// partial last sliver, both ways, and B strided.
	add(DotSpec{Batch: 1, M: 100, N: 77, K: 300, Blocking: &DotBlocking{PackB: -1}})
	add(DotSpec{Batch: 2, M: 35, N: 45, K: 40, TransA: true, Blocking: &DotBlocking{PackB: 1}})
	add(DotSpec{Batch: 2, M: 35, N: 45, K: 40, TransA: true, LDB: 50, Bias: true, Accumulate: true, Blocking: &DotBlocking{PackB: -1}})
	// Strided operands, as the layout pass leaves them: attention's
	// [b,s,h,dh] operands with batch dims (b,h), odd sizes, every
	// transposition, and a C written with a row stride and batch strides
	// of its own (a folded output transpose).
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, d := range [][3]int{{13, 37, 7}, {29, 17, 33}, {40, 45, 19}} {
				const bo, h = 3, 2
				m, n, k := d[0], d[1], d[2]
				// A stored [bo, rows, h, cols] with batch dims (bo, h).
				ra, ca, rb, cb := storedDims(m, n, k, ta, tb)
				s := DotSpec{Batch: bo * h, M: m, N: n, K: k, TransA: ta, TransB: tb,
					LDA: h * ca, LDB: h*cb + 3, LDC: n + 5,
					BatchDims: []DotBatchDim{
						{Size: bo, A: int64(ra * h * ca), B: int64(rb * (h*cb + 3)), C: int64(h * m * (n + 5))},
						{Size: h, A: int64(ca), B: int64(cb), C: int64(m * (n + 5))},
					}}
				add(s)
				if ta == tb {
					s.Bias, s.Accumulate, s.Alpha = true, ta, 0.75
					add(s)
				}
			}
		}
	}
	// Residuals (as C: dense, or strided with batch dims), with a bias,
	// several K blocks, accumulation and edge tiles.
	add(DotSpec{Batch: 2, M: 29, N: 45, K: 31, Bias: true, Residuals: 1})
	add(DotSpec{Batch: 1, M: 2048, N: 128, K: 512, Bias: true, Residuals: 1})
	add(DotSpec{Batch: 2, M: 37, N: 70, K: 600, Residuals: 2, Accumulate: true, Alpha: 0.5})
	add(DotSpec{Batch: 6, M: 13, N: 37, K: 7, TransA: true, Residuals: 3, LDC: 42,
		BatchDims: []DotBatchDim{{Size: 3, A: 2 * 7 * 13, B: 7 * 37, C: 2 * 13 * 42}, {Size: 2, A: 7 * 13, B: 0, C: 13 * 42}}})
	// Bands (causal attention): A, B zero outside a band, C not needed
	// outside one; with several K blocks, offsets past the matrix, packed
	// and in-place operands, and edge tiles.
	for _, d := range [][4]int{{2, 128, 128, 32}, {1, 37, 45, 600}, {2, 128, 32, 128}, {1, 29, 70, 300}} {
		for _, band := range []struct{ a, b, c DotBand }{
			{a: DotBand{On: true}},
			{a: DotBand{On: true, Upper: true}},
			{a: DotBand{On: true, D: 5}},
			{a: DotBand{On: true, Upper: true, D: -40}},
			{b: DotBand{On: true}},
			{b: DotBand{On: true, Upper: true, D: 3}},
			{c: DotBand{On: true}},
			{c: DotBand{On: true, Upper: true, D: 1}},
			{a: DotBand{On: true}, b: DotBand{On: true, Upper: true}, c: DotBand{On: true, D: -2}},
		} {
			for _, ta := range []bool{false, true} {
				add(DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: !ta && d[3] == 32,
					Bias: d[0] == 2 && ta, BandA: band.a, BandB: band.b, BandC: band.c})
			}
		}
	}
	add(DotSpec{Batch: 1, M: 37, N: 70, K: 300, TransA: true, BandA: DotBand{On: true}, BandC: DotBand{On: true, Upper: true},
		Blocking: &DotBlocking{PackA: 1, PackB: -1, MR: 8, KC: 64}})
	add(DotSpec{Batch: 1, M: 37, N: 70, K: 300, BandA: DotBand{On: true, Upper: true}, BandB: DotBand{On: true},
		Blocking: &DotBlocking{PackA: 1, KC: 64}})
	// The GPT's attention dots after the layout pass (d=128, 4 heads,
	// seq 128, batch 16), as DotSpecOf makes them.
	f32 := func(d ...int) ir.Type { return ir.Type{DType: ir.F32, Shape: ir.Shape(d)} }
	for _, c := range []struct {
		a, b           ir.Type
		lb, rb, lc, rc []int
	}{
		{f32(16, 128, 4, 32), f32(16, 128, 4, 32), []int{0, 2}, []int{0, 2}, []int{3}, []int{3}},
		{f32(16, 4, 128, 128), f32(16, 128, 4, 32), []int{0, 1}, []int{0, 2}, []int{3}, []int{1}},
		{f32(16, 4, 128, 128), f32(16, 128, 4, 32), []int{0, 1}, []int{0, 2}, []int{2}, []int{1}},
		{f32(16, 128, 4, 32), f32(16, 4, 128, 128), []int{0, 2}, []int{0, 1}, []int{1}, []int{2}},
	} {
		attrs := ir.Attrs{}.Set("batch", [][]int{c.lb, c.rb}).Set("contract", [][]int{c.lc, c.rc})
		s, err := DotSpecOf(c.a, c.b, attrs)
		if err != nil {
			panic(err)
		}
		add(s)
	}
	for _, s := range gemmHalfSpecs() {
		add(s)
	}
	return cs
}

// x86Targets are the x86-64 classes kernel tests compile for.
func x86Targets(t testing.TB) []*Target {
	return targetsNamed(t, "x86-64", "x86-64-v3", "x86-64-v4")
}

// targetsNamed are the named targets with two parts, as on the 2-core
// machines here, so that plans do not depend on the host.
func targetsNamed(t testing.TB, names ...string) []*Target {
	var ts []*Target
	for _, name := range names {
		tg, err := TargetFor(name)
		if err != nil {
			t.Fatal(err)
		}
		tg.Parts = 2
		ts = append(ts, tg)
	}
	return ts
}

// canRun reports whether this machine runs tg's code, logging the missing
// instructions when it does not: a test compiles for every target but
// runs only what the host can.
func canRun(t testing.TB, tg *Target) bool {
	t.Helper()
	if err := tg.Runs(); err != nil {
		t.Logf("compiled, not run: %v", err)
		return false
	}
	return true
}

// TestDotKernel runs every case's kernel, for each x86 target the host
// runs (the others are compiled and linked only), against a float64
// product.
func TestDotKernel(t *testing.T) {
	gemmTools(t)
	for _, tg := range x86Targets(t) {
		t.Run(tg.Name, func(t *testing.T) { testDotKernel(t, tg) })
	}
}

func testDotKernel(t *testing.T, tg *Target) { testDotCases(t, tg, gemmCases()) }

// testDotCases compiles the kernels of cases for tg and runs them when the
// host can, against a float64 product.
func testDotCases(t *testing.T, tg *Target, cases []gemmCase) {
	mod := llir.NewModule()
	ext := make([]int64, len(cases))
	for i := range cases {
		c := &cases[i]
		c.s.Target = tg
		var err error
		if ext[i], err = DotKernel(mod, fmt.Sprintf("k%d", i), c.s); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if st := c.s.PackBytes(); st <= 0 || st > 1200<<10 {
			t.Fatalf("%s: %d bytes of packing buffers", c.name, st)
		}
		if ext[i] != c.s.Extent() {
			t.Fatalf("%s: extent %d, Extent() %d", c.name, ext[i], c.s.Extent())
		}
	}
	if !canRun(t, tg) {
		gemmBuildTo(t, mod, filepath.Join(t.TempDir(), "k.so"))
		return
	}
	lib := gemmBuild(t, mod)
	r := rand.New(rand.NewSource(1))
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.s
			k, err := lib.Kernel(fmt.Sprintf("k%d", i))
			if err != nil {
				t.Fatal(err)
			}
			na, nb, nc := gemmSizes(s)
			a := gemmRand(r, na)
			b := gemmRand(r, nb)
			bias := gemmRand(r, s.N)
			var res [][]float32
			for range s.Residuals {
				res = append(res, gemmRand(r, nc))
			}
			c0 := gemmRand(r, nc)
			gemmBandZeros(s, a, b)
			gemmHalfRound(s.AType, a)
			gemmHalfRound(s.BType, b)
			want, bound := gemmRef(s, a, b, bias, res, c0)
			ha, hb := gemmHalfBuf(s.AType, a), gemmHalfBuf(s.BType, b)
			// Three ways to split the range: one call, two threads, one unit
			// per call in reverse order.
			for split := 0; split < 3; split++ {
				c := append([]float32(nil), c0...)
				bufs := [][]float32{ha, hb}
				if s.Bias {
					bufs = append(bufs, bias)
				}
				bufs = append(append(bufs, res...), c)
				switch split {
				case 0:
					k.CallF32(bufs, -3, ext[i]+5) // clamped to the range
				case 1:
					var wg sync.WaitGroup
					h := ext[i] / 2
					for _, rg := range [][2]int64{{0, h}, {h, ext[i]}} {
						wg.Add(1)
						go func() { defer wg.Done(); k.CallF32(bufs, rg[0], rg[1]) }()
					}
					wg.Wait()
				case 2:
					for u := ext[i] - 1; u >= 0; u-- {
						k.CallF32(bufs, u, u+1)
					}
				}
				bad := 0
				for o := range want {
					if d := math.Abs(float64(c[o]) - want[o]); !(d <= bound[o]) {
						if bad < 5 {
							t.Errorf("split %d: C[%d] = %g, want %g (bound %g)", split, o, c[o], want[o], bound[o])
						}
						bad++
					}
				}
				if bad > 0 {
					t.Fatalf("split %d: %d of %d elements wrong", split, bad, len(want))
				}
			}
		})
	}
}

func TestDotKernelErrors(t *testing.T) {
	mod := llir.NewModule()
	for _, s := range []DotSpec{{}, {Batch: 1, M: 0, N: 1, K: 1}, {Batch: 1, M: 1 << 30, N: 1 << 30, K: 1}} {
		if _, err := DotKernel(mod, "k", s); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if _, err := DotKernel(mod, "k", DotSpec{Batch: 1, M: 1, N: 1, K: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := DotKernel(mod, "k", DotSpec{Batch: 1, M: 1, N: 1, K: 1}); err == nil {
		t.Error("duplicate name: no error")
	}
}

func TestDotSpecOf(t *testing.T) {
	f32 := func(d ...int) ir.Type { return ir.Type{DType: ir.F32, Shape: ir.Shape(d)} }
	for _, c := range []struct {
		a, b     ir.Type
		lb, rb   []int
		lc, rc   []int
		want     DotSpec
		wantFail bool
	}{
		{a: f32(4, 5), b: f32(5, 6), lc: []int{1}, rc: []int{0}, want: DotSpec{Batch: 1, M: 4, N: 6, K: 5}},
		{a: f32(5, 4), b: f32(6, 5), lc: []int{0}, rc: []int{1}, want: DotSpec{Batch: 1, M: 4, N: 6, K: 5, TransA: true, TransB: true}},
		{a: f32(2, 3, 8), b: f32(8, 7), lc: []int{2}, rc: []int{0}, want: DotSpec{Batch: 1, M: 6, N: 7, K: 8}},
		{a: f32(9, 3, 8), b: f32(9, 4, 8), lb: []int{0}, rb: []int{0}, lc: []int{2}, rc: []int{2}, want: DotSpec{Batch: 9, M: 3, N: 4, K: 8, TransB: true}},
		{a: f32(2, 3, 8), b: f32(2, 3, 7), lc: []int{0, 1}, rc: []int{0, 1}, want: DotSpec{Batch: 1, M: 8, N: 7, K: 6, TransA: true}},
		// A batch dim in the middle of A: a strided batch.
		{a: f32(3, 9, 8), b: f32(9, 8, 4), lb: []int{1}, rb: []int{0}, lc: []int{2}, rc: []int{1},
			want: DotSpec{Batch: 9, M: 3, N: 4, K: 8, LDA: 72, BatchDims: []DotBatchDim{{Size: 9, A: 8, B: 32, C: 12}}}},
		// Attention after the layout pass: [b,s,h,dh]·[b,s,h,dh]ᵀ with batch (b,h).
		{a: f32(2, 5, 3, 4), b: f32(2, 6, 3, 4), lb: []int{0, 2}, rb: []int{0, 2}, lc: []int{3}, rc: []int{3},
			want: DotSpec{Batch: 6, M: 5, N: 6, K: 4, TransB: true, LDA: 12, LDB: 12,
				BatchDims: []DotBatchDim{{Size: 2, A: 60, B: 72, C: 90}, {Size: 3, A: 4, B: 4, C: 30}}}},
		// Dense batch dims merge into one, and the spec is the dense one.
		{a: f32(2, 3, 5, 4), b: f32(2, 3, 4, 6), lb: []int{0, 1}, rb: []int{0, 1}, lc: []int{3}, rc: []int{2},
			want: DotSpec{Batch: 6, M: 5, N: 6, K: 4}},
		// Contracting dim first, two free dims merged: A stored K×M.
		{a: f32(4, 3, 5), b: f32(4, 6), lb: nil, rb: nil, lc: []int{0}, rc: []int{0}, want: DotSpec{Batch: 1, M: 15, N: 6, K: 4, TransA: true}},
		// Free dims 0 and 2 around the contracting dim: no one run.
		{a: f32(4, 3, 5), b: f32(3, 6), lc: []int{1}, rc: []int{0}, wantFail: true},
		{a: f32(3, 8, 5), b: f32(8, 4), lc: []int{1}, rc: []int{0}, wantFail: true},
	} {
		attrs := ir.Attrs{}
		attrs = attrs.Set("batch", [][]int{c.lb, c.rb})
		attrs = attrs.Set("contract", [][]int{c.lc, c.rc})
		got, err := DotSpecOf(c.a, c.b, attrs)
		if c.wantFail {
			if err == nil {
				t.Errorf("%v·%v: want an error, have %+v", c.a, c.b, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v·%v: have %+v, %v; want %+v", c.a, c.b, got, err, c.want)
		}
	}
}

// TestDotSmallStack runs a dot whose packing buffers (1 MiB of B panel and
// more) would not fit a 1 MiB stack, in a child process started under
// `ulimit -s 1024` (so its threads get 1 MiB stacks): the buffers are on
// the heap, and the child computes the right product.
func TestDotSmallStack(t *testing.T) {
	spec := DotSpec{Batch: 1, M: 200, N: 1024, K: 512, Blocking: &DotBlocking{PackB: 1, KC: 512, NC: 1024}}
	if so := os.Getenv("XLC_TEST_DOT_SO"); so != "" {
		lib, err := dlopen.Open(so)
		if err != nil {
			t.Fatal(err)
		}
		defer lib.Close()
		k, err := lib.Kernel("k")
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewSource(2))
		a, b, c := gemmRand(r, spec.M*spec.K), gemmRand(r, spec.K*spec.N), make([]float32, spec.M*spec.N)
		want, bound := gemmRef(spec, a, b, nil, nil, c)
		k.CallF32([][]float32{a, b, c}, 0, spec.Extent())
		for o := range want {
			if d := math.Abs(float64(c[o]) - want[o]); !(d <= bound[o]) {
				t.Fatalf("C[%d] = %g, want %g", o, c[o], want[o])
			}
		}
		return
	}
	if spec.PackBytes() <= 1<<20 {
		t.Fatalf("packing buffers of %d bytes: the test needs more than the 1 MiB stack", spec.PackBytes())
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	mod := llir.NewModule()
	if _, err := DotKernel(mod, "k", spec); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(mod.String(), "alloca [") {
		t.Error("the kernel still allocates an array on the stack")
	}
	so := filepath.Join(t.TempDir(), "k.so")
	gemmBuildTo(t, mod, so)
	cmd := exec.Command(sh, "-c", `ulimit -s 1024 && exec "$0" -test.run='^TestDotSmallStack$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "XLC_TEST_DOT_SO="+so)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child under ulimit -s 1024: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestDotSmallStack") {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

// BenchmarkDotStrided times the GPT's attention dots (d=128, 4 heads, seq
// 128, batch 16) read in place from [b,s,h,dh] operands, as the layout pass
// leaves them, and the same products on dense [b,h,s,dh] copies, as before
// it, one thread each: go test ./codegen -run X -bench DotStrided.
func BenchmarkDotStrided(b *testing.B) {
	f32 := func(d ...int) ir.Type { return ir.Type{DType: ir.F32, Shape: ir.Shape(d)} }
	spec := func(x, y ir.Type, lb, rb, lc, rc []int) DotSpec {
		s, err := DotSpecOf(x, y, ir.Attrs{}.Set("batch", [][]int{lb, rb}).Set("contract", [][]int{lc, rc}))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	bshd, bhsd, bhss := f32(16, 128, 4, 32), f32(16, 4, 128, 32), f32(16, 4, 128, 128)
	b01, b02 := []int{0, 1}, []int{0, 2}
	pairs := []struct {
		name            string
		strided, before DotSpec
	}{
		{"q·kᵀ", spec(bshd, bshd, b02, b02, []int{3}, []int{3}), spec(bhsd, bhsd, b01, b01, []int{3}, []int{3})},
		{"p·v", spec(bhss, bshd, b01, b02, []int{3}, []int{1}), spec(bhss, bhsd, b01, b01, []int{3}, []int{2})},
		{"pᵀ·dy", spec(bhss, bshd, b01, b02, []int{2}, []int{1}), spec(bhss, bhsd, b01, b01, []int{2}, []int{2})},
		{"qᵀ·ds", spec(bshd, bhss, b02, b01, []int{1}, []int{2}), spec(bhsd, bhss, b01, b01, []int{2}, []int{2})},
	}
	mod := llir.NewModule()
	for i, p := range pairs {
		for j, s := range []DotSpec{p.strided, p.before} {
			if _, err := DotKernel(mod, fmt.Sprintf("k%d_%d", i, j), s); err != nil {
				b.Fatal(err)
			}
		}
	}
	lib := gemmBuild(b, mod)
	r := rand.New(rand.NewSource(1))
	for i, p := range pairs {
		for j, s := range []DotSpec{p.strided, p.before} {
			na, nb, nc := gemmSizes(s)
			bufs := [][]float32{gemmRand(r, na), gemmRand(r, nb), make([]float32, nc)}
			k, err := lib.Kernel(fmt.Sprintf("k%d_%d", i, j))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(p.name+"/"+[]string{"strided", "dense"}[j], func(b *testing.B) {
				for b.Loop() {
					k.CallF32(bufs, 0, s.Extent())
				}
				b.ReportMetric(s.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestDotChooseMR checks the micro-tile rows chosen to balance the two
// halves of a kernel's range.
func TestDotChooseMR(t *testing.T) {
	v4 := x86Targets(t)[2]
	for _, c := range []struct {
		batch, m, want int
	}{
		{1, 128, 8}, {1, 256, 12}, {1, 512, 12}, {1, 2048, 12}, {64, 32, 12}, {64, 128, 12}, {1, 12, 8}, {1, 40, 12}, {1, 13, 8}, {1, 300, 12},
	} {
		s := DotSpec{Batch: c.batch, M: c.m, N: 128, K: 2048, TransA: true, Target: v4}
		if got := s.plan().MR; got != c.want {
			t.Errorf("batch %d, M %d: MR %d, want %d", c.batch, c.m, got, c.want)
		}
	}
}

// TestDotPackB checks when B is read in place: dense rows, few row tiles
// a part (a weight gradient's), and on Intel's AVX-512 cores rows less
// than a page apart.
func TestDotPackB(t *testing.T) {
	for _, c := range []struct {
		cpu    string
		m, n   int
		transB bool
		want   int
	}{
		{"sapphirerapids", 256, 512, false, -1}, {"sapphirerapids", 256, 1023, false, -1},
		{"sapphirerapids", 256, 1024, false, 1}, {"rocketlake", 256, 3072, false, 1},
		{"znver4", 256, 1024, false, -1}, {"x86-64-v4", 256, 3072, false, -1},
		{"sapphirerapids", 2048, 512, false, 1}, {"znver4", 256, 512, true, 1},
	} {
		tg, err := TargetFor(c.cpu)
		if err != nil {
			t.Fatal(err)
		}
		tg.Parts = 2
		s := DotSpec{Batch: 1, M: c.m, N: c.n, K: 2048, TransA: true, TransB: c.transB, Target: tg}
		if got := s.plan().PackB; got != c.want {
			t.Errorf("%s, M %d, N %d, transposed B %v: PackB %d, want %d", c.cpu, c.m, c.n, c.transB, got, c.want)
		}
	}
}

// TestDotColumnParts checks which products split their units by columns:
// unbatched, B packed, fewer rows than columns, whole slivers a part.
func TestDotColumnParts(t *testing.T) {
	for _, c := range []struct {
		batch, m, n, parts int
		want               int
	}{
		{1, 256, 1024, 2, 2}, {1, 256, 1024, 3, 1}, {1, 256, 1024, 1, 1}, {1, 1024, 256, 2, 1},
		{1, 256, 256, 2, 1}, {2, 256, 1024, 2, 1}, {1, 128, 1040, 2, 1},
	} {
		tg, err := TargetFor("x86-64-v3")
		if err != nil {
			t.Fatal(err)
		}
		tg.Parts = c.parts
		s := DotSpec{Batch: c.batch, M: c.m, N: c.n, K: 2048, TransA: true, Target: tg}
		if got := s.plan().NP; got != c.want {
			t.Errorf("batch %d, M %d, N %d, %d parts: NP %d, want %d", c.batch, c.m, c.n, c.parts, got, c.want)
		}
		if got := s.byRows().plan().NP; got != 1 {
			t.Errorf("batch %d, M %d, N %d: by rows, NP %d", c.batch, c.m, c.n, got)
		}
	}
}

// TestDotPackTransA checks that a transposed A is packed for unbatched
// products on Intel's AVX-512 cores, the x86-64-v3 class and Intel's AVX2
// cores, and read in place elsewhere.
func TestDotPackTransA(t *testing.T) {
	for _, c := range []struct {
		cpu      string
		batch, m int
		want     int
	}{
		{"sapphirerapids", 1, 256, 1}, {"rocketlake", 1, 256, 1}, {"sapphirerapids", 64, 256, -1},
		{"znver4", 1, 256, -1}, {"znver4", 1, 1024, -1}, {"x86-64-v4", 1, 1024, -1},
		{"x86-64-v3", 1, 256, 1}, {"x86-64-v3", 1, 1024, 1}, {"x86-64-v3", 64, 1024, -1},
		{"haswell", 1, 256, 1}, {"znver2", 1, 1024, -1}, {"znver2", 1, 256, -1},
	} {
		tg, err := TargetFor(c.cpu)
		if err != nil {
			t.Fatal(err)
		}
		s := DotSpec{Batch: c.batch, M: c.m, N: 256, K: 2048, TransA: true, Target: tg}
		if got := s.plan().PackA; got != c.want {
			t.Errorf("%s, batch %d, M %d: PackA %d, want %d", c.cpu, c.batch, c.m, got, c.want)
		}
	}
}

// TestDotPackPrefetch checks that packing asks for the lines of the rows it
// copies next, A's (stored K×M) and B's alike, and that a dot that packs
// nothing prefetches nothing.
func TestDotPackPrefetch(t *testing.T) {
	tg, err := TargetFor("x86-64-v3")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		packA, packB int
		want         bool
	}{{1, -1, true}, {-1, 1, true}, {1, 1, true}, {-1, -1, false}} {
		s := DotSpec{Batch: 1, M: 256, N: 256, K: 1024, TransA: true, Target: tg,
			Blocking: &DotBlocking{PackA: c.packA, PackB: c.packB}}
		mod := llir.NewModule()
		if _, err := DotKernel(mod, "k", s); err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(funcIn(mod, "k.body").LLString(), "@llvm.prefetch")
		if got != c.want {
			t.Errorf("PackA %d, PackB %d: prefetches %v, want %v", c.packA, c.packB, got, c.want)
		}
	}
}
