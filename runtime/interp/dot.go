package interp

import (
	"xlc/ir"
)

// dot is XLA's dot_general: the result dims are the batch dims, then the
// lhs free dims in order, then the rhs free dims in order. Operands are
// first laid out as contiguous [batch, M, K] and [batch, K, N] arrays; each
// result element sums over k in order in float64 (int64 for integers, which
// wrap) and is rounded once.
func dot(a, b *Tensor, attrs ir.Attrs, t ir.Type) *Tensor {
	lb, rb, lc, rc := ir.DotDims(attrs)
	lf := ir.DotFree(a.Type.Rank(), lb, lc)
	rf := ir.DotFree(b.Type.Rank(), rb, rc)
	nb, m, k, n := dimsProduct(a, lb), dimsProduct(a, lf), dimsProduct(a, lc), dimsProduct(b, rf)
	lhs := permute(a, concatInts(lb, lf, lc))
	rhs := permute(b, concatInts(rb, rc, rf))
	out := NewTensor(t)
	if out.F != nil {
		matmul(out.F, lhs.F, rhs.F, nb, m, k, n)
		for i, v := range out.F {
			out.F[i] = Round(t.DType, v)
		}
		return out
	}
	matmul(out.I, lhs.I, rhs.I, nb, m, k, n)
	for i, v := range out.I {
		out.I[i] = RoundInt(t.DType, v)
	}
	return out
}

// matmul adds into c[nb, m, n] the batched product of a[nb, m, k] and
// b[nb, k, n], splitting the nb*m rows across cores.
func matmul[E float64 | int64](c, a, b []E, nb, m, k, n int) {
	parallelFor(nb*m, nb*m*k*n, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			crow := c[row*n : (row+1)*n]
			arow := a[row*k : (row+1)*k]
			bmat := b[row/m*k*n:]
			for p, av := range arow {
				brow := bmat[p*n : (p+1)*n]
				for j, bv := range brow {
					crow[j] += E(av * bv) // the conversion forbids a fused multiply-add
				}
			}
		}
	})
}

func dimsProduct(x *Tensor, dims []int) int {
	n := 1
	for _, d := range dims {
		n *= x.Type.Shape[d]
	}
	return n
}

func concatInts(lists ...[]int) []int {
	var out []int
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
