// Package scalar is the one statement of xlc's scalar number semantics:
// rounding to f32, f16 and bf16 (ties to even, overflow to ±inf, NaN kept a
// quiet NaN), integer wrapping and float↔integer conversion. The
// interpreter and constant folding call it; codegen emits the same
// operations in LLVM IR, and a test holds all three to identical bits.
package scalar

import (
	"math"

	"github.com/x448/float16"

	"xlc/ir"
)

// Round rounds x to the nearest value of the float dtype d (ties to even),
// returned as a float64. Values beyond the dtype's range become ±inf; NaN
// stays NaN. F64 is exact. Round panics if d is not a float dtype.
func Round(d ir.DType, x float64) float64 {
	switch d {
	case ir.F64:
		return x
	case ir.F32:
		return float64(float32(x))
	case ir.F16:
		return RoundF16(x)
	case ir.BF16:
		return RoundBF16(x)
	}
	panic("scalar: Round of non-float dtype " + d.String())
}

// RoundF16 rounds x to the nearest IEEE binary16 value, ties to even,
// overflowing to ±inf.
func RoundF16(x float64) float64 {
	return float64(float16.Fromfloat32(toOddF32(x)).Float32())
}

// RoundBF16 rounds x to the nearest bfloat16 value, ties to even,
// overflowing to ±inf; NaN stays NaN.
func RoundBF16(x float64) float64 {
	b := math.Float32bits(toOddF32(x))
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and a NaN after truncation
		return float64(math.Float32frombits((b | 0x00400000) & 0xffff0000))
	}
	b += 0x7fff + (b>>16)&1
	return float64(math.Float32frombits(b & 0xffff0000))
}

// toOddF32 rounds x to float32 with round-to-odd (truncate, then set the low
// bit when inexact). Rounding that result again to a format of at most 22
// significand bits gives the correctly rounded value of x, avoiding the double
// rounding error of f64 -> f32 -> f16 with round-to-nearest twice.
func toOddF32(x float64) float32 {
	r := float32(x)
	if float64(r) == x || math.IsNaN(x) {
		return r
	}
	b := math.Float32bits(r)
	if math.Abs(float64(r)) > math.Abs(x) {
		b-- // step toward zero: sign-magnitude bits
	}
	return math.Float32frombits(b | 1)
}

// RoundInt wraps x to the integer dtype d: i32 wraps as int32, bool becomes
// 0 or 1 (x != 0), i64 is unchanged.
func RoundInt(d ir.DType, x int64) int64 {
	switch d {
	case ir.I32:
		return int64(int32(x))
	case ir.Bool:
		if x != 0 {
			return 1
		}
		return 0
	}
	return x
}

// FloatToInt converts x to the integer dtype d: it truncates toward zero,
// saturates at the dtype's range, and maps NaN to 0; for bool it is x != 0.
func FloatToInt(d ir.DType, x float64) int64 {
	switch {
	case d == ir.Bool:
		if x != 0 {
			return 1
		}
		return 0
	case math.IsNaN(x):
		return 0
	}
	lo, hi := float64(math.MinInt64), float64(math.MaxInt64) // hi rounds up to 2^63
	if d == ir.I32 {
		lo, hi = math.MinInt32, math.MaxInt32+1
	}
	switch {
	case x < lo:
		x = lo
	case x >= hi:
		if d == ir.I32 {
			return math.MaxInt32
		}
		return math.MaxInt64
	}
	return int64(math.Trunc(x))
}

// IntToFloat converts x to the float dtype d with a single rounding.
func IntToFloat(d ir.DType, x int64) float64 {
	if d == ir.F32 {
		return float64(float32(x))
	}
	return Round(d, float64(x))
}
