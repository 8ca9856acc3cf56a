package interp

import (
	"math"
	"testing"

	"xlc/ir"
)

func same(a, b float64) bool {
	return a == b && math.Signbit(a) == math.Signbit(b) || math.IsNaN(a) && math.IsNaN(b)
}

// TestRoundFloat checks rounding to f16, bf16 and f32 at the edges: range,
// overflow, subnormals, ties to even, and inputs that double rounding
// through f32 would get wrong.
func TestRoundFloat(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	tests := []struct {
		d       ir.DType
		in, out float64
	}{
		{ir.F16, 0.1, 0.0999755859375},
		{ir.F16, -0.1, -0.0999755859375},
		{ir.F16, 65504, 65504},
		{ir.F16, 65519, 65504},
		{ir.F16, 65520, inf}, // tie between 65504 (odd) and 65536: overflows
		{ir.F16, -65520, -inf},
		{ir.F16, 1e6, inf},
		{ir.F16, inf, inf},
		{ir.F16, nan, nan},
		{ir.F16, 0x1p-24, 0x1p-24}, // smallest subnormal
		{ir.F16, 0x1p-25, 0},       // tie with 0: to even
		{ir.F16, -0x1p-25, math.Copysign(0, -1)},
		{ir.F16, 0x1.0001p-25, 0x1p-24},
		{ir.F16, 3 * 0x1p-25, 0x1p-23}, // tie: to even
		{ir.F16, 0x1p-14 - 0x1p-24, 0x1p-14 - 0x1p-24},
		{ir.F16, 1 + 0x1p-11, 1},                     // tie: to even
		{ir.F16, 1 + 3*0x1p-11, 1 + 0x1p-9},          // tie: to even
		{ir.F16, 1 + 0x1p-11 + 0x1p-30, 1 + 0x1p-10}, // f32 first would make a tie
		{ir.F16, 2049, 2048},
		{ir.BF16, 0.1, 0.10009765625},
		{ir.BF16, 1 + 0x1p-8, 1},
		{ir.BF16, 1 + 3*0x1p-8, 1 + 0x1p-6},
		{ir.BF16, 1 + 0x1p-8 + 0x1p-40, 1 + 0x1p-7},
		{ir.BF16, 0x1.fep127, 0x1.fep127}, // largest finite
		{ir.BF16, 0x1.ffp127, inf},        // tie with the odd maximum: overflows
		{ir.BF16, 0x1p-133, 0x1p-133},     // smallest subnormal
		{ir.BF16, 0x1p-134, 0},
		{ir.BF16, inf, inf},
		{ir.BF16, -inf, -inf},
		{ir.BF16, nan, nan},
		{ir.BF16, 1e300, inf},
		{ir.F32, 0.1, float64(float32(0.1))},
		{ir.F32, 1e300, inf},
		{ir.F64, 0.1, 0.1},
	}
	for _, tc := range tests {
		if got := Round(tc.d, tc.in); !same(got, tc.out) {
			t.Errorf("Round(%v, %v) = %v, want %v", tc.d, tc.in, got, tc.out)
		}
	}
}

// TestRoundInt checks integer wrapping and float to integer conversion.
func TestRoundInt(t *testing.T) {
	ints := []struct {
		d       ir.DType
		in, out int64
	}{
		{ir.I32, 1 << 31, -1 << 31},
		{ir.I32, 1<<32 + 5, 5},
		{ir.I64, 1 << 40, 1 << 40},
		{ir.Bool, -3, 1},
		{ir.Bool, 0, 0},
	}
	for _, tc := range ints {
		if got := RoundInt(tc.d, tc.in); got != tc.out {
			t.Errorf("RoundInt(%v, %d) = %d, want %d", tc.d, tc.in, got, tc.out)
		}
	}
	floats := []struct {
		d   ir.DType
		in  float64
		out int64
	}{
		{ir.I32, 2.7, 2},
		{ir.I32, -2.7, -2},
		{ir.I32, math.NaN(), 0},
		{ir.I32, 1e10, math.MaxInt32},
		{ir.I32, -1e10, math.MinInt32},
		{ir.I64, math.Inf(1), math.MaxInt64},
		{ir.I64, math.Inf(-1), math.MinInt64},
		{ir.I64, -0x1p63, math.MinInt64},
		{ir.Bool, 0.5, 1},
		{ir.Bool, math.NaN(), 1},
		{ir.Bool, 0, 0},
	}
	for _, tc := range floats {
		if got := FloatToInt(tc.d, tc.in); got != tc.out {
			t.Errorf("FloatToInt(%v, %v) = %d, want %d", tc.d, tc.in, got, tc.out)
		}
	}
}
