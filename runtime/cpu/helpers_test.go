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
// than rtol relative to the element, or rtol relative to the largest
// magnitude of want (an absolute floor for cancellation near zero); "" when
// they agree. NaNs agree with NaNs, infinities with equal infinities.
func diff(got, want *interp.Tensor, rtol float64) string {
	if !got.Type.Equal(want.Type) {
		return fmt.Sprintf("type %v, want %v", got.Type, want.Type)
	}
	if err := got.Check(want.Type); err != nil {
		return err.Error()
	}
	scale := 0.0
	for i := range want.Len() {
		if w := math.Abs(want.At(i)); !math.IsInf(w, 0) && !math.IsNaN(w) {
			scale = max(scale, w)
		}
	}
	for i := range want.Len() {
		g, w := got.At(i), want.At(i)
		switch {
		case g == w, math.IsNaN(g) && math.IsNaN(w):
			continue
		case math.IsInf(g, 0) || math.IsInf(w, 0) || math.IsNaN(g) || math.IsNaN(w):
		case math.Abs(g-w) <= rtol*math.Max(math.Abs(w), scale):
			continue
		}
		return fmt.Sprintf("element %d: got %v, want %v (rtol %g)\n got  %v\n want %v", i, g, w, rtol, clip(got), clip(want))
	}
	return ""
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
