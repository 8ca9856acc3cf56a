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
			p := 0
			// Four rows of b at a time: a quarter of the loads and stores of
			// crow. The sums are in a fixed order, so results stay
			// deterministic.
			for ; p+4 <= k; p += 4 {
				a0, a1, a2, a3 := arow[p], arow[p+1], arow[p+2], arow[p+3]
				b0 := bmat[p*n : (p+1)*n]
				b1 := bmat[(p+1)*n : (p+2)*n][:len(b0)]
				b2 := bmat[(p+2)*n : (p+3)*n][:len(b0)]
				b3 := bmat[(p+3)*n : (p+4)*n][:len(b0)]
				cr := crow[:len(b0)]
				for j, bv := range b0 {
					// The conversions forbid fused multiply-adds.
					cr[j] += E(a0*bv) + E(a1*b1[j]) + E(a2*b2[j]) + E(a3*b3[j])
				}
			}
			for ; p < k; p++ {
				av := arow[p]
				brow := bmat[p*n : (p+1)*n]
				cr := crow[:len(brow)]
				for j, bv := range brow {
					cr[j] += E(av * bv)
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
