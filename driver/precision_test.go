package driver

import (
	"os"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime/cpu"
)

// TestPrecisionSetting checks the precision train setting: bf16 and f16
// give every matrix product of GPT's train step and forward pass half
// operands and an f32 result, f32 none; f16 turns on dynamic loss scaling
// and says so once.
func TestPrecisionSetting(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f32", "bf16", "f16"} {
		var log strings.Builder
		defs := []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "16"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "2"}, {Key: "precision", Value: p}}
		m, err := Compile("gpt.xl", src, defs, Options{Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*ir.Func{m.Step, m.Eval} {
			half, full := 0, 0
			for _, v := range f.Body {
				if v.Op != ir.OpDot || v.Type.Rank() < 2 {
					continue
				}
				if a := v.Args[0].Type.DType; a == ir.F32 {
					full++
				} else if a.String() == p && v.Attrs.String("out") == "f32" && v.Type.DType == ir.F32 {
					half++
				}
			}
			if p == "f32" && half != 0 || p != "f32" && (half == 0 || full != 0) {
				t.Errorf("precision %s: @%s has %d half and %d f32 matrix products", p, f.Name, half, full)
			}
		}
		note := strings.Count(log.String(), "loss_scale dynamic")
		if want := map[bool]int{true: 1, false: 0}[p == "f16"]; note != want || (p == "f16") != (m.Train.LossScale == "dynamic") {
			t.Errorf("precision %s: loss_scale %s, %d notes in %q", p, m.Train.LossScale, note, log.String())
		}
	}
}

// TestDotsStayFast compiles GPT and BERT at the kernel models' size in f32
// and in each half type for CPU and GPU kernel targets: no dot kernel may
// fall back to a slow lowering (the naive dot, or elemental), but the
// CPU's products below codegen.MinFastDotFlops (BERT's classifier). A
// half-precision epilogue (a pre-activation kept in half) once sent its
// dot to the naive loop, ten times slower, and the GPU's transposed
// products (attention's P·V and gradients) went elemental, with every
// loss still right.
func TestDotsStayFast(t *testing.T) {
	slow := func(model, p, target string) int {
		c := modelCase{model, model, defs("layers", "1", "d", "64", "heads", "2", "seq", "32", "batch", "2", "precision", p)}
		tg, err := codegen.TargetFor(target)
		if err != nil {
			t.Fatal(err)
		}
		m := compileFusedAttention(t, c)
		prog, err := codegen.Compile(m.Step, codegen.Options{Target: tg})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range prog.Kernels {
			v := m.Step.Body[k.Instr]
			d := v
			if v.Op == ir.OpFusion && v.Attrs.String("kind") == ir.FusionDot {
				d = dotOf(v.Callee)
			}
			if d.Op != ir.OpDot || k.Lowering != codegen.LowerNaiveDot && k.Lowering != codegen.LowerElemental {
				continue
			}
			if s, err := codegen.DotSpecOf(d.Args[0].Type, d.Args[1].Type, d.Attrs); err == nil && s.Flops() < codegen.MinFastDotFlops && tg.MR > 0 {
				continue // the CPU's naive dot, by design
			}
			n++
		}
		return n
	}
	for _, model := range []string{"gpt", "bert"} {
		for _, target := range []string{"x86-64-v3", "x86-64-v4", "sm_80"} {
			for _, p := range []string{"f32", "bf16", "f16"} {
				if n := slow(model, p, target); n > 0 {
					t.Errorf("%s for %s, precision %s: %d dot kernels on the naive dot or elemental", model, target, p, n)
				}
			}
		}
	}
}

// dotOf is the dot of a dot fusion's callee.
func dotOf(c *ir.Func) *ir.Value {
	for _, v := range c.Body {
		if v.Op == ir.OpDot {
			return v
		}
	}
	return c.Results[0]
}

// TestRematDefault checks remat's default, auto: a half-precision step
// recomputes large activations, planning less memory than remat =
// "attention" does, and says so under -d precision; an f32 step keeps
// them. The plans are of the step as the cpu backend fuses it: unfused,
// every cheap value a GELU's backward reads is a buffer, and linearize,
// which remat's recomputed activations keep from applying, frees them
// all.
func TestRematDefault(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	peak := func(p, remat string) (int, string) {
		defs := []parser.Define{{Key: "d", Value: "64"}, {Key: "seq", Value: "64"}, {Key: "batch", Value: "16"}, {Key: "precision", Value: p}}
		if remat != "" {
			defs = append(defs, parser.Define{Key: "remat", Value: remat})
		}
		var log strings.Builder
		opt := cpu.Backend{}.Passes()
		opt.PrecisionLog = &log
		m, err := Compile("gpt.xl", src, defs, Options{Passes: opt})
		if err != nil {
			t.Fatal(err)
		}
		plan, err := passes.PlanBuffers(m.Step)
		if err != nil {
			t.Fatal(err)
		}
		return plan.PeakBytes, log.String()
	}
	for _, p := range []string{"f32", "bf16", "f16"} {
		auto, log := peak(p, "")
		keep, _ := peak(p, "attention")
		recompute, _ := peak(p, "activations")
		want := recompute
		if p == "f32" {
			want = keep
		}
		if auto != want || recompute >= keep {
			t.Errorf("precision %s: planned %d bytes by default, %d with remat attention, %d with activations", p, auto, keep, recompute)
		}
		if said := strings.Contains(log, "remat auto: precision "+p+" recomputes"); said != (p != "f32") {
			t.Errorf("precision %s: -d precision says remat auto recomputes: %v", p, said)
		}
	}
}
