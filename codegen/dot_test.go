package codegen

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
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
	opt, llc, cc := gemmTools(t)
	dir := t.TempDir()
	ll, bc, obj, so := filepath.Join(dir, "k.ll"), filepath.Join(dir, "k.bc"), filepath.Join(dir, "k.o"), filepath.Join(dir, "k.so")
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
	lib, err := dlopen.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

// gemmRef is C = Alpha·A·B (+ bias) (+ C) in float64, with the bound
// 1e-4·Σ|terms| for each element.
func gemmRef(s DotSpec, a, b, bias, c0 []float32) (want, bound []float64) {
	alpha := float64(s.Alpha)
	if alpha == 0 {
		alpha = 1
	}
	want = make([]float64, s.Batch*s.M*s.N)
	bound = make([]float64, len(want))
	for bt := 0; bt < s.Batch; bt++ {
		for i := 0; i < s.M; i++ {
			for j := 0; j < s.N; j++ {
				var sum, abs float64
				for k := 0; k < s.K; k++ {
					var x, y float64
					if s.TransA {
						x = float64(a[bt*s.M*s.K+k*s.M+i])
					} else {
						x = float64(a[bt*s.M*s.K+i*s.K+k])
					}
					if s.TransB {
						y = float64(b[bt*s.K*s.N+j*s.K+k])
					} else {
						y = float64(b[bt*s.K*s.N+k*s.N+j])
					}
					sum += x * y
					abs += math.Abs(x * y)
				}
				sum *= alpha
				abs *= math.Abs(alpha)
				o := bt*s.M*s.N + i*s.N + j
				if s.Bias {
					sum += float64(bias[j])
					abs += math.Abs(float64(bias[j]))
				}
				if s.Accumulate {
					sum += float64(c0[o])
					abs += math.Abs(float64(c0[o]))
				}
				want[o] = sum
				bound[o] = 1e-4*abs + 1e-30
			}
		}
	}
	return want, bound
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

func gemmCases() []gemmCase {
	var cs []gemmCase
	add := func(s DotSpec) {
		cs = append(cs, gemmCase{fmt.Sprintf("b%d_%dx%dx%d_ta%v_tb%v_bias%v_acc%v_alpha%g", s.Batch, s.M, s.N, s.K, s.TransA, s.TransB, s.Bias, s.Accumulate, s.Alpha), s})
	}
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
	return cs
}

func TestDotKernel(t *testing.T) {
	gemmTools(t)
	cases := gemmCases()
	mod := llir.NewModule()
	ext := make([]int64, len(cases))
	for i, c := range cases {
		var err error
		if ext[i], err = DotKernel(mod, fmt.Sprintf("k%d", i), c.s); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if st := c.s.StackBytes(); st <= 0 || st > 1200<<10 {
			t.Fatalf("%s: %d bytes of stack", c.name, st)
		}
		if ext[i] != c.s.Extent() {
			t.Fatalf("%s: extent %d, Extent() %d", c.name, ext[i], c.s.Extent())
		}
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
			a := gemmRand(r, s.Batch*s.M*s.K)
			b := gemmRand(r, s.Batch*s.K*s.N)
			bias := gemmRand(r, s.N)
			c0 := gemmRand(r, s.Batch*s.M*s.N)
			want, bound := gemmRef(s, a, b, bias, c0)
			// Three ways to split the range: one call, two threads, one unit
			// per call in reverse order.
			for split := 0; split < 3; split++ {
				c := append([]float32(nil), c0...)
				bufs := [][]float32{a, b}
				if s.Bias {
					bufs = append(bufs, bias)
				}
				bufs = append(bufs, c)
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
		{a: f32(3, 9, 8), b: f32(9, 8, 4), lb: []int{1}, rb: []int{0}, lc: []int{2}, rc: []int{1}, wantFail: true},
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
		if err != nil || got != c.want {
			t.Errorf("%v·%v: have %+v, %v; want %+v", c.a, c.b, got, err, c.want)
		}
	}
}
