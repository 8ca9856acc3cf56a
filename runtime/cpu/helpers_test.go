package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/runtime/interp"
)

// needLLVM skips the test when the LLVM toolchain is missing, except under
// CI=true, where it fails.
func needLLVM(t testing.TB) {
	t.Helper()
	llvmtest.Require(t, codegen.ToolchainError())
}

// load compiles f for the cpu backend; the executable is closed when the
// test ends.
func load(t testing.TB, f *ir.Func) *Executable {
	t.Helper()
	x, err := Backend{}.LoadExec(f)
	if err != nil {
		t.Fatalf("load @%s: %v", f.Name, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// runBoth runs f on args with the interpreter and the cpu backend.
func runBoth(t testing.TB, f *ir.Func, args []*interp.Tensor) (want, got []*interp.Tensor) {
	t.Helper()
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatalf("interp: %v", err)
	}
	got, err = load(t, f).Run(args)
	if err != nil {
		t.Fatalf("cpu: %v", err)
	}
	return want, got
}

// tolerance is the relative tolerance of results of dtype d: 1e-5 for f32
// (libm may differ from Go's math in the last place), one unit in the last
// place of f16 and bf16 (a transcendental result may round the other way),
// and exact for integers and bool.
func tolerance(d ir.DType) float64 {
	switch d {
	case ir.F32:
		return 1e-5
	case ir.F64:
		return 1e-12
	case ir.F16:
		return 1e-3
	case ir.BF16:
		return 1e-2
	}
	return 0
}

// diff describes the first element of got that differs from want by more
// than rtol·|want| + rtol·floor(dtype) (floor: the smallest normal of a
// float dtype, for results that underflow differently); "" when they agree.
// The bound is per element: a small element must be as close as a large
// one. NaNs agree with NaNs, infinities with equal infinities. Results that
// cancel (a sum or dot whose terms are much larger than it) need a bound
// scaled by their terms: diffAbs.
func diff(got, want *interp.Tensor, rtol float64) string {
	return diffAbs(got, want, rtol, nil)
}

// diffAbs is diff with an absolute allowance per element: element i may
// differ by rtol·|want_i| + rtol·max(floor, terms[i]), where terms[i] is the
// sum of the magnitudes of the terms that make element i (Σ|a·b| for a dot,
// Σ|x| for a sum; nil: none). Two correct summations in double of the same
// terms, rounded once, differ by much less than 1e-5·Σ|terms| however much
// the sum cancels, so this is the bound codegen/dot_test.go uses.
func diffAbs(got, want *interp.Tensor, rtol float64, terms []float64) string {
	if !got.Type.Equal(want.Type) {
		return fmt.Sprintf("type %v, want %v", got.Type, want.Type)
	}
	if err := got.Check(want.Type); err != nil {
		return err.Error()
	}
	floor := smallestNormal(want.Type.DType)
	for i := range want.Len() {
		g, w := got.At(i), want.At(i)
		abs := floor
		if terms != nil {
			abs = max(abs, terms[i])
		}
		switch {
		case g == w, math.IsNaN(g) && math.IsNaN(w):
			continue
		case math.IsInf(g, 0) || math.IsInf(w, 0) || math.IsNaN(g) || math.IsNaN(w):
		case math.Abs(g-w) <= rtol*(math.Abs(w)+abs):
			continue
		}
		return fmt.Sprintf("element %d: got %v, want %v (|diff| %.3g > rtol %g × (|want| + %.3g))\n got  %v\n want %v", i, g, w, math.Abs(g-w), rtol, abs, clip(got), clip(want))
	}
	return ""
}

// smallestNormal is the smallest positive normal number of float dtype d
// (0 for the others).
func smallestNormal(d ir.DType) float64 {
	switch d {
	case ir.F32, ir.BF16:
		return 0x1p-126
	case ir.F64:
		return 0x1p-1022
	case ir.F16:
		return 0x1p-14
	}
	return 0
}

func clip(t *interp.Tensor) string {
	s := t.String()
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// randomTensor fills a tensor of type ty: floats normal (times scale),
// integers in [lo, hi], bool 0/1.
func randomTensor(r *rand.Rand, ty ir.Type, lo, hi int64) *interp.Tensor {
	n := ty.Shape.NumElements()
	if ty.DType.IsFloat() {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64() * 2
		}
		return interp.FromFloats(ty, v)
	}
	v := make([]int64, n)
	for i := range v {
		if ty.DType == ir.Bool {
			v[i] = r.Int63n(2)
		} else {
			v[i] = lo + r.Int63n(hi-lo+1)
		}
	}
	return interp.FromInts(ty, v)
}

// randomArgs returns random arguments for f's parameters (randomTensor's,
// integers in [lo, hi]) from seed.
func randomArgs(f *ir.Func, seed, lo, hi int64) []*interp.Tensor {
	r := rand.New(rand.NewSource(seed))
	args := make([]*interp.Tensor, len(f.Params))
	for i, q := range f.Params {
		args[i] = randomTensor(r, q.Type, lo, hi)
	}
	return args
}

// parseFunc makes a function of the given parameters and body (one
// instruction a line); the last instruction is returned.
func parseFunc(t testing.TB, params, body string) *ir.Func {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(body), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	name, rest, _ := strings.Cut(last, " = ")
	_ = rest
	ty := last[strings.LastIndex(last, ": ")+2:]
	src := fmt.Sprintf("func @f(%s) -> (r: %s) {\n%s\n  return %s\n}\n", params, ty, body, name)
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return f
}

// TestDiffPerElement checks that diff bounds each element by its own
// magnitude: a small element 10% off fails even beside a large one, and
// diffAbs allows a cancelled sum the error its terms' magnitude explains.
func TestDiffPerElement(t *testing.T) {
	ty := ir.Type{DType: ir.F32, Shape: ir.Shape{2}}
	want := interp.FromFloats(ty, []float64{100, 0.001})
	if d := diff(interp.FromFloats(ty, []float64{100, 0.0011}), want, 1e-5); d == "" {
		t.Error("0.0011 for 0.001 passed beside 100")
	}
	if d := diff(interp.FromFloats(ty, []float64{100.0005, 0.00100000001}), want, 1e-5); d != "" {
		t.Errorf("results within 1e-5 of each element failed: %s", d)
	}
	if d := diff(interp.FromFloats(ty, []float64{100, 0.0011}), want, 0); d == "" {
		t.Error("rtol 0 is not exact")
	}
	// 0.001 as the sum of terms of magnitude 1000: 1e-4 off is 1e-7 of them.
	if d := diffAbs(interp.FromFloats(ty, []float64{100, 0.0011}), want, 1e-5, []float64{100, 1000}); d != "" {
		t.Errorf("a cancelled sum within 1e-5 of its terms failed: %s", d)
	}
}
