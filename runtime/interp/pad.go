package interp

import (
	"xlc/ir"
)

// pad places x's element j of axis i at low[i] + j*(interior[i]+1) of a zero
// tensor of type t; everything else stays zero (false for bool).
func pad(x *Tensor, low, interior []int, t ir.Type) *Tensor {
	out := NewTensor(t)
	if x.Len() == 0 {
		return out
	}
	ost := ir.RowMajorStrides(t.Shape)
	base := 0
	st := make([]int, len(ost))
	for i := range ost {
		base += low[i] * ost[i]
		st[i] = ost[i] * (interior[i] + 1)
	}
	if x.F != nil {
		scatterStrided(out.F, x.F, x.Type.Shape, base, st)
	} else {
		scatterStrided(out.I, x.I, x.Type.Shape, base, st)
	}
	return out
}

// scatterStrided is copyStrided's mirror: it stores src, a row-major array
// of shape, at dst[base + Σ idx[k]*strides[k]] for each multi-index idx.
func scatterStrided[E any](dst, src []E, shape ir.Shape, base int, strides []int) {
	moveStrided(dst, src, shape, base, strides, false)
}
