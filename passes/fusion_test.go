package passes_test

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"xlc/driver"
	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// tinyGPT is the small GPT the fusion tests compile.
func tinyGPT(layers string) []parser.Define {
	return []parser.Define{{Key: "layers", Value: layers}, {Key: "d", Value: "16"}, {Key: "seq", Value: "8"}, {Key: "heads", Value: "2"}, {Key: "batch", Value: "2"}}
}

// compileGPT builds models/gpt.xl's train step and forward pass after the
// default pipeline (no fusion).
func compileGPT(t testing.TB, defs []parser.Define) *driver.Model {
	t.Helper()
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	m, err := driver.Compile("gpt.xl", src, defs, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fused runs the fusion pass alone on a copy of f (reparsed from its text).
func fused(t testing.TB, f *ir.Func, fuel int) *ir.Func {
	t.Helper()
	g, err := ir.ParseFunc(f.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Run(g, passes.Options{Verify: true, Check: true, Passes: []string{"fusion"}, FusionFuel: fuel}); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFusionKernelCounts fuses the forward pass and the train step of a tiny
// GPT, logs their kernel counts before and after, and checks what fusion
// promises: fewer kernels, valid callees, gather/scatter_add/rng alone, and
// a second run that changes nothing.
func TestFusionKernelCounts(t *testing.T) {
	m := compileGPT(t, tinyGPT("1"))
	for _, f := range []*ir.Func{m.Eval, m.Step} {
		before := passes.Kernels(f)
		g := fused(t, f, passes.UnlimitedFuel)
		after := passes.Kernels(g)
		kinds := map[string]int{}
		for _, v := range g.Body {
			if v.Op == ir.OpFusion {
				kinds[v.Attrs.String("kind")]++
			}
		}
		t.Logf("@%s: %d instructions, %d kernels before fusion; %d kernels after (%d loop, %d reduce, %d dot fusions; %d distinct fused functions)",
			f.Name, len(f.Body), before, after, kinds["loop"], kinds["reduce"], kinds["dot"], len(g.Callees()))
		if after*2 > before {
			t.Errorf("@%s: %d kernels after fusion, %d before: want at most half", f.Name, after, before)
		}
		for _, c := range g.Callees() {
			for _, v := range c.Body {
				if v.Op == ir.OpGather || v.Op == ir.OpScatterAdd || v.Op == ir.OpRng {
					t.Errorf("@%s: %v fused into @%s", f.Name, v.Op, c.Name)
				}
			}
		}
		changed, err := passes.Lookup("fusion")
		if !err {
			t.Fatal("no fusion pass")
		}
		text := g.String()
		if again, e := changed(g); e != nil || again || g.String() != text {
			t.Errorf("@%s: a second fusion run changed the function (%v, %v)", f.Name, again, e)
		}
	}
	// The forward pass, kernel by kernel: embedding gather (the embedding
	// add is cheap: the first LN and residual recompute it), per layer LN,
	// three QKV dot kernels, the scores dot (scale and causal mask as its
	// epilogue, softmax's rows after it), the PV dot writing the merged
	// heads, output projection (bias and residual), LN, MLP up (bias and
	// GELU), MLP down (bias and residual, and the next LN's rows when
	// nothing else reads the residual); then the logits dot with
	// log-softmax's rows, target index, gather and mean.
	g := fused(t, m.Eval, passes.UnlimitedFuel)
	if n := passes.Kernels(g); n != 18 {
		t.Errorf("forward: %d kernels, want 18:\n%s", n, g)
	}
}

// TestFusionKernelsPerPattern checks the kernel counts the fusion goldens
// show, one pattern at a time.
func TestFusionKernelsPerPattern(t *testing.T) {
	want := map[string]int{
		"elementwise_chain":     1,
		"softmax":               1,
		"layer_norm":            1,
		"layer_norm_saved":      2, // the layer norm with its statistics as outputs, their reader
		"dot_bias_gelu":         1,
		"cross_entropy":         4, // logits dot with its log-softmax rows, index, gather, mean
		"gather_alone":          3,
		"rng_alone":             2,
		"two_users":             2, // the add is an output of the exp chain's kernel
		"reductions_other_rows": 2,
		"outputs_optimizer":     1,
		"outputs_softmax_sums":  1,
		"siblings_columns":      1,
	}
	for name, n := range want {
		src, err := os.ReadFile("../testdata/passes/fusion/" + name + ".txtar")
		if err != nil {
			t.Fatal(err)
		}
		text := string(src)
		in := text[strings.Index(text, "-- input.ir --\n")+len("-- input.ir --\n") : strings.Index(text, "-- want.ir --")]
		f, err := ir.ParseFunc(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := passes.Kernels(fused(t, f, passes.UnlimitedFuel)); got != n {
			t.Errorf("%s: %d kernels, want %d", name, got, n)
		}
	}
}

// gptArgs binds every parameter of a tiny GPT's train step or forward pass:
// initialised weights and state, random inputs.
func gptArgs(t testing.TB, f *ir.Func) []*interp.Tensor {
	t.Helper()
	args, err := runtime.SampleArgs(f, 7, 7)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

func sameBits(t *testing.T, what string, a, b []*interp.Tensor) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d results, want %d", what, len(a), len(b))
	}
	for i := range a {
		if !a[i].Type.Equal(b[i].Type) || len(a[i].F) != len(b[i].F) || len(a[i].I) != len(b[i].I) {
			t.Fatalf("%s: result %d: %v, want %v", what, i, a[i].Type, b[i].Type)
		}
		for j := range a[i].F {
			if math.Float64bits(a[i].F[j]) != math.Float64bits(b[i].F[j]) {
				t.Fatalf("%s: result %d element %d: %v, want %v", what, i, j, a[i].F[j], b[i].F[j])
			}
		}
		for j := range a[i].I {
			if a[i].I[j] != b[i].I[j] {
				t.Fatalf("%s: result %d element %d: %v, want %v", what, i, j, a[i].I[j], b[i].I[j])
			}
		}
	}
}

// TestFusionSameResults runs a tiny GPT's train step on the interpreter
// before and after fusion, and the forward pass at several fuel limits: the
// results agree bit for bit, since the callees evaluate the same ops.
func TestFusionSameResults(t *testing.T) {
	m := compileGPT(t, tinyGPT("2"))
	for _, f := range []*ir.Func{m.Step, m.Eval} {
		args := gptArgs(t, f)
		want, err := interp.Run(f, args)
		if err != nil {
			t.Fatal(err)
		}
		fuels := []int{passes.UnlimitedFuel}
		if f == m.Eval {
			fuels = append(fuels, 0, 1, 5, 20, 60, 100)
		}
		for _, fuel := range fuels {
			g := fused(t, f, fuel)
			got, err := interp.Run(g, args)
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, f.Name+" fuel "+strconv.Itoa(fuel), got, want)
		}
	}
}

// TestFusionSharesCallees compiles GPTs of 2 and 20 layers, runs simplify
// then fusion on their train steps, and checks that both have the same
// number of distinct fused functions: identical kernels are shared, so depth
// does not add kernels to compile.
func TestFusionSharesCallees(t *testing.T) {
	var counts []int
	for _, layers := range []string{"2", "20"} {
		m := compileGPT(t, tinyGPT(layers))
		f := m.Step
		if err := passes.Run(f, passes.Options{Verify: true, Passes: []string{"simplify", "fusion"}, FusionFuel: passes.UnlimitedFuel}); err != nil {
			t.Fatal(err)
		}
		fusions := 0
		for _, v := range f.Body {
			if v.Op == ir.OpFusion {
				fusions++
			}
		}
		t.Logf("%s layers: %d fusions calling %d distinct fused functions", layers, fusions, len(f.Callees()))
		counts = append(counts, len(f.Callees()))
	}
	if counts[0] != counts[1] {
		t.Errorf("distinct fused functions: %d with 2 layers, %d with 20", counts[0], counts[1])
	}
}

// TestFusionOffByDefault checks that the default pipeline does not fuse and
// that Options.Fuse does.
func TestFusionOffByDefault(t *testing.T) {
	m := compileGPT(t, tinyGPT("1"))
	for _, v := range m.Step.Body {
		if v.Op == ir.OpFusion {
			t.Fatal("the default pipeline fused")
		}
	}
	f, err := ir.ParseFunc(m.Eval.String())
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := passes.Run(f, passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel, FusionLog: &log}); err != nil {
		t.Fatal(err)
	}
	if len(f.Callees()) == 0 || !strings.Contains(log.String(), "fuse %") {
		t.Fatalf("Options.Fuse did not fuse; log:\n%s", log.String())
	}
}

// TestFusionEveryFuel fuses a tiny GPT's train step with every fuel limit
// from none to all its decisions: each result verifies (a cheap value
// copied into one kernel but refused by another for lack of fuel stays
// computed, since that kernel reads it).
func TestFusionEveryFuel(t *testing.T) {
	f := compileGPT(t, tinyGPT("1")).Step
	var log strings.Builder
	g, err := ir.ParseFunc(f.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Run(g, passes.Options{Passes: []string{"fusion"}, FusionFuel: passes.UnlimitedFuel, FusionLog: &log}); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(log.String(), "\nfuse ") + strings.Count(log.String(), "\nduplicate ")
	for fuel := 0; fuel <= n; fuel++ {
		g, _ := ir.ParseFunc(f.String())
		if err := passes.Run(g, passes.Options{Verify: true, Passes: []string{"fusion"}, FusionFuel: fuel}); err != nil {
			t.Fatalf("fuel %d of %d: %v", fuel, n, err)
		}
	}
}

// TestFusionDeterministic fuses the tiny GPT's train step several times:
// map iteration must not reach the result (the kernel cache is keyed by the
// module's text, and sibling merges depend on the order inputs are seen).
func TestFusionDeterministic(t *testing.T) {
	m := compileGPT(t, tinyGPT("2"))
	first := fused(t, m.Step, passes.UnlimitedFuel).String()
	for range 5 {
		if got := fused(t, m.Step, passes.UnlimitedFuel).String(); got != first {
			t.Fatal("two fusions of one function differ")
		}
	}
}

// TestFusionPenaltiesOnEmbedding fuses a train step with both gradient
// penalties, the input one on the token embeddings: there a cheap value
// (the embeddings' gradient) that a scatter_add reads from memory became a
// kernel of its own before a kernel it read an output of, and the kernels
// depended on each other in a cycle. The fused step computes what the
// unfused one does.
func TestFusionPenaltiesOnEmbedding(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	tapped := strings.Replace(string(src), "embedding(wte, tokens)", `tap("emb", embedding(wte, tokens))`, 1)
	defs := append(tinyGPT("1"), parser.Define{Key: "param_penalty", Value: "0.01"},
		parser.Define{Key: "input_penalty", Value: "0.01"}, parser.Define{Key: "input_penalty_on", Value: "emb"})
	m, err := driver.Compile("gpt.xl", []byte(tapped), defs, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	args := gptArgs(t, m.Step)
	want, err := interp.Run(m.Step, args)
	if err != nil {
		t.Fatal(err)
	}
	got, err := interp.Run(fused(t, m.Step, passes.UnlimitedFuel), args)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "train_step", got, want)
}
