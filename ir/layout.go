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
	st := RowMajorStrides(s)
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
