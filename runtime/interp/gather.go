package interp

import (
	"xlc/ir"
)

// clampIndex clamps a gather/scatter index into [0, n-1]. Out-of-range
// indices are clamped, not rejected, as in XLA; n must be positive.
func clampIndex(i int64, n int) int {
	if i < 0 {
		return 0
	}
	if i >= int64(n) {
		return n - 1
	}
	return int(i)
}

// gather picks, along axis, the table rows named by idx: with table shape
// pre ++ [n] ++ post, the result has shape pre ++ idx.shape ++ post and
// result[o, j, i] = table[o, clamp(idx[j]), i]. Out-of-range indices are
// clamped to [0, n-1]; an empty axis (n = 0) gives zeros.
func gather(table, idx *Tensor, axis int, t ir.Type) *Tensor {
	out := NewTensor(t)
	n := table.Type.Shape[axis]
	if n == 0 {
		return out
	}
	outer := table.Type.Shape[:axis].NumElements()
	inner := table.Type.Shape[axis+1:].NumElements()
	m := len(idx.I)
	for o := 0; o < outer; o++ {
		for j, ix := range idx.I {
			src := (o*n + clampIndex(ix, n)) * inner
			dst := (o*m + j) * inner
			if out.F != nil {
				copy(out.F[dst:dst+inner], table.F[src:src+inner])
			} else {
				copy(out.I[dst:dst+inner], table.I[src:src+inner])
			}
		}
	}
	return out
}

// scatterAdd is the adjoint of gather: it starts from zeros of type t (the
// table's type) and adds upd[o, j, i] into result[o, clamp(idx[j]), i], with
// indices clamped as in gather. Float sums accumulate in float64, in order
// of j, and are rounded once.
func scatterAdd(upd, idx *Tensor, axis int, t ir.Type) *Tensor {
	out := NewTensor(t)
	n := t.Shape[axis]
	if n == 0 {
		return out
	}
	outer := t.Shape[:axis].NumElements()
	inner := t.Shape[axis+1:].NumElements()
	m := len(idx.I)
	for o := 0; o < outer; o++ {
		for j, ix := range idx.I {
			dst := (o*n + clampIndex(ix, n)) * inner
			src := (o*m + j) * inner
			if out.F != nil {
				for i, v := range upd.F[src : src+inner] {
					out.F[dst+i] += v
				}
			} else {
				for i, v := range upd.I[src : src+inner] {
					out.I[dst+i] += v
				}
			}
		}
	}
	for i, v := range out.F {
		out.F[i] = Round(t.DType, v)
	}
	for i, v := range out.I {
		out.I[i] = RoundInt(t.DType, v)
	}
	return out
}
