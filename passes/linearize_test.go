package passes_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"xlc/ir"
	"xlc/passes"
	"xlc/runtime/interp"
	"xlc/trainstep"
)

// TestLinearizeActivations builds y = act(x·w1)·w2 for activations whose
// backward autodiff expands op by op, takes the gradients of Σy² (and,
// with a penalty, of Σy² + ‖∂/∂x‖², a double backward), and checks in f64
// that the pipeline with linearize computes what it does without, to
// within a few roundings, and that linearize rewrote the backward where
// that frees the pre-activation (not with the penalty).
func TestLinearizeActivations(t *testing.T) {
	acts := map[string]func(b *ir.Builder, h *ir.Value) *ir.Value{
		"gelu_tanh": func(b *ir.Builder, h *ir.Value) *ir.Value {
			c := func(v float64) *ir.Value { return b.Constant(h.Type, v) }
			h3 := b.Binary(ir.OpMul, b.Binary(ir.OpMul, b.Binary(ir.OpMul, c(0.044715), h), h), h)
			th := b.Unary(ir.OpTanh, b.Binary(ir.OpMul, c(0.7978845608028654), b.Binary(ir.OpAdd, h, h3)))
			return b.Binary(ir.OpMul, b.Binary(ir.OpMul, c(0.5), h), b.Binary(ir.OpAdd, c(1), th))
		},
		"gelu_erf": func(b *ir.Builder, h *ir.Value) *ir.Value {
			c := func(v float64) *ir.Value { return b.Constant(h.Type, v) }
			e := b.Unary(ir.OpErf, b.Binary(ir.OpMul, h, c(0.7071067811865476)))
			return b.Binary(ir.OpMul, b.Binary(ir.OpMul, c(0.5), h), b.Binary(ir.OpAdd, c(1), e))
		},
		"silu": func(b *ir.Builder, h *ir.Value) *ir.Value {
			c := func(v float64) *ir.Value { return b.Constant(h.Type, v) }
			return b.Binary(ir.OpDiv, h, b.Binary(ir.OpAdd, c(1), b.Unary(ir.OpExp, b.Unary(ir.OpNeg, h))))
		},
	}
	for name, act := range acts {
		for _, penalty := range []bool{false, true} {
			f := activationStep(t, act, penalty)
			without := clonePipeline(t, f, false)
			with := clonePipeline(t, f, true)
			// The double backward reads h again (the second derivative's
			// terms), so there J would only add a tensor.
			lin, _ := passes.Lookup("linearize")
			if changed, err := lin(clonePipeline(t, f, false)); err != nil || changed == penalty {
				t.Errorf("%s (penalty %v): linearize changed the step: %v, want %v (%v)", name, penalty, changed, !penalty, err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			var in []*interp.Tensor
			for _, p := range f.Params {
				v := make([]float64, p.Type.Shape.NumElements())
				for i := range v {
					v[i] = 2*r.Float64() - 1
				}
				in = append(in, interp.FromFloats(p.Type, v))
			}
			want, err := interp.Run(without, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := interp.Run(with, in)
			if err != nil {
				t.Fatal(err)
			}
			for k := range want {
				for i, w := range want[k].F {
					if g := got[k].F[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) {
						t.Fatalf("%s (penalty %v): result %d[%d]: %v with linearize, %v without", name, penalty, k, i, g, w)
					}
				}
			}
		}
	}
}

// activationStep is y = act(x·w1)·w2 and the gradients of Σy² (plus
// Σ(∂Σy²/∂x)² with penalty) with respect to x, w1 and w2, in f64.
func activationStep(t *testing.T, act func(b *ir.Builder, h *ir.Value) *ir.Value, penalty bool) *ir.Func {
	t.Helper()
	b := ir.NewBuilder("step")
	x := b.Param("x", ir.T(ir.F64, 8, 16), nil)
	w1 := b.Param("w1", ir.T(ir.F64, 16, 32), nil)
	w2 := b.Param("w2", ir.T(ir.F64, 32, 8), nil)
	h := b.Dot(x, w1, nil, nil, []int{1}, []int{0})
	y := b.Dot(act(b, h), w2, nil, nil, []int{1}, []int{0})
	loss := b.Reduce(ir.OpReduceSum, b.Binary(ir.OpMul, y, y), []int{0, 1})
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	f := b.F
	if penalty {
		gx, err := trainstep.Grad(f, loss, []*ir.Value{x})
		if err != nil {
			t.Fatal(err)
		}
		sq := &ir.Value{Op: ir.OpMul, Args: []*ir.Value{gx[0], gx[0]}, Type: gx[0].Type}
		sum := &ir.Value{Op: ir.OpReduceSum, Args: []*ir.Value{sq}, Type: loss.Type, Attrs: ir.Attrs{}.Set("axes", []int{0, 1})}
		total := &ir.Value{Op: ir.OpAdd, Args: []*ir.Value{loss, sum}, Type: loss.Type}
		f.Body = append(f.Body, sq, sum, total)
		loss = total
	}
	grads, err := trainstep.Grad(f, loss, []*ir.Value{x, w1, w2})
	if err != nil {
		t.Fatal(err)
	}
	f.Results = append([]*ir.Value{loss}, grads...)
	f.ResultNames = nil
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	return f
}

// clonePipeline is a copy of f after the default pipeline, with or without
// linearize.
func clonePipeline(t *testing.T, f *ir.Func, linearize bool) *ir.Func {
	t.Helper()
	g, err := ir.ParseFunc(f.String())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range passes.Names() {
		if n != "layout" && n != "precision" && n != "fusion" && (linearize || n != "linearize") {
			names = append(names, n)
		}
	}
	if !linearize && slices.Contains(names, "linearize") {
		t.Fatal("linearize not left out")
	}
	if err := passes.Run(g, passes.Options{Verify: true, Check: true, Passes: names}); err != nil {
		t.Fatal(err)
	}
	return g
}
