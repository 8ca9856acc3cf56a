package interp

import (
	"xlc/ir"
	"xlc/ir/scalar"
)

// Round rounds x to the nearest value of the float dtype d (scalar.Round).
func Round(d ir.DType, x float64) float64 { return scalar.Round(d, x) }

// RoundF16 rounds x to the nearest IEEE binary16 value (scalar.RoundF16).
func RoundF16(x float64) float64 { return scalar.RoundF16(x) }

// RoundBF16 rounds x to the nearest bfloat16 value (scalar.RoundBF16).
func RoundBF16(x float64) float64 { return scalar.RoundBF16(x) }

// RoundInt wraps x to the integer dtype d (scalar.RoundInt).
func RoundInt(d ir.DType, x int64) int64 { return scalar.RoundInt(d, x) }

// FloatToInt converts x to the integer dtype d (scalar.FloatToInt).
func FloatToInt(d ir.DType, x float64) int64 { return scalar.FloatToInt(d, x) }

// IntToFloat converts x to the float dtype d (scalar.IntToFloat).
func IntToFloat(d ir.DType, x int64) float64 { return scalar.IntToFloat(d, x) }
