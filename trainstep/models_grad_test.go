package trainstep

import (
	"math/rand/v2"
	"testing"

	"xlc/ir"
	"xlc/parser"
	"xlc/runtime/interp"
)

// TestGradTransformers checks the loss gradients of tiny GPTs (each norm
// placement) and BERT, retyped to f64, against finite differences for every
// parameter: attention, masking, layer norm, GELU, tied embeddings and
// cross-entropy by gather, all at once.
func TestGradTransformers(t *testing.T) {
	tiny := []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "4"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "3"}, {Key: "batch", Value: "2"}, {Key: "vocab", Value: "5"}}
	cases := []struct {
		model, loss string
		extra       []parser.Define
	}{
		{"gpt", "loss", []parser.Define{{Key: "norm", Value: "pre"}}},
		{"gpt", "loss", []parser.Define{{Key: "norm", Value: "post"}}},
		{"gpt", "loss", []parser.Define{{Key: "norm", Value: "deepnorm"}, {Key: "tie", Value: "false"}}},
		{"bert", "mlm_loss", []parser.Define{{Key: "classes", Value: "3"}}},
		{"bert", "cls_loss", []parser.Define{{Key: "classes", Value: "3"}}},
	}
	for _, c := range cases {
		f := f64Program(t, "../models/"+c.model+".xl", append(append([]parser.Define{}, tiny...), c.extra...))
		loss := f.Result(c.loss)
		r := rand.New(rand.NewPCG(3, 4))
		var wrt []*ir.Value
		var in []*interp.Tensor
		for _, p := range f.Params {
			switch {
			case p.Type.DType.IsFloat():
				in = append(in, randFloats(r, p.Type, uniformIn(-0.5, 0.5)))
				if p.Role() == "param" {
					wrt = append(wrt, p)
				}
			default:
				hi := 2
				if rg := p.Attrs.Ints("range"); len(rg) == 2 {
					hi = rg[1]
				}
				v := make([]int64, p.Type.Shape.NumElements())
				for i := range v {
					v[i] = int64(r.IntN(hi))
					if p.Type.DType == ir.Bool && i%3 == 0 {
						v[i] = 1 // keep some keys and masked positions
					}
				}
				in = append(in, interp.FromInts(p.Type, v))
			}
		}
		checkGrads(t, c.model+" "+c.loss, f, loss, wrt, in, fdStep, fdTol)
	}
}
