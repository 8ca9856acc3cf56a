package cpu

import (
	"math"
	"strings"
	"testing"

	"xlc/driver"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// TestBufferPlan runs functions whose buffers the plan reuses and whose
// donated results it writes in place, twice on different arguments: every
// result of every run equals the interpreter's, so reuse never clobbers a
// live value and a result written into a parameter's buffer is read out
// before the next run refills it.
func TestBufferPlan(t *testing.T) {
	needLLVM(t)
	m := tinyGPTModel(t, driver.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}})
	sgd, err := ir.ParseFunc(`func @sgd(%x: f32[8,16] {role=input}, %w: f32[8,16] {role=param}, %m: f32[8,16] {role=state}) -> (loss: f32[], w: f32[8,16], m: f32[8,16], y: f32[8,16]) {
  %0 = mul %x, %w : f32[8,16]
  %1 = reduce_sum %0 {axes=[0,1]} : f32[]
  %2 = add %m, %x : f32[8,16]
  %3 = sub %w, %2 : f32[8,16]
  %4 = exp %x : f32[8,16]
  %5 = tanh %4 : f32[8,16]
  %6 = neg %5 : f32[8,16]
  return %1, %3, %2, %6
}
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*ir.Func{sgd, m.Step} {
		x := load(t, f)
		p := x.Plan()
		t.Logf("@%s: peak %d B, without reuse %d B; in place %d of %d donations", f.Name, p.PeakBytes, p.NaiveBytes, len(p.InPlace), len(p.Donations))
		if len(p.InPlace) == 0 || p.PeakBytes >= p.NaiveBytes {
			t.Errorf("@%s: want donations in place and reuse", f.Name)
		}
		for run := range 2 {
			args := trainArgs(t, f, int64(run))
			want, err := interp.Run(f, args)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x.Run(args)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				// Softmax ignores the key bias: its gradient is zero up
				// to rounding, so adamw turns noise into ±lr updates that
				// differ between any two summation orders (also without
				// a buffer plan).
				if strings.HasSuffix(f.ResultNames[i], "attention.k.b") {
					continue
				}
				// f32 exp, log, tanh and erf are within an ulp or two of
				// the interpreter's, not its bits (codegen/vmath.go), and a
				// gradient element that cancels to 10^-6 of its tensor's
				// largest (AdamW's m and v of it) keeps that noise: allow
				// each element 1e-6 of the largest |want| besides 1e-4 of
				// its own. A clobbered buffer is off by far more.
				if d := diffAbs(got[i], want[i], 1e-4, scaleTerms(want[i], 1e-2)); d != "" {
					t.Errorf("@%s run %d: result %s: %s", f.Name, run, f.ResultNames[i], d)
				}
			}
		}
	}
}

// trainArgs are arguments for f: initialized parameters and state, bound
// text inputs where f takes them, random values otherwise.
func trainArgs(t *testing.T, f *ir.Func, seed int64) []*interp.Tensor {
	named := map[string]*interp.Tensor{}
	if _, err := runtime.Args(f, named); err != nil && f.Param("tokens") != nil {
		s, err := runtime.InitParams(f, uint64(seed))
		if err != nil {
			t.Fatal(err)
		}
		st, err := runtime.InitState(f, uint64(seed))
		if err != nil {
			t.Fatal(err)
		}
		in, err := runtime.BindInputs(f, runtime.BuiltinText(), "train", 1, seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []map[string]*interp.Tensor{s, st, in} {
			for k, v := range m {
				named[k] = v
			}
		}
		args, err := runtime.Args(f, named)
		if err != nil {
			t.Fatal(err)
		}
		return args
	}
	return randomArgs(f, seed, -3, 3)
}

// scaleTerms is diffAbs's terms for a result whose elements may carry an
// absolute error of frac times its largest magnitude: that, for every
// element.
func scaleTerms(want *interp.Tensor, frac float64) []float64 {
	m := 0.0
	for i := range want.Len() {
		if v := math.Abs(want.At(i)); !math.IsInf(v, 0) && !math.IsNaN(v) {
			m = max(m, v)
		}
	}
	terms := make([]float64, want.Len())
	for i := range terms {
		terms[i] = frac * m
	}
	return terms
}
