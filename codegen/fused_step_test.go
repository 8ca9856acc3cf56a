package codegen_test

import (
	"math"
	"os"
	"testing"

	"xlc/build"
	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
)

// TestFusedTrainStep runs three fused train steps of a small GPT (fusion
// of every kind: row kernels for softmax, layer norm and cross-entropy,
// dots with epilogues on the fast kernel) with the cpu backend and with
// the interpreter, each feeding its own state back. The losses agree
// within 1e-4 relative: everything but the fast dot rounds as the
// interpreter; the fast dot accumulates its K ≤ 4·d products in float
// rather than double (a relative error of at most about K·2⁻²⁴ ≈ 1.5e-5 of
// the sum of magnitudes per product), which the losses average over.
func TestFusedTrainStep(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	defs := []parser.Define{{Key: "layers", Value: "2"}, {Key: "d", Value: "32"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "16"}, {Key: "batch", Value: "4"}}
	m, err := build.Compile("gpt.xl", src, defs, build.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}})
	if err != nil {
		t.Fatal(err)
	}
	f := m.Step
	x, err := cpu.Backend{}.LoadExec(f)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
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
		if len(losses[0]) == 0 {
			t.Fatal("no scalar results")
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
