package cpu

import (
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// TestExecutable checks the Backend interface, argument checking, results
// that are parameters or aliases, and Close.
func TestExecutable(t *testing.T) {
	needLLVM(t)
	f, err := ir.ParseFunc(`func @f(%x: f32[2,3]) -> (x: f32[2,3], r: f32[6], n: f32[2,3]) {
  %0 = reshape %x : f32[6]
  %1 = neg %x : f32[2,3]
  return %x, %0, %1
}`)
	if err != nil {
		t.Fatal(err)
	}
	var be runtime.Backend = Backend{}
	if be.Name() != "cpu" {
		t.Errorf("Name %q", be.Name())
	}
	exe, err := be.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	x := exe.(*Executable)
	arg := interp.FromFloats(ir.T(ir.F32, 2, 3), []float64{1, 2, 3, 4, 5, 6})
	out, err := x.Run([]*interp.Tensor{arg})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].F[5] != 6 || out[1].F[5] != 6 || out[2].F[5] != -6 || !out[1].Type.Equal(ir.T(ir.F32, 6)) {
		t.Errorf("results %v", out)
	}
	if _, err := x.Run(nil); err == nil || !strings.Contains(err.Error(), "takes 1 arguments") {
		t.Errorf("no arguments: %v", err)
	}
	if _, err := x.Run([]*interp.Tensor{interp.NewTensor(ir.T(ir.F64, 2, 3))}); err == nil || !strings.Contains(err.Error(), "%x") {
		t.Errorf("wrong type: %v", err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := x.Run([]*interp.Tensor{arg}); err == nil {
		t.Error("Run after Close succeeded")
	}
}
