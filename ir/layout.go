package ir

// RowMajorStrides returns the strides, in elements, of a dense row-major
// array of shape s: the last dim's is 1, each other dim's the product of
// the sizes after it.
func RowMajorStrides(s Shape) []int {
	st := make([]int, len(s))
	n := 1
	for d := len(s) - 1; d >= 0; d-- {
		st[d] = n
		n *= s[d]
	}
	return st
}

// MergeDims reports whether dims of a dense row-major array of shape s,
// taken in the order given, address their elements like one dimension
// with a constant stride: each dim's stride is the next dim's stride times
// the next dim's size (dims of size 1 are skipped: their index is always
// 0). It returns that dimension's size (the product of the sizes) and
// stride (the last non-unit dim's; 0 when every dim has size 1 or dims
// is empty). The dims must be in range.
func MergeDims(s Shape, dims []int) (size, stride int, ok bool) {
	return MergeStrided(s, RowMajorStrides(s), dims)
}

// MergeStrided is MergeDims for an array of shape s whose dims have the
// strides st (in elements).
func MergeStrided(s Shape, st []int, dims []int) (size, stride int, ok bool) {
	size, stride = 1, 0
	prev := -1
	for _, d := range dims {
		if s[d] == 1 {
			continue
		}
		if prev >= 0 && st[prev] != st[d]*s[d] {
			return 0, 0, false
		}
		size *= s[d]
		stride = st[d]
		prev = d
	}
	return size, stride, true
}

// TransposedDotStrides returns the strides that the dims of a dot's result
// of shape s (nb batch dims, then nm lhs free dims, then the rhs free dims)
// have in the array transpose(result, perm), and whether a matrix product
// can write that array directly: the rhs free dims merge into one run of
// unit stride (rows of the product are contiguous) and the lhs free dims
// into one strided run. Attention's head merge, [b,h,s,dh] to [b,s,h,dh],
// is such a transpose.
func TransposedDotStrides(s Shape, nb, nm int, perm []int) ([]int, bool) {
	out := make(Shape, len(perm))
	for i, p := range perm {
		out[i] = s[p]
	}
	ost := RowMajorStrides(out)
	st := make([]int, len(s))
	for i, p := range perm {
		st[p] = ost[i]
	}
	_, ok := DotResultRows(s, st, nb, nm)
	return st, ok
}

// DotResultRows reports whether a dot result of shape s (nb batch dims, nm
// lhs free dims, then the rhs free dims) whose dims have the strides st is
// laid out as rows of a matrix: the rhs free dims merge into one run of
// unit stride and the lhs free dims into one strided run, whose stride (the
// leading dimension; 0 when the lhs free dims all have size 1) it returns.
func DotResultRows(s Shape, st []int, nb, nm int) (ld int, ok bool) {
	var mdims, ndims []int
	for d := nb; d < len(s); d++ {
		if d < nb+nm {
			mdims = append(mdims, d)
		} else {
			ndims = append(ndims, d)
		}
	}
	n, sn, okN := MergeStrided(s, st, ndims)
	_, ld, okM := MergeStrided(s, st, mdims)
	return ld, okN && okM && (n == 1 || sn == 1)
}
