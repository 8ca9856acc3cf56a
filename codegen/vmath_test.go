package codegen

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"xlc/codegen/internal/dlopen"
	"xlc/ir"
)

// vmathInputs are the float32 inputs of TestVectorMath: every 2^12-th bit
// pattern (both signs, all exponents), a dense sweep of |x| in [2^-12, 16]
// (every 61st pattern, both signs), the special values and the neighbours
// of every threshold and interval boundary of vmath.go.
func vmathInputs() []float32 {
	var xs []float32
	for u := uint64(0); u < 1<<32; u += 1 << 12 {
		xs = append(xs, math.Float32frombits(uint32(u)))
	}
	for u := math.Float32bits(0x1p-12); u <= math.Float32bits(16); u += 61 {
		xs = append(xs, math.Float32frombits(u), -math.Float32frombits(u))
	}
	inf := float32(math.Inf(1))
	special := []float32{0, inf, float32(math.NaN()), math.MaxFloat32, math.SmallestNonzeroFloat32,
		0x1p-126, 0x1p-127, 0x1p-149 * 3, 1, 2, 0.5, float32(math.Sqrt2), float32(math.Sqrt(0.5)),
		88.72283, 88.7229, 89, 89.5, 103.9, 103.97, 104, 110, 87.33, 87.34, 150, 1e30,
		tanhSmall, tanhMax, 9, 9.01, 9.02, erfSmall, erfMax, 3.92, 3.93, 6, 0x1p-30, 1e-20, 1e-40}
	for _, s := range special {
		for _, v := range []float32{s, -s} {
			u := math.Float32bits(v)
			for d := uint32(0); d < 64; d++ { // v and 63 floats on either side of it
				xs = append(xs, math.Float32frombits(u+d), math.Float32frombits(u-d))
			}
		}
	}
	return xs
}

// ulpDist is the number of float32 values between a and b (0 when both
// are NaN; a huge distance for NaN against a number, and for ±0 against ∓0).
func ulpDist(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return 1 << 40
	}
	if a == 0 && b == 0 && math.Signbit(float64(a)) != math.Signbit(float64(b)) {
		return 1 << 40
	}
	key := func(x float32) int64 {
		u := int64(math.Float32bits(x))
		if u&(1<<31) != 0 {
			return -(u & 0x7fffffff)
		}
		return u
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// TestVectorMath runs the compiled f32 exp, log, tanh and erf over
// vmathInputs and requires every result within 2 ulps of Go's float64
// function rounded to float32 (NaN for NaN, the sign of a zero kept).
func TestVectorMath(t *testing.T) {
	needTools(t)
	xs := vmathInputs()
	fns := []struct {
		op  string
		ref func(float64) float64
	}{{"exp", math.Exp}, {"log", math.Log}, {"tanh", math.Tanh}, {"erf", math.Erf}}
	n := len(xs)
	src := fmt.Sprintf("func @f(%%x: f32[%d]) -> (exp: f32[%[1]d], log: f32[%[1]d], tanh: f32[%[1]d], erf: f32[%[1]d]) {\n", n)
	for i, f := range fns {
		src += fmt.Sprintf("  %%%d = %s %%x : f32[%d]\n", i, f.op, n)
	}
	src += "  return %0, %1, %2, %3\n}"
	got := runF32(t, src, xs, len(fns))
	for r, f := range fns {
		var worst int64
		var at float32
		for i, x := range xs {
			want := float32(f.ref(float64(x)))
			if d := ulpDist(got[r][i], want); d > worst {
				worst, at = d, x
			}
		}
		t.Logf("%s: max %d ulp over %d inputs (at %g: %g, want %g)", f.op, worst, n, at, got[r][indexOf(xs, at)], float32(f.ref(float64(at))))
		if worst > 2 {
			t.Errorf("%s: %d ulps at x = %g (%#x): got %g, want %g", f.op, worst, at, math.Float32bits(at),
				got[r][indexOf(xs, at)], float32(f.ref(float64(at))))
		}
	}
}

func indexOf(xs []float32, x float32) int {
	for i, v := range xs {
		if math.Float32bits(v) == math.Float32bits(x) {
			return i
		}
	}
	return -1
}

// TestVectorMathVectorizes checks that opt-19 -O3 vectorizes an elementwise
// f32 loop over each of exp, log, tanh and erf for the host: the optimized
// module holds vector fmas on <8 x float> or <16 x float> and calls no libm
// function.
func TestVectorMathVectorizes(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	for _, op := range []string{"exp", "log", "tanh", "erf"} {
		f := parse(t, fmt.Sprintf("func @f(%%x: f32[4096]) -> (r: f32[4096]) {\n  %%0 = %s %%x : f32[4096]\n  return %%0\n}", op))
		p, err := Compile(f, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ll, opt := filepath.Join(dir, op+".ll"), filepath.Join(dir, op+".opt.ll")
		if err := os.WriteFile(ll, []byte(p.LL), 0o644); err != nil {
			t.Fatal(err)
		}
		optFlags, _ := toolFlags(moduleTriple(p.LL))
		args := append(append([]string{toolInfo.opt}, optFlags...), "-S", ll, "-o", opt)
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		text, err := os.ReadFile(opt)
		if err != nil {
			t.Fatal(err)
		}
		vfma := regexp.MustCompile(`call <(8|16) x float> @llvm\.fma\.v(8|16)f32`).FindAll(text, -1)
		if len(vfma) == 0 {
			t.Errorf("%s for %s: no <8 x float> or <16 x float> fma in the optimized kernel:\n%s", op, p.CPU, text)
		} else {
			t.Logf("%s for %s: %d fmas like %s", op, p.CPU, len(vfma), vfma[0])
		}
		if m := regexp.MustCompile(`call [^\n]*@(expf?|logf?|tanhf?|erff?|_ZGV\w+)\(`).Find(text); m != nil {
			t.Errorf("%s: the optimized kernel still calls %s", op, m)
		}
	}
}

func parse(t *testing.T, src string) *ir.Func {
	t.Helper()
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return f
}

// runF32 compiles src, a function of one f32 input whose results are
// computed by one kernel each, for the host, runs every kernel over xs and
// returns the results.
func runF32(t *testing.T, src string, xs []float32, results int) [][]float32 {
	t.Helper()
	t.Setenv("XLC_CACHE", t.TempDir())
	p := compileText(t, src)
	so, err := SharedObject(p.LL)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dlopen.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	if len(p.Kernels) != results {
		t.Fatalf("%d kernels, want %d", len(p.Kernels), results)
	}
	out := make([][]float32, results)
	for i, k := range p.Kernels {
		fn, err := lib.Kernel(k.Symbol)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = make([]float32, len(xs))
		fn.CallF32([][]float32{xs, out[i]}, 0, k.Extent)
	}
	return out
}
