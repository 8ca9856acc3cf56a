package interp

import (
	"math"

	"xlc/ir"
)

// floatUnary gives each unary op's float64 function; results are rounded to
// the dtype afterwards.
var floatUnary = map[ir.Op]func(float64) float64{
	ir.OpNeg:   func(x float64) float64 { return -x },
	ir.OpAbs:   math.Abs,
	ir.OpExp:   math.Exp,
	ir.OpLog:   math.Log,
	ir.OpSqrt:  math.Sqrt,
	ir.OpRsqrt: func(x float64) float64 { return 1 / math.Sqrt(x) },
	ir.OpTanh:  math.Tanh,
	ir.OpErf:   math.Erf,
	ir.OpSin:   math.Sin,
	ir.OpCos:   math.Cos,
	ir.OpRecip: func(x float64) float64 { return 1 / x },
	ir.OpSign: func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return x // ±0 and NaN
	},
	ir.OpStopGradient: func(x float64) float64 { return x },
}

// intUnary gives the unary ops defined on integers and bool; results are
// wrapped to the dtype afterwards.
var intUnary = map[ir.Op]func(int64) int64{
	ir.OpNeg: func(x int64) int64 { return -x },
	ir.OpAbs: func(x int64) int64 {
		if x < 0 {
			return -x
		}
		return x
	},
	ir.OpSign: func(x int64) int64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	},
	ir.OpNot:          func(x int64) int64 { return 1 - x },
	ir.OpStopGradient: func(x int64) int64 { return x },
}

func unary(op ir.Op, x *Tensor) *Tensor {
	out := NewTensor(x.Type)
	d := x.Type.DType
	if d.IsFloat() {
		fn := floatUnary[op]
		for i, v := range x.F {
			out.F[i] = Round(d, fn(v))
		}
		return out
	}
	fn := intUnary[op]
	for i, v := range x.I {
		out.I[i] = RoundInt(d, fn(v))
	}
	return out
}

var floatBinary = map[ir.Op]func(a, b float64) float64{
	ir.OpAdd: func(a, b float64) float64 { return a + b },
	ir.OpSub: func(a, b float64) float64 { return a - b },
	ir.OpMul: func(a, b float64) float64 { return a * b },
	ir.OpDiv: func(a, b float64) float64 { return a / b },
	ir.OpMax: math.Max, // NaN propagates; max(-0, +0) = +0
	ir.OpMin: math.Min,
	ir.OpPow: math.Pow,
}

var intBinary = map[ir.Op]func(a, b int64) int64{
	ir.OpAdd: func(a, b int64) int64 { return a + b },
	ir.OpSub: func(a, b int64) int64 { return a - b },
	ir.OpMul: func(a, b int64) int64 { return a * b },
	ir.OpDiv: func(a, b int64) int64 {
		if b == 0 {
			return 0 // integer division by zero is defined as 0
		}
		return a / b // truncates; MinInt64 / -1 wraps to MinInt64
	},
	ir.OpMax: func(a, b int64) int64 { return max(a, b) },
	ir.OpMin: func(a, b int64) int64 { return min(a, b) },
	ir.OpAnd: func(a, b int64) int64 { return a & b },
	ir.OpOr:  func(a, b int64) int64 { return a | b },
}

func binary(op ir.Op, x, y *Tensor) *Tensor {
	out := NewTensor(x.Type)
	d := x.Type.DType
	if d == ir.F32 && binaryF32(op, out.F, x.F, y.F) {
		return out
	}
	if d.IsFloat() {
		fn := floatBinary[op]
		parallelFor(len(out.F), len(out.F), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out.F[i] = Round(d, fn(x.F[i], y.F[i]))
			}
		})
		return out
	}
	fn := intBinary[op]
	for i := range out.I {
		out.I[i] = RoundInt(d, fn(x.I[i], y.I[i]))
	}
	return out
}

func compare(op ir.Op, x, y *Tensor) *Tensor {
	out := NewTensor(ir.Type{DType: ir.Bool, Shape: x.Type.Shape})
	for i := range out.I {
		var r bool
		if x.F != nil {
			r = compareOrdered(op, x.F[i], y.F[i])
		} else {
			r = compareOrdered(op, x.I[i], y.I[i])
		}
		if r {
			out.I[i] = 1
		}
	}
	return out
}

// compareOrdered applies a compare op; with NaN every compare but ne is
// false, as in IEEE 754.
func compareOrdered[E float64 | int64](op ir.Op, a, b E) bool {
	switch op {
	case ir.OpEq:
		return a == b
	case ir.OpNe:
		return a != b
	case ir.OpLt:
		return a < b
	case ir.OpLe:
		return a <= b
	case ir.OpGt:
		return a > b
	case ir.OpGe:
		return a >= b
	}
	panic("interp: not a compare op: " + op.String())
}

func selectOp(p, x, y *Tensor) *Tensor {
	out := NewTensor(x.Type)
	for i, c := range p.I {
		src := y
		if c != 0 {
			src = x
		}
		if out.F != nil {
			out.F[i] = src.F[i]
		} else {
			out.I[i] = src.I[i]
		}
	}
	return out
}

// convert changes the dtype: float to float rounds; float to int truncates
// toward zero, saturates, and maps NaN to 0; int to int wraps; anything to
// bool is x != 0; bool to a number is 0 or 1.
func convert(x *Tensor, t ir.Type) *Tensor {
	out := NewTensor(t)
	from, to := x.Type.DType, t.DType
	for i := range x.Len() {
		switch {
		case from.IsFloat() && to.IsFloat():
			out.F[i] = Round(to, x.F[i])
		case from.IsFloat():
			out.I[i] = FloatToInt(to, x.F[i])
		case to.IsFloat():
			out.F[i] = IntToFloat(to, x.I[i])
		default:
			out.I[i] = RoundInt(to, x.I[i])
		}
	}
	return out
}

// binaryF32 is the fast path of the commonest f32 ops: the same results as
// the general loop (each result rounded to f32), without a call per element.
// It reports whether it handled op.
func binaryF32(op ir.Op, out, x, y []float64) bool {
	var loop func(lo, hi int)
	switch op {
	case ir.OpAdd:
		loop = func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = float64(float32(x[i] + y[i]))
			}
		}
	case ir.OpSub:
		loop = func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = float64(float32(x[i] - y[i]))
			}
		}
	case ir.OpMul:
		loop = func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = float64(float32(x[i] * y[i]))
			}
		}
	case ir.OpDiv:
		loop = func(lo, hi int) {
			for i := lo; i < hi; i++ {
				out[i] = float64(float32(x[i] / y[i]))
			}
		}
	default:
		return false
	}
	parallelFor(len(out), len(out), loop)
	return true
}
