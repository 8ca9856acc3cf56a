package backendtest

import (
	"math"
	"testing"

	"xlc/driver"
	"xlc/ir"
	"xlc/models"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
	"xlc/trainstep"
)

// TinyGPT is the small GPT configuration of the model tests.
var TinyGPT = []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "16"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "2"}}

// Model compiles the shipped model file name (models.FS: gpt, bert, mlp)
// with defines and opt (driver.Compile).
func Model(t testing.TB, name string, defines []parser.Define, opt driver.Options) *driver.Model {
	t.Helper()
	src, err := models.FS.ReadFile(name + ".xl")
	if err != nil {
		t.Fatal(err)
	}
	m, err := driver.Compile("models/"+name+".xl", src, defines, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Forward is the shipped model name's forward pass after the pass
// pipeline's defaults (no fusion).
func Forward(t testing.TB, name string, defines []parser.Define) *ir.Func {
	t.Helper()
	src, err := models.FS.ReadFile(name + ".xl")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := parser.Compile("models/"+name+".xl", src, defines, trainstep.ConfigKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Run(prog.Func, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	return prog.Func
}

// ModelForward runs the whole forward pass of the MLP and of a tiny GPT on
// the backend and the interpreter: every result within 1e-4 relative.
func ModelForward(t *testing.T, load Loader) {
	for _, c := range []struct {
		model   string
		defines []parser.Define
	}{
		{"mlp", nil},
		{"gpt", TinyGPT},
	} {
		t.Run(c.model, func(t *testing.T) {
			f := Forward(t, c.model, c.defines)
			args, err := runtime.SampleArgs(f, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			want, got := RunBoth(t, load, f, args)
			for i, r := range f.Results {
				if msg := Diff(got[i], want[i], 1e-4); msg != "" {
					t.Errorf("%s: %s", f.ResultNames[i], msg)
				} else if r.Type.Rank() == 0 {
					t.Logf("%s = %v (interp %v)", f.ResultNames[i], got[i].Scalar(), want[i].Scalar())
				}
			}
		})
	}
}

// TrainStep runs three train steps of f on the backend and on the
// interpreter, each feeding its own updated parameters and state back:
// the losses agree within 1e-4 relative at every step.
func TrainStep(t *testing.T, load Loader, f *ir.Func) {
	x := load(t, f)
	ref, err := runtime.Interp{}.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	exes := [2]runtime.Executable{ref, x}
	var states [2]map[string]*interp.Tensor
	for b := range states {
		if states[b], err = runtime.FreshState(f, 1); err != nil {
			t.Fatal(err)
		}
	}
	data := runtime.BuiltinText()
	for step := int64(0); step < 3; step++ {
		var losses [2]map[string]float64
		for b := range 2 {
			if losses[b], err = runtime.RunStep(exes[b], f, data, 1, step, states[b]); err != nil {
				t.Fatal(err)
			}
		}
		for name, w := range losses[0] {
			g := losses[1][name]
			if !(math.Abs(g-w) <= 1e-4*math.Abs(w)) && !(math.IsNaN(g) && math.IsNaN(w)) && g != w {
				t.Errorf("step %d: %s = %v, interp %v", step, name, g, w)
			}
		}
		t.Logf("step %d: backend %v, interp %v", step, losses[1], losses[0])
	}
}

// ResidentState trains f 4 steps with the state copied in and out of every
// step and 4 with it kept in the executable (Stepper, as Train and Bench
// run): the losses and, after Sync, every state tensor are bit for bit the
// same.
func ResidentState(t *testing.T, load Loader, f *ir.Func) {
	var err error
	var states [2]map[string]*interp.Tensor
	var steppers [2]*runtime.Stepper
	for b := range 2 {
		exe := load(t, f)
		if _, ok := exe.(runtime.Resident); !ok {
			t.Fatalf("@%s: the executable is not runtime.Resident", f.Name)
		}
		if states[b], err = runtime.FreshState(f, 1); err != nil {
			t.Fatal(err)
		}
		steppers[b] = runtime.NewStepper(exe, f, states[b], b == 1)
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
		if msg := Diff(states[1][name], w, 0); msg != "" {
			t.Errorf("state %s: %s", name, msg)
		}
	}
}

// RunKeptSwap keeps two parameters whose results are each other's old
// values: each is fed back from the buffer the other overwrites.
func RunKeptSwap(t *testing.T, load Loader) {
	f, err := ir.ParseFunc(`func @f(%a: f32[3] {role=state}, %b: f32[3] {role=state}, %x: f32[3]) -> (a: f32[3], b: f32[3], s: f32[3]) {
  %0 = add %a, %x : f32[3]
  return %b, %a, %0
}
`)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := load(t, f).(runtime.Resident)
	if !ok {
		t.Fatal("the executable is not runtime.Resident")
	}
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
			out, err = e.(runtime.Executable).Run([]*interp.Tensor{a, b, x})
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
			if msg := Diff(r, interp.FromFloats(a.Type, w[j]), 0); msg != "" {
				t.Errorf("run %d: result %d: %s", i, j, msg)
			}
		}
	}
}
