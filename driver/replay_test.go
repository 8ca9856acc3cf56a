package driver

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"xlc/codegen"
	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

var updateReplay = flag.Bool("update", false, "rewrite testdata/replay/*.ir")

// modelCase is a model of models/ in one configuration.
type modelCase struct {
	name, model string
	defines     []parser.Define
}

// compileFusedAttention compiles c with fusion on and attention and its
// backward as one kernel each, as the cpu and cuda backends do.
func compileFusedAttention(t *testing.T, c modelCase) *Model {
	t.Helper()
	return compileCase(t, c, passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel, Attention: true})
}

func compileCase(t *testing.T, c modelCase, opt passes.Options) *Model {
	t.Helper()
	path := "../models/" + c.model + ".xl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Compile(path, src, c.defines, Options{Passes: opt})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// replayModels are the models whose final IR testdata/replay pins, each in
// a small configuration.
var replayModels = []modelCase{
	{"gpt_pre", "gpt", defs("layers", "1", "d", "16", "heads", "2", "seq", "8", "batch", "2")},
	{"gpt_deepnorm_tied_tanh", "gpt", defs("layers", "2", "d", "16", "heads", "2", "seq", "8", "batch", "2", "norm", "deepnorm", "tie", "true", "gelu_approx", "tanh")},
	{"bert", "bert", defs("layers", "1", "d", "16", "heads", "2", "seq", "8", "batch", "2")},
	{"mlp", "mlp", nil},
}

// TestReplay pins every model's final IR — the train step and the forward
// pass after the whole pipeline with fusion, as the cpu backend gets them —
// in testdata/replay/<name>.{step,forward}.ir (go test ./driver -update
// rewrites them; review the diff: it is what a pass change did to real
// models). Each golden is then replayed: parsed back and run on the
// interpreter, it gives bit for bit what the freshly compiled function
// gives.
func TestReplay(t *testing.T) {
	for _, c := range replayModels {
		t.Run(c.name, func(t *testing.T) {
			m := compileFusedAttention(t, c)
			for _, f := range []*ir.Func{m.Step, m.Eval} {
				// Every reduce kernel the fusion pass forms is one the
				// CPU's row lowering takes (no per-element recomputation).
				prog, err := codegen.Compile(f, codegen.Options{CPU: "znver4"})
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range prog.Warnings {
					t.Errorf("codegen: %s", w)
				}
				kind := "step"
				if f == m.Eval {
					kind = "forward"
				}
				golden := filepath.Join("../testdata/replay", c.name+"."+kind+".ir")
				text := f.String()
				if *updateReplay {
					if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (go test ./driver -update writes it)", err)
				}
				if string(want) != text {
					t.Errorf("%s: the final IR differs from %s (go test ./driver -update rewrites it; review the diff)", kind, golden)
					continue
				}
				g, err := ir.ParseFunc(string(want))
				if err != nil {
					t.Fatalf("%s: %v", golden, err)
				}
				if err := g.Verify(); err != nil {
					t.Fatalf("%s: %v", golden, err)
				}
				args, err := runtime.SampleArgs(f, 1, 2)
				if err != nil {
					t.Fatal(err)
				}
				got, err := interp.Run(g, args)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := interp.Run(f, args)
				if err != nil {
					t.Fatal(err)
				}
				for i := range ref {
					if !got[i].Identical(ref[i]) {
						t.Errorf("%s: result %d (%s) differs after replay", golden, i, f.ResultNames[i])
					}
				}
			}
		})
	}
}
