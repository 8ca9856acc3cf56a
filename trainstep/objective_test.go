package trainstep

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

const twoTaskModel = `func @forward(%x: f32[2,3] {role=input}, %w: f32[3,2] {init=normal, role=param, scale=0.5}) -> (b_loss: f32[], a_loss: f32[]) {
  %0 = dot %x, %w {batch=[[],[]], contract=[[1],[0]]} : f32[2,2]
  %1 = tanh %0 : f32[2,2]
  %2 = reduce_sum %1 {axes=[0,1]} : f32[]
  %3 = mul %0, %0 : f32[2,2]
  %4 = reduce_sum %3 {axes=[0,1]} : f32[]
  return %2, %4
}
`

// TestObjective checks that a train step with several tasks reports the
// combined objective Σ w_i·L_i with the weights it applied, for a combiner
// whose weights depend on the step's gradients, and that LossNames lists
// the task losses, in result order, and then the objective; a one-task
// step has no objective and LossNames gives its loss alone.
func TestObjective(t *testing.T) {
	for _, c := range []struct {
		combiner, combineOn string
	}{{"gradnorm", ""}, {"sum", ""}, {"gradnorm", "h"}} {
		f, err := ir.ParseFunc(twoTaskModel)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Combiner, cfg.CombineOn = c.combiner, c.combineOn
		if c.combiner == "sum" {
			cfg.Weights = []float64{2, 0.5}
		}
		if err := Build(f, map[string]*ir.Value{"h": f.Body[0]}, &cfg); err != nil {
			t.Fatal(err)
		}
		if got, want := LossNames(f), []string{"b_loss", "a_loss", "objective"}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: LossNames %q, want %q", c.combiner, got, want)
		}
		in := make([]*interp.Tensor, len(f.Params))
		for i, p := range f.Params {
			if r := p.Role(); r == "input" || r == "param" {
				in[i] = randFloats(rand.New(rand.NewPCG(uint64(i), 1)), p.Type, uniformIn(-1, 1))
			} else {
				in[i] = interp.NewTensor(p.Type)
			}
		}
		out, err := interp.Run(f, in)
		if err != nil {
			t.Fatal(err)
		}
		get := func(name string) float64 {
			for i, n := range f.ResultNames {
				if n == name {
					return out[i].Scalar()
				}
			}
			t.Fatalf("%s: no result %s", c.combiner, name)
			return 0
		}
		want := get("weight.b_loss")*get("b_loss") + get("weight.a_loss")*get("a_loss")
		if got := get("objective"); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
			t.Errorf("%s on %q: objective %v, want Σ w·L = %v", c.combiner, c.combineOn, got, want)
		}
	}
	f, err := ir.ParseFunc(twoTaskModel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Losses = []string{"a_loss"} // b_loss is then another output
	if err := Build(f, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if f.Result("objective") != nil {
		t.Error("one task: the step reports an objective")
	}
	if got := LossNames(f); !reflect.DeepEqual(got, []string{"a_loss"}) {
		t.Errorf("one task: LossNames %q", got)
	}
}

// TestOutputNamedLikeMetric checks that a model output with the name of a
// train-step metric is refused rather than returned twice.
func TestOutputNamedLikeMetric(t *testing.T) {
	f, err := ir.ParseFunc(strings.Replace(twoTaskModel, "b_loss:", "lr:", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	err = Build(f, nil, &cfg)
	if err == nil || err.Error() != "output lr has the name of a train-step metric" {
		t.Errorf("have %v", err)
	}
}
