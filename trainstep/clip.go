package trainstep

import "xlc/ir"

// clipNormEps is added to the norm before dividing, as in PyTorch's
// clip_grad_norm_.
const clipNormEps = 1e-6

// ClipGlobalNorm scales grads by min(1, clip/(‖g‖ + 1e-6)), where ‖g‖ is the
// global L2 norm over all grads (summed in f32 whatever their dtype), and
// returns the clipped grads (each in its own dtype) and the unclipped norm
// (f32[]). When clip <= 0 the grads are returned unchanged and the norm is
// still computed; with no grads the norm is 0.
func ClipGlobalNorm(b *ir.Builder, grads []*ir.Value, clip float64) ([]*ir.Value, *ir.Value) {
	g := optGraph{b}
	if len(grads) == 0 {
		return grads, g.c(0)
	}
	norm := g.sqrt(totalSum(b, len(grads), ir.F32, func(j int) *ir.Value {
		x := g.f32(grads[j])
		return g.mul(x, x)
	}))
	if clip <= 0 {
		return grads, norm
	}
	scale := g.min(g.c(1), g.div(g.c(clip), g.add(norm, g.c(clipNormEps))))
	out := make([]*ir.Value, len(grads))
	for i, gr := range grads {
		out[i] = g.mul(gr, g.bc(g.to(scale, gr.Type.DType), gr.Type.Shape))
	}
	return out, norm
}
