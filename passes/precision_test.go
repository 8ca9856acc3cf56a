package passes_test

import (
	"math"
	"testing"

	"xlc/ir"
	"xlc/passes"
	"xlc/runtime/interp"
)

// halfRun runs src on the interpreter as written and after the precision
// pass for half, on the same arguments.
func halfRun(t *testing.T, src string, half ir.DType, args []*interp.Tensor) (f32, low []*interp.Tensor) {
	t.Helper()
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatal(err)
	}
	if f32, err = interp.Run(f, args); err != nil {
		t.Fatal(err)
	}
	if err := passes.Run(f, passes.Options{Verify: true, Passes: []string{"precision"}, Precision: half}); err != nil {
		t.Fatal(err)
	}
	if low, err = interp.Run(f, args); err != nil {
		t.Fatal(err)
	}
	return f32, low
}

// closeTo fails unless every element of got is finite and within rel of
// want (relative to want's largest magnitude).
func closeTo(t *testing.T, what string, got, want *interp.Tensor, rel float64) {
	t.Helper()
	scale := 1.0
	for _, w := range want.Floats() {
		scale = max(scale, math.Abs(w))
	}
	for i, g := range got.Floats() {
		if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-want.At(i)) > rel*scale {
			t.Fatalf("%s: element %d is %g, want %g (f32)", what, i, g, want.At(i))
		}
	}
}

// TestPrecisionMaskNoNaN: scores masked by -1e9 (a select) and by -1e12
// (x·m + c·(1-m)) are multiplied by values that are 0 where the mask is.
// In f16 the constants are -inf and -inf·0 is NaN; the clamped copy keeps
// the products finite and near f32's, in f16 and bf16.
func TestPrecisionMaskNoNaN(t *testing.T) {
	const src = `func @f(%s: f32[4,4], %m: bool[4,4], %mf: f32[4,4], %v: f32[4,8]) -> (a: f32[4,8], b: f32[4,8]) {
  %0 = constant {value=-1e+09} : f32[4,4]
  %1 = select %m, %s, %0 : f32[4,4]
  %2 = dot %1, %v {batch=[[],[]], contract=[[1],[0]]} : f32[4,8]
  %3 = mul %s, %mf : f32[4,4]
  %4 = constant {value=1.0} : f32[4,4]
  %5 = sub %4, %mf : f32[4,4]
  %6 = constant {value=-1e+12} : f32[4,4]
  %7 = mul %6, %5 : f32[4,4]
  %8 = add %3, %7 : f32[4,4]
  %9 = dot %8, %v {batch=[[],[]], contract=[[1],[0]]} : f32[4,8]
  return %2, %9
}`
	s, m, mf, v := make([]float64, 16), make([]float64, 16), make([]float64, 16), make([]float64, 32)
	for i := range 4 {
		for k := range 4 {
			s[i*4+k] = float64(i-k) / 4
			if k < 2 { // columns 2 and 3 masked, and v's rows 2 and 3 zero
				m[i*4+k], mf[i*4+k] = 1, 1
			}
		}
	}
	for k := range 2 {
		for j := range 8 {
			v[k*8+j] = float64(j-k) / 8
		}
	}
	args := []*interp.Tensor{
		interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{4, 4}}, s),
		interp.FromFloats(ir.Type{DType: ir.Bool, Shape: ir.Shape{4, 4}}, m),
		interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{4, 4}}, mf),
		interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{4, 8}}, v),
	}
	for _, half := range []ir.DType{ir.F16, ir.BF16} {
		want, got := halfRun(t, src, half, args)
		for i, name := range []string{"select mask", "additive mask"} {
			closeTo(t, half.String()+" "+name, got[i], want[i], 1e-2)
		}
	}
}

// TestPrecisionEpsilonF32: layer norm of constant rows (variance 0) under
// f16 divides by sqrt(1e-12), which f16 would flush to 0 (an inf times 0):
// the statistics and the epsilon stay f32, so the product is finite.
func TestPrecisionEpsilonF32(t *testing.T) {
	const src = `func @f(%x: f32[2,4], %w: f32[4,4]) -> (y: f32[2,4]) {
  %0 = reduce_sum %x {axes=[1]} : f32[2]
  %1 = constant {value=0.25} : f32[2]
  %2 = mul %0, %1 : f32[2]
  %3 = broadcast %2 {dims=[0]} : f32[2,4]
  %4 = sub %x, %3 : f32[2,4]
  %5 = mul %4, %4 : f32[2,4]
  %6 = reduce_sum %5 {axes=[1]} : f32[2]
  %7 = mul %6, %1 : f32[2]
  %8 = constant {value=1e-12} : f32[2]
  %9 = add %7, %8 : f32[2]
  %10 = rsqrt %9 : f32[2]
  %11 = broadcast %10 {dims=[0]} : f32[2,4]
  %12 = mul %4, %11 : f32[2,4]
  %13 = dot %12, %w {batch=[[],[]], contract=[[1],[0]]} : f32[2,4]
  return %13
}`
	x := []float64{3, 3, 3, 3, 1, 2, 3, 4}
	w := make([]float64, 16)
	for i := range w {
		w[i] = float64(i%5) - 2
	}
	args := []*interp.Tensor{
		interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{2, 4}}, x),
		interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{4, 4}}, w),
	}
	want, got := halfRun(t, src, ir.F16, args)
	closeTo(t, "f16 layer norm", got[0], want[0], 2e-3)
}
