package trainstep

import "xlc/ir"

// allAxes lists the axes 0..rank-1.
func allAxes(rank int) []int { return adSeq(0, rank) }

// totalSum is Σ_j Σ term(j) over every element, for j in [0, n), as a
// scalar of dtype d (each partial sum converted to d): the global
// reductions of the train step — squared norms, inner products across all
// parameters, the all-finite check. It returns a zero constant for n = 0.
func totalSum(b *ir.Builder, n int, d ir.DType, term func(j int) *ir.Value) *ir.Value {
	var total *ir.Value
	for j := 0; j < n; j++ {
		t := term(j)
		if r := t.Type.Rank(); r > 0 {
			t = b.Reduce(ir.OpReduceSum, t, allAxes(r))
		}
		if t.Type.DType != d {
			t = b.Convert(t, d)
		}
		if total == nil {
			total = t
		} else {
			total = b.Binary(ir.OpAdd, total, t)
		}
	}
	if total == nil {
		return b.Constant(ir.T(d), 0)
	}
	return total
}
