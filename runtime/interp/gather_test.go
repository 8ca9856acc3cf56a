package interp

import (
	"math"
	"math/rand/v2"
	"testing"

	"xlc/ir"
)

// TestGatherScatterAdjoint checks <gather(T, idx), U> == <T, scatter_add(U, idx)>
// for every axis, including out-of-range (clamped) indices.
func TestGatherScatterAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	table := ir.T(ir.F64, 5, 4, 3)
	for axis := range table.Rank() {
		n := table.Shape[axis]
		idxT := ir.T(ir.I64, 2, 3)
		iv := make([]int64, idxT.Shape.NumElements())
		for i := range iv {
			iv[i] = int64(r.IntN(n+4) - 2) // some below 0, some at or above n
		}
		idx := FromInts(idxT, iv)
		T := randTensor(r, table)
		attrs := ir.Attrs{}.Set("axis", axis)
		gt, err := ir.Infer(ir.OpGather, []ir.Type{table, idxT}, attrs, ir.Type{})
		if err != nil {
			t.Fatal(err)
		}
		U := randTensor(r, gt)
		g, err := Eval(ir.OpGather, attrs, gt, []*Tensor{T, idx})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Eval(ir.OpScatterAdd, attrs, table, []*Tensor{U, idx})
		if err != nil {
			t.Fatal(err)
		}
		var lhs, rhs float64
		for i := range g.F {
			lhs += g.F[i] * U.F[i]
		}
		for i := range T.F {
			rhs += T.F[i] * s.F[i]
		}
		if math.Abs(lhs-rhs) > 1e-12*(math.Abs(lhs)+1) {
			t.Errorf("axis %d: <gather(T), U> = %v, <T, scatter_add(U)> = %v", axis, lhs, rhs)
		}
	}
}
