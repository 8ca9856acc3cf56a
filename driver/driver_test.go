package driver

import (
	"math"
	"os"
	"testing"

	"xlc/ir"
	"xlc/parser"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// stepper runs a train step on the interpreter repeatedly, feeding state back.
type stepper struct {
	t     *testing.T
	f     *ir.Func
	exe   runtime.Executable
	state map[string]*interp.Tensor
	data  *runtime.Dataset
}

func newStepper(t *testing.T, m *Model) *stepper {
	state, err := runtime.FreshState(m.Step, 1)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := runtime.Interp{}.Load(m.Step)
	if err != nil {
		t.Fatal(err)
	}
	return &stepper{t: t, f: m.Step, exe: exe, state: state, data: runtime.BuiltinText()}
}

// step runs one step and returns its scalar outputs.
func (s *stepper) step(i int64) map[string]float64 {
	s.t.Helper()
	m, err := runtime.RunStep(s.exe, s.f, s.data, 1, i, s.state)
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

const overflowModel = `model m {
  input x: f32[2]
  param w: f32[2] = ones
  output loss = sum(w * 1e35) + sum(x) * 0.0
}

train {
  optimizer = "sgd"
  lr = 1e-36
  clip = 0.0
  loss_scale = "dynamic"
  scale_interval = 3
}
`

// TestDynamicLossScale checks that a non-finite scaled gradient skips the
// update and halves the scale, and that scale_interval finite steps double
// it. The gradient is 1e35, so scales above 3.4e3 overflow f32.
func TestDynamicLossScale(t *testing.T) {
	m, err := Compile("m.xl", []byte(overflowModel), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStepper(t, m)
	scale := 32768.0
	w := 1.0
	good := 0
	for i := int64(0); i < 12; i++ {
		out := s.step(i)
		finite := 1e35*scale < math.MaxFloat32
		if out["finite"] != map[bool]float64{true: 1, false: 0}[finite] {
			t.Fatalf("step %d: finite = %v at scale %v", i, out["finite"], scale)
		}
		if finite {
			w -= float64(float32(1e-36 * 1e35))
			w = float64(float32(w))
			good++
			if good == 3 {
				scale, good = scale*2, 0
			}
		} else {
			scale, good = scale/2, 0
		}
		if got := s.state["loss_scale"].Scalar(); got != scale {
			t.Fatalf("step %d: loss_scale %v, want %v", i, got, scale)
		}
		if got := s.state["w"].F[0]; math.Abs(got-w) > 1e-6 {
			t.Fatalf("step %d: w %v, want %v (a skipped step must not move it)", i, got, w)
		}
		if got := s.state["step"].I[0]; got != i+1 {
			t.Fatalf("step counter %d after step %d", got, i)
		}
	}
}

// TestTrainingReducesLoss trains a tiny GPT and BERT for a few steps with
// every optimizer, every combiner and each penalty; the loss must fall.
func TestTrainingReducesLoss(t *testing.T) {
	tiny := []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "16"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "8"}}
	cases := []struct {
		model string
		extra []parser.Define
	}{
		{"gpt", []parser.Define{{Key: "lr", Value: "0.01"}}},
		{"gpt", []parser.Define{{Key: "optimizer", Value: "sgd"}, {Key: "lr", Value: "0.5"}, {Key: "momentum", Value: "0.9"}, {Key: "nesterov", Value: "true"}}},
		{"gpt", []parser.Define{{Key: "optimizer", Value: "eg"}, {Key: "lr", Value: "0.5"}}},
		{"gpt", []parser.Define{{Key: "optimizer", Value: "eg_adaptive"}, {Key: "lr", Value: "0.1"}}},
		{"gpt", []parser.Define{{Key: "optimizer", Value: "eg_adam"}, {Key: "lr", Value: "0.01"}}},
		{"gpt", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "loss_scale", Value: "dynamic"}}},
		{"gpt", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "input_penalty", Value: "1.0"}, {Key: "input_penalty_on", Value: "logits"}}},
		{"gpt", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "param_penalty", Value: "0.1"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "sum"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "initial"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "realtime"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "gradnorm"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "minnorm"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "main_aux"}, {Key: "losses", Value: "mlm_loss,cls_loss"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "minnorm"}, {Key: "combine_on", Value: "encoded"}, {Key: "loss_scale", Value: "dynamic"}}},
		{"bert", []parser.Define{{Key: "lr", Value: "0.01"}, {Key: "combiner", Value: "gradnorm"}, {Key: "combine_on", Value: "encoded"}}},
	}
	for _, c := range cases {
		path := "../models/" + c.model + ".xl"
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Compile(path, src, append(append([]parser.Define{}, tiny...), c.extra...), Options{})
		if err != nil {
			t.Fatalf("%s %v: %v", c.model, c.extra, err)
		}
		s := newStepper(t, m)
		first, last := 0.0, 0.0
		const steps, window = 40, 8
		for i := int64(0); i < steps; i++ {
			out := s.step(i)
			loss := 0.0
			for _, n := range m.Train.Losses {
				loss += out[n]
			}
			if len(m.Train.Losses) == 0 {
				loss = out["loss"] + out["mlm_loss"] + out["cls_loss"]
			}
			if math.IsNaN(loss) {
				t.Fatalf("%s %v: NaN loss at step %d", c.model, c.extra, i)
			}
			if i < window {
				first += loss / window
			}
			if i >= steps-window {
				last += loss / window
			}
		}
		if !(last < first-0.05) {
			t.Errorf("%s %v: mean loss %.4f over the first %d steps, %.4f over the last: want a decrease", c.model, c.extra, first, window, last)
		}
	}
}

// BenchmarkTrainStepDeep builds the whole train step (and the evaluation
// forward pass) of a 1,000-layer DeepNorm GPT with d=64.
func BenchmarkTrainStepDeep(b *testing.B) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		b.Fatal(err)
	}
	defs := []parser.Define{{Key: "layers", Value: "1000"}, {Key: "norm", Value: "deepnorm"}, {Key: "d", Value: "64"}}
	for i := 0; i < b.N; i++ {
		if _, err := Compile("gpt.xl", src, defs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

const gatedModel = `model m {
  input x: f32[2]
  param w: f32[2] = ones
  param v: f32[2] = ones
  output a_loss = sum(w * 1e35) + sum(x) * 0.0
  output b_loss = sum(v * v)
}

train {
  optimizer = "adamw"
  lr = 1e-3
  clip = 0.0
  loss_scale = "dynamic"
  combiner = "initial"
}
`

// TestSkippedStepKeepsAllState checks that a non-finite step leaves every
// parameter and every optimizer and combiner state bit-identical (AdamW's
// moments and count, the initial losses), while the step counter advances
// and the scale halves; the first finite step then changes them.
func TestSkippedStepKeepsAllState(t *testing.T) {
	m, err := Compile("m.xl", []byte(gatedModel), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newStepper(t, m)
	snapshot := func() map[string][]float64 {
		out := map[string][]float64{}
		for k, v := range s.state {
			if k == "step" || k == "loss_scale" || k == "loss_scale.good" || k == "loss_scale.skipped" {
				continue
			}
			vals := make([]float64, v.Len())
			for i := range vals {
				vals[i] = v.At(i)
			}
			out[k] = vals
		}
		return out
	}
	before := snapshot()
	for _, k := range []string{"adamw.m.w", "adamw.v.v", "adamw.t", "combine.initial.0", "combine.initial.1", "w", "v"} {
		if before[k] == nil {
			t.Fatalf("no state %s (have %v)", k, before)
		}
	}
	for i := int64(0); ; i++ {
		out := s.step(i)
		after := snapshot()
		changed := ""
		for k, vals := range after {
			for j := range vals {
				if math.Float64bits(vals[j]) != math.Float64bits(before[k][j]) {
					changed = k
				}
			}
		}
		if out["finite"] == 0 {
			if changed != "" {
				t.Fatalf("step %d was skipped but %s changed", i, changed)
			}
			if s.state["step"].I[0] != i+1 {
				t.Fatalf("the step counter did not advance on a skipped step")
			}
			if n := s.state["loss_scale.skipped"].I[0]; n != i+1 || out["skipped"] != float64(n) {
				t.Fatalf("step %d skipped: loss_scale.skipped %d, metric %v, want %d", i, n, out["skipped"], i+1)
			}
			continue
		}
		if i == 0 || changed == "" {
			t.Fatalf("step %d: finite=%v, changed %q: want a few skipped steps, then an update", i, out["finite"], changed)
		}
		break
	}
}
