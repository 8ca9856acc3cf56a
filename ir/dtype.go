// Package ir defines xlc's graph intermediate representation: dtypes, static
// shapes, ops, functions of SSA values, a builder, a text printer and parser
// that round-trip byte for byte, and a verifier.
package ir

import (
	"fmt"
	"strings"
)

// DType is an element type.
type DType uint8

// The element types of the IR.
const (
	Invalid DType = iota
	F32
	F16
	BF16
	F64
	I32
	I64
	Bool
)

var dtypeNames = [...]string{Invalid: "invalid", F32: "f32", F16: "f16", BF16: "bf16", F64: "f64", I32: "i32", I64: "i64", Bool: "bool"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", d)
}

// ParseDType returns the dtype named s.
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == s && i != int(Invalid) {
			return DType(i), true
		}
	}
	return Invalid, false
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// IsInt reports whether d is an integer type.
func (d DType) IsInt() bool { return d == I32 || d == I64 }

// Size is the byte size of one element.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case Bool:
		return 1
	}
	return 0
}

// Shape is a static shape; a scalar has the empty shape.
type Shape []int

// NumElements is the product of the dims.
func (s Shape) NumElements() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and t are the same shape.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape{}, s...) }

// SameSqueezed reports whether s and t are equal without their dimensions
// of size 1 ([16,128,1] and [16,128]: the same elements in the same order).
func (s Shape) SameSqueezed(t Shape) bool {
	i, j := 0, 0
	for {
		for i < len(s) && s[i] == 1 {
			i++
		}
		for j < len(t) && t[j] == 1 {
			j++
		}
		if i == len(s) || j == len(t) {
			return i == len(s) && j == len(t)
		}
		if s[i] != t[j] {
			return false
		}
		i, j = i+1, j+1
	}
}

func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// Type is a dtype with a static shape, printed as f32[2,16].
type Type struct {
	DType DType
	Shape Shape
}

// T is shorthand for Type{d, shape}.
func T(d DType, shape ...int) Type { return Type{d, Shape(shape)} }

func (t Type) String() string { return t.DType.String() + t.Shape.String() }

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool { return t.DType == u.DType && t.Shape.Equal(u.Shape) }

// Rank is the number of dims.
func (t Type) Rank() int { return len(t.Shape) }
