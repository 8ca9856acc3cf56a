package trainstep

import (
	"math"
	"math/rand/v2"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

const penaltyModel = `func @forward(%x: f64[2,3] {role=input}, %w1: f64[3,4] {init=normal, role=param, scale=0.5}, %w2: f64[4,2] {init=normal, role=param, scale=0.5}) -> (loss: f64[]) {
  %0 = dot %x, %w1 {batch=[[],[]], contract=[[1],[0]]} : f64[2,4]
  %1 = tanh %0 : f64[2,4]
  %2 = dot %1, %w2 {batch=[[],[]], contract=[[1],[0]]} : f64[2,2]
  %3 = exp %2 : f64[2,2]
  %4 = reduce_sum %3 {axes=[0,1]} : f64[]
  %5 = log %4 : f64[]
  return %5
}
`

// TestPenaltyGradients checks the gradients of the penalised objectives —
// input penalty on an intermediate, parameter penalty, and both — against
// finite differences in f64: they need double backward.
func TestPenaltyGradients(t *testing.T) {
	for _, c := range []struct {
		name       string
		eps, lambd float64
	}{{"input", 1.0, 0}, {"param", 0, 0.7}, {"both", 0.5, 0.3}} {
		f, err := ir.ParseFunc(penaltyModel)
		if err != nil {
			t.Fatal(err)
		}
		h := f.Body[1]
		params := []*ir.Value{f.Param("w1"), f.Param("w2")}
		cfg := DefaultConfig()
		cfg.InputPenalty, cfg.InputPenaltyOn, cfg.ParamPenalty = c.eps, "h", c.lambd
		m := &metrics{}
		obj, err := penalize(f, f.Results[0], "loss", map[string]*ir.Value{"h": h}, params, &cfg, m)
		if err != nil {
			t.Fatal(err)
		}
		if want := btoi(c.eps != 0) + btoi(c.lambd != 0); len(m.names) != want {
			t.Errorf("%s: %d penalty metrics, want %d", c.name, len(m.names), want)
		}
		r := rand.New(rand.NewPCG(7, 7))
		in := make([]*interp.Tensor, len(f.Params))
		for i, p := range f.Params {
			in[i] = randFloats(r, p.Type, uniformIn(-1, 1))
		}
		// The penalty's value: obj − loss = (ε/2)‖∇_h L‖² + (λ/2)‖∇_θ L‖².
		gh, err := Grad(f, f.Results[0], []*ir.Value{h})
		if err != nil {
			t.Fatal(err)
		}
		gp, err := Grad(f, f.Results[0], params)
		if err != nil {
			t.Fatal(err)
		}
		loss := f.Results[0]
		f.Results = append([]*ir.Value{loss, obj}, append(gh, gp...)...)
		f.ResultNames = nil
		out, err := interp.Run(f, in)
		if err != nil {
			t.Fatal(err)
		}
		sq := func(x *interp.Tensor) float64 {
			s := 0.0
			for _, v := range x.F {
				s += v * v
			}
			return s
		}
		want := c.eps/2*sq(out[2]) + c.lambd/2*(sq(out[3])+sq(out[4]))
		if got := out[1].Scalar() - out[0].Scalar(); math.Abs(got-want) > 1e-12*(1+want) {
			t.Errorf("%s: penalty %v, want %v", c.name, got, want)
		}
		f.Results = []*ir.Value{loss}
		checkGrads(t, c.name, f, obj, append(params, f.Param("x")), in, 1e-6, 1e-6)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
