// Package backendtest holds the checks every compiled backend runs against
// the interpreter, so that runtime/cpu and runtime/cuda test the same
// things: every op in every dtype (Ops), the edge cases of the element
// semantics (SpecialValues), whole models forward and trained (ModelForward,
// TrainStep), state kept between steps (ResidentState, RunKeptSwap), and
// the comparison they share (Diff). A backend's test passes its Loader; only
// test binaries import this package.
package backendtest

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// Loader loads f on the backend under test; the executable is closed when
// the test ends (t.Cleanup). It fails t when f does not load.
type Loader func(t testing.TB, f *ir.Func) runtime.Executable

// RunBoth runs f on args with the interpreter and on the backend.
func RunBoth(t testing.TB, load Loader, f *ir.Func, args []*interp.Tensor) (want, got []*interp.Tensor) {
	t.Helper()
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatalf("interp: %v", err)
	}
	got, err = load(t, f).Run(args)
	if err != nil {
		t.Fatalf("@%s: %v", f.Name, err)
	}
	return want, got
}

// Tolerance is the relative tolerance of results of dtype d: 1e-5 for f32
// (libm may differ from Go's math in the last place), one unit in the last
// place of f16 and bf16 (a transcendental result may round the other way),
// and exact for integers and bool.
func Tolerance(d ir.DType) float64 {
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

// Diff describes the first element of got that differs from want by more
// than rtol·|want| + rtol·floor(dtype) (floor: the smallest normal of a
// float dtype, for results that underflow differently); "" when they agree.
// The bound is per element: a small element must be as close as a large
// one. NaNs agree with NaNs, infinities with equal infinities. Results that
// cancel (a sum or dot whose terms are much larger than it) need a bound
// scaled by their terms: DiffAbs.
func Diff(got, want *interp.Tensor, rtol float64) string {
	return DiffAbs(got, want, rtol, nil)
}

// DiffAbs is Diff with an absolute allowance per element: element i may
// differ by rtol·|want_i| + rtol·max(floor, terms[i]), where terms[i] is the
// sum of the magnitudes of the terms that make element i (Σ|a·b| for a dot,
// Σ|x| for a sum; nil: none). Two correct summations in double of the same
// terms, rounded once, differ by much less than 1e-5·Σ|terms| however much
// the sum cancels, so this is the bound codegen/dot_test.go uses.
func DiffAbs(got, want *interp.Tensor, rtol float64, terms []float64) string {
	if got == nil {
		return "no result"
	}
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

// AbsTerms runs f on the magnitudes of float args: each result's sum of
// the magnitudes of the terms that make it (DiffAbs's terms).
func AbsTerms(t testing.TB, f *ir.Func, args []*interp.Tensor) []*interp.Tensor {
	t.Helper()
	abs := make([]*interp.Tensor, len(args))
	for i, a := range args {
		abs[i] = interp.NewTensor(a.Type)
		copy(abs[i].I, a.I)
		for j, x := range a.F {
			abs[i].F[j] = math.Abs(x)
		}
	}
	terms, err := interp.Run(f, abs)
	if err != nil {
		t.Fatal(err)
	}
	return terms
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

// RandomTensor fills a tensor of type ty: floats normal (times 2),
// integers in [lo, hi], bool 0/1.
func RandomTensor(r *rand.Rand, ty ir.Type, lo, hi int64) *interp.Tensor {
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

// RandomArgs returns random arguments for f's parameters (RandomTensor's,
// integers in [lo, hi]) from seed.
func RandomArgs(f *ir.Func, seed, lo, hi int64) []*interp.Tensor {
	r := rand.New(rand.NewSource(seed))
	args := make([]*interp.Tensor, len(f.Params))
	for i, q := range f.Params {
		args[i] = RandomTensor(r, q.Type, lo, hi)
	}
	return args
}

// InstrText is the line of f's text that defines v, for messages.
func InstrText(f *ir.Func, v *ir.Value) string {
	for i, w := range f.Body {
		if w == v {
			lines := strings.Split(f.String(), "\n")
			if i+1 < len(lines) {
				return strings.TrimSpace(lines[i+1])
			}
		}
	}
	return v.Op.String()
}
