package backendtest

import (
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

// TestDiffPerElement checks that diff bounds each element by its own
// magnitude: a small element 10% off fails even beside a large one, and
// diffAbs allows a cancelled sum the error its terms' magnitude explains.
func TestDiffPerElement(t *testing.T) {
	ty := ir.Type{DType: ir.F32, Shape: ir.Shape{2}}
	want := interp.FromFloats(ty, []float64{100, 0.001})
	if d := Diff(interp.FromFloats(ty, []float64{100, 0.0011}), want, 1e-5); d == "" {
		t.Error("0.0011 for 0.001 passed beside 100")
	}
	if d := Diff(interp.FromFloats(ty, []float64{100.0005, 0.00100000001}), want, 1e-5); d != "" {
		t.Errorf("results within 1e-5 of each element failed: %s", d)
	}
	if d := Diff(interp.FromFloats(ty, []float64{100, 0.0011}), want, 0); d == "" {
		t.Error("rtol 0 is not exact")
	}
	// 0.001 as the sum of terms of magnitude 1000: 1e-4 off is 1e-7 of them.
	if d := DiffAbs(interp.FromFloats(ty, []float64{100, 0.0011}), want, 1e-5, []float64{100, 1000}); d != "" {
		t.Errorf("a cancelled sum within 1e-5 of its terms failed: %s", d)
	}
}
