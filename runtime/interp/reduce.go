package interp

import (
	"math"

	"xlc/ir"
)

// reduceChunk is the number of reduced elements one task handles. Partial
// results are combined in chunk order, so the result does not depend on the
// number of cores.
const reduceChunk = 4096

// reduce evaluates reduce_sum and reduce_max over axes. Float sums accumulate
// in float64 and round once; integer sums wrap. reduce_max of an empty axis
// gives -inf (floats) or the dtype's minimum (integers); NaN propagates.
func reduce(op ir.Op, x *Tensor, axes []int, t ir.Type) *Tensor {
	// Move the reduced axes last, so each result element reduces one
	// contiguous run of r elements.
	reduced := make([]bool, x.Type.Rank())
	for _, a := range axes {
		reduced[a] = true
	}
	var perm []int
	for i, red := range reduced {
		if !red {
			perm = append(perm, i)
		}
	}
	perm = append(perm, axes...)
	src := permute(x, perm)
	k := t.Shape.NumElements()
	r := 1
	for _, a := range axes {
		r *= x.Type.Shape[a]
	}
	nch := max(1, (r+reduceChunk-1)/reduceChunk)
	out := NewTensor(t)
	isMax := op == ir.OpReduceMax
	if x.F != nil {
		part := make([]float64, k*nch)
		parallelFor(k*nch, k*r, func(lo, hi int) {
			for task := lo; task < hi; task++ {
				row, c := task/nch, task%nch
				s := src.F[row*r+c*reduceChunk : row*r+min(r, (c+1)*reduceChunk)]
				part[task] = foldFloat(isMax, s)
			}
		})
		for row := range k {
			out.F[row] = Round(t.DType, foldFloat(isMax, part[row*nch:(row+1)*nch]))
		}
		return out
	}
	part := make([]int64, k*nch)
	parallelFor(k*nch, k*r, func(lo, hi int) {
		for task := lo; task < hi; task++ {
			row, c := task/nch, task%nch
			s := src.I[row*r+c*reduceChunk : row*r+min(r, (c+1)*reduceChunk)]
			part[task] = foldInt(isMax, t.DType, s)
		}
	})
	for row := range k {
		out.I[row] = RoundInt(t.DType, foldInt(isMax, t.DType, part[row*nch:(row+1)*nch]))
	}
	return out
}

func foldFloat(isMax bool, s []float64) float64 {
	if isMax {
		m := math.Inf(-1)
		for _, v := range s {
			m = math.Max(m, v)
		}
		return m
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum
}

func foldInt(isMax bool, d ir.DType, s []int64) int64 {
	if isMax {
		m := int64(math.MinInt64)
		if d == ir.I32 {
			m = math.MinInt32
		}
		for _, v := range s {
			m = max(m, v)
		}
		return m
	}
	var sum int64
	for _, v := range s {
		sum += v
	}
	return sum
}

// permute returns x transposed by perm, or x itself when perm is the
// identity.
func permute(x *Tensor, perm []int) *Tensor {
	identity := true
	for i, p := range perm {
		identity = identity && i == p
	}
	if identity {
		return x
	}
	s := make(ir.Shape, len(perm))
	for i, p := range perm {
		s[i] = x.Type.Shape[p]
	}
	return transpose(x, perm, ir.Type{DType: x.Type.DType, Shape: s})
}
