package cpu

import (
	"testing"

	"xlc/driver"
	"xlc/ir"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// TestResidentState trains a tiny GPT 4 steps with the state copied in and
// out of every step and 4 with it kept in the executable (Stepper, as
// Train and Bench run): the losses and, after Sync, every state tensor are
// bit for bit the same.
func TestResidentState(t *testing.T) {
	needLLVM(t)
	f := tinyGPTModel(t, driver.Options{}).Step
	var err error
	var exes [2]*Executable
	var states [2]map[string]*interp.Tensor
	var steppers [2]*runtime.Stepper
	for b := range 2 {
		exes[b] = load(t, f)
		if states[b], err = runtime.FreshState(f, 1); err != nil {
			t.Fatal(err)
		}
		steppers[b] = runtime.NewStepper(exes[b], f, states[b], b == 1)
	}
	data := runtime.BuiltinText()
	for step := int64(0); step < 4; step++ {
		var losses [2]map[string]float64
		for b := range 2 {
			if losses[b], err = steppers[b].Step(data, 1, step); err != nil {
				t.Fatal(err)
			}
		}
		for name, w := range losses[0] {
			if g := losses[1][name]; g != w {
				t.Errorf("step %d: %s = %v kept, %v copied", step, name, g, w)
			}
		}
		if step == 1 {
			if err := steppers[1].Sync(); err != nil { // a checkpoint in the middle
				t.Fatal(err)
			}
		}
	}
	if err := steppers[1].Sync(); err != nil {
		t.Fatal(err)
	}
	for name, w := range states[0] {
		if msg := diff(states[1][name], w, 0); msg != "" {
			t.Errorf("state %s: %s", name, msg)
		}
	}
}

// TestRunKeptSwap keeps two parameters whose results are each other's old
// values: each is fed back from the buffer the other overwrites.
func TestRunKeptSwap(t *testing.T) {
	needLLVM(t)
	f, err := ir.ParseFunc(`func @f(%a: f32[3] {role=state}, %b: f32[3] {role=state}, %x: f32[3]) -> (a: f32[3], b: f32[3], s: f32[3]) {
  %0 = add %a, %x : f32[3]
  return %b, %a, %0
}
`)
	if err != nil {
		t.Fatal(err)
	}
	e := load(t, f)
	a := interp.FromFloats(ir.Type{DType: ir.F32, Shape: ir.Shape{3}}, []float64{1, 2, 3})
	b := interp.FromFloats(a.Type, []float64{10, 20, 30})
	x := interp.FromFloats(a.Type, []float64{100, 100, 100})
	if _, err := e.RunKept([]*interp.Tensor{a, b, x}, []bool{true, true, false}); err == nil {
		t.Fatal("RunKept before any run: no error")
	}
	want := [][2][]float64{{{10, 20, 30}, {1, 2, 3}}, {{1, 2, 3}, {10, 20, 30}}, {{10, 20, 30}, {1, 2, 3}}}
	for i, w := range want {
		var out []*interp.Tensor
		if i == 0 {
			out, err = e.Run([]*interp.Tensor{a, b, x})
		} else {
			out, err = e.RunKept([]*interp.Tensor{nil, nil, x}, []bool{true, true, false})
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (out[0] != nil || out[1] != nil) {
			t.Fatalf("run %d: kept results came back", i)
		}
		for j := range 2 {
			r, err := e.Result(j)
			if err != nil {
				t.Fatal(err)
			}
			if msg := diff(r, interp.FromFloats(a.Type, w[j]), 0); msg != "" {
				t.Errorf("run %d: result %d: %s", i, j, msg)
			}
		}
	}
}
