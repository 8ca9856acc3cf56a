package interp

import (
	"xlc/ir"
)

// copyStrided fills dst, a row-major array of shape, with
// src[base + Σ idx[k]*strides[k]] for each multi-index idx.
func copyStrided[E any](dst, src []E, shape ir.Shape, base int, strides []int) {
	moveStrided(dst, src, shape, base, strides, true)
}

// moveStrided walks the multi-indices idx of shape in row-major order, the
// i-th at offset base + Σ idx[k]*strides[k]: with gather it sets dst[i] from
// src at that offset (copyStrided), otherwise dst at that offset from src[i]
// (scatterStrided).
func moveStrided[E any](dst, src []E, shape ir.Shape, base int, strides []int, gather bool) {
	idx := make([]int, len(shape))
	off := base
	n := shape.NumElements()
	for i := 0; i < n; i++ {
		if gather {
			dst[i] = src[off]
		} else {
			dst[off] = src[i]
		}
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			off += strides[k]
			if idx[k] < shape[k] {
				break
			}
			off -= strides[k] * shape[k]
			idx[k] = 0
		}
	}
}

// strided returns the tensor of type t whose element idx is x's element at
// base + Σ idx[k]*strides[k]: the common form of broadcast, transpose and slice.
func strided(x *Tensor, t ir.Type, base int, strides []int) *Tensor {
	out := NewTensor(t)
	if x.F != nil {
		copyStrided(out.F, x.F, t.Shape, base, strides)
	} else {
		copyStrided(out.I, x.I, t.Shape, base, strides)
	}
	return out
}

// broadcast maps operand dim i to result dim dims[i]; operand dims of size 1
// are repeated.
func broadcast(x *Tensor, dims []int, t ir.Type) *Tensor {
	in := ir.RowMajorStrides(x.Type.Shape)
	st := make([]int, t.Rank())
	for i, d := range dims {
		if x.Type.Shape[i] != 1 {
			st[d] = in[i]
		}
	}
	return strided(x, t, 0, st)
}

func reshape(x *Tensor, t ir.Type) *Tensor {
	out := x.Clone()
	out.Type = ir.Type{DType: t.DType, Shape: t.Shape.Clone()}
	return out
}

// transpose makes result dim i operand dim perm[i].
func transpose(x *Tensor, perm []int, t ir.Type) *Tensor {
	in := ir.RowMajorStrides(x.Type.Shape)
	st := make([]int, len(perm))
	for i, p := range perm {
		st[i] = in[p]
	}
	return strided(x, t, 0, st)
}

// slice takes, along each axis i, the elements start[i], start[i]+stride[i],
// ... below limit[i]; t already holds the resulting shape.
func slice(x *Tensor, start, stride []int, t ir.Type) *Tensor {
	in := ir.RowMajorStrides(x.Type.Shape)
	base := 0
	st := make([]int, len(in))
	for i := range in {
		base += start[i] * in[i]
		st[i] = in[i] * stride[i]
	}
	if t.Shape.NumElements() == 0 {
		base = 0
	}
	return strided(x, t, base, st)
}

// concat joins xs along axis.
func concat(xs []*Tensor, axis int, t ir.Type) *Tensor {
	out := NewTensor(t)
	outer := t.Shape[:axis].NumElements()
	inner := t.Shape[axis+1:].NumElements()
	row := t.Shape[axis] * inner // one outer slab of the result
	at := 0                      // offset of the current operand inside a slab
	for _, x := range xs {
		blk := x.Type.Shape[axis] * inner
		for o := 0; o < outer; o++ {
			if out.F != nil {
				copy(out.F[o*row+at:o*row+at+blk], x.F[o*blk:(o+1)*blk])
			} else {
				copy(out.I[o*row+at:o*row+at+blk], x.I[o*blk:(o+1)*blk])
			}
		}
		at += blk
	}
	return out
}

// iota sets every element to its index along axis, rounded to the dtype.
func iota(axis int, t ir.Type) *Tensor {
	out := NewTensor(t)
	inner := t.Shape[axis+1:].NumElements()
	n := t.Shape[axis]
	for i := range out.Len() {
		v := int64(i / inner % n)
		if out.F != nil {
			out.F[i] = IntToFloat(t.DType, v)
		} else {
			out.I[i] = RoundInt(t.DType, v)
		}
	}
	return out
}

// constant splats the value attribute (int64 or float64) over t.
func constant(attrs ir.Attrs, t ir.Type) *Tensor {
	out := NewTensor(t)
	v, _ := attrs.Get("value")
	var f float64
	var n int64
	switch v := v.(type) {
	case int64:
		if t.DType.IsFloat() {
			f = IntToFloat(t.DType, v)
		} else {
			n = RoundInt(t.DType, v)
		}
	case float64:
		if t.DType.IsFloat() {
			f = Round(t.DType, v)
		} else {
			n = FloatToInt(t.DType, v)
		}
	}
	for i := range out.F {
		out.F[i] = f
	}
	for i := range out.I {
		out.I[i] = n
	}
	return out
}
