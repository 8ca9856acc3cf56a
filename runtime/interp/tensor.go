// Package interp is xlc's reference interpreter: it evaluates an ir.Func on
// concrete tensors, op by op, rounding every result to its dtype. It is the
// correctness oracle that every compiled backend is compared with, so it
// favours clarity; dot and the reductions split their work across all cores.
package interp

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"xlc/ir"
)

// Tensor is a dense row-major array of one ir.Type. Float dtypes keep their
// elements in F (each already rounded to the dtype); integer and bool dtypes
// keep them in I (bool as 0 or 1). Exactly one of F and I is used.
type Tensor struct {
	Type ir.Type
	F    []float64
	I    []int64
}

// NewTensor returns a tensor of type t filled with zeros.
func NewTensor(t ir.Type) *Tensor {
	x := &Tensor{Type: ir.Type{DType: t.DType, Shape: t.Shape.Clone()}}
	n := t.Shape.NumElements()
	if t.DType.IsFloat() {
		x.F = make([]float64, n)
	} else {
		x.I = make([]int64, n)
	}
	return x
}

// Identical reports whether t and u have the same type and the same
// elements bit for bit (a NaN equals a NaN with the same bits); nil equals
// only nil.
func (t *Tensor) Identical(u *Tensor) bool {
	if t == nil || u == nil {
		return t == u
	}
	if !t.Type.Equal(u.Type) || len(t.F) != len(u.F) || len(t.I) != len(u.I) {
		return false
	}
	for i := range t.F {
		if math.Float64bits(t.F[i]) != math.Float64bits(u.F[i]) {
			return false
		}
	}
	return slices.Equal(t.I, u.I)
}

// FromFloats returns a tensor of type t holding v, each value rounded to
// t.DType (converted as by the convert op for integer and bool dtypes). It
// panics if len(v) is not t's element count.
func FromFloats(t ir.Type, v []float64) *Tensor {
	x := NewTensor(t)
	if len(v) != x.Len() {
		panic(fmt.Sprintf("interp: FromFloats: %d values for %v", len(v), t))
	}
	for i, f := range v {
		if x.F != nil {
			x.F[i] = Round(t.DType, f)
		} else {
			x.I[i] = FloatToInt(t.DType, f)
		}
	}
	return x
}

// FromInts returns a tensor of type t holding v, each value wrapped to
// t.DType (converted to the nearest value for float dtypes). It panics if
// len(v) is not t's element count.
func FromInts(t ir.Type, v []int64) *Tensor {
	x := NewTensor(t)
	if len(v) != x.Len() {
		panic(fmt.Sprintf("interp: FromInts: %d values for %v", len(v), t))
	}
	for i, n := range v {
		if x.F != nil {
			x.F[i] = IntToFloat(t.DType, n)
		} else {
			x.I[i] = RoundInt(t.DType, n)
		}
	}
	return x
}

// Len is the number of elements.
func (t *Tensor) Len() int { return t.Type.Shape.NumElements() }

// At returns element i (row-major) as a float64, whatever the dtype.
func (t *Tensor) At(i int) float64 {
	if t.Type.DType.IsFloat() {
		return t.F[i]
	}
	return float64(t.I[i])
}

// Scalar returns the first element as a float64; it is meant for tensors of
// one element.
func (t *Tensor) Scalar() float64 { return t.At(0) }

// Floats returns every element as a float64, in row-major order.
func (t *Tensor) Floats() []float64 {
	v := make([]float64, t.Len())
	for i := range v {
		v[i] = t.At(i)
	}
	return v
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{
		Type: ir.Type{DType: t.Type.DType, Shape: t.Type.Shape.Clone()},
		F:    cloneSlice(t.F),
		I:    cloneSlice(t.I),
	}
}

func cloneSlice[E any](s []E) []E {
	if s == nil {
		return nil
	}
	return append(make([]E, 0, len(s)), s...)
}

// Check reports whether t is a well-formed tensor of type want: same type,
// and storage of the right kind and length.
func (t *Tensor) Check(want ir.Type) error {
	if t == nil {
		return fmt.Errorf("nil tensor, want %v", want)
	}
	if !t.Type.Equal(want) {
		return fmt.Errorf("have %v, want %v", t.Type, want)
	}
	n := want.Shape.NumElements()
	if want.DType.IsFloat() {
		if len(t.F) != n || t.I != nil {
			return fmt.Errorf("%v tensor with %d float and %d int elements, want %d float", want, len(t.F), len(t.I), n)
		}
	} else if len(t.I) != n || t.F != nil {
		return fmt.Errorf("%v tensor with %d float and %d int elements, want %d int", want, len(t.F), len(t.I), n)
	}
	return nil
}

// String prints the type and, for small tensors, the elements.
func (t *Tensor) String() string {
	var b strings.Builder
	b.WriteString(t.Type.String())
	n := t.Len()
	if n > 64 {
		fmt.Fprintf(&b, "{%d elements}", n)
		return b.String()
	}
	b.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, t.At(i))
	}
	b.WriteByte('}')
	return b.String()
}
