package cpu

import (
	"math"
	"os"
	"testing"
	"time"

	"xlc/driver"
	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
	"xlc/trainstep"
)

// tinyGPT is the small GPT configuration of the model tests.
var tinyGPT = []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "16"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "2"}}

// tinyGPTModel compiles models/gpt.xl in the tinyGPT configuration.
func tinyGPTModel(t testing.TB, opt driver.Options) *driver.Model {
	t.Helper()
	path := "../../models/gpt.xl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := driver.Compile(path, src, tinyGPT, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func forward(t *testing.T, model string, defines []parser.Define) *ir.Func {
	t.Helper()
	path := "../../models/" + model + ".xl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := parser.Compile(path, src, defines, trainstep.ConfigKeys()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Run(prog.Func, passes.Options{}); err != nil {
		t.Fatal(err)
	}
	return prog.Func
}

// TestModelForward runs the whole forward pass of the MLP and of a tiny GPT
// through the cpu backend and the interpreter: every result within 1e-4
// relative.
func TestModelForward(t *testing.T) {
	needLLVM(t)
	for _, c := range []struct {
		model   string
		defines []parser.Define
	}{
		{"mlp", nil},
		{"gpt", tinyGPT},
	} {
		t.Run(c.model, func(t *testing.T) {
			f := forward(t, c.model, c.defines)
			args, err := runtime.SampleArgs(f, 1, 2)
			if err != nil {
				t.Fatal(err)
			}
			want, got := runBoth(t, f, args)
			for i, r := range f.Results {
				if msg := diff(got[i], want[i], 1e-4); msg != "" {
					t.Errorf("%s: %s", f.ResultNames[i], msg)
				} else if r.Type.Rank() == 0 {
					t.Logf("%s = %v (interp %v)", f.ResultNames[i], got[i].Scalar(), want[i].Scalar())
				}
			}
		})
	}
}

// TestTrainStep runs three train steps of the tiny GPT with the cpu backend
// and with the interpreter, each feeding its own updated parameters and
// state back: the losses agree within 1e-4 relative at every step.
func TestTrainStep(t *testing.T) {
	needLLVM(t)
	f := tinyGPTModel(t, driver.Options{}).Step
	start := time.Now()
	x := load(t, f)
	t.Logf("train step: %d instructions, loaded in %v", len(f.Body), time.Since(start))
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
		t.Logf("step %d: cpu %v, interp %v", step, losses[1], losses[0])
	}
}
