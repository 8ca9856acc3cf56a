package passes

import (
	"math"

	"xlc/ir"
	"xlc/ir/scalar"
)

// fold replaces an instruction whose operands are all splat constants with a
// splat constant of its result type. Values are computed in float64 (integers
// in int64) and rounded once to the result dtype: f32 and f64 with Go's
// conversions, f16 and bf16 round to nearest even, integers wrap. Folding is
// skipped where the result would depend on the target: integer division by
// zero or overflowing, float-to-integer conversion of NaN, an infinity or a
// value out of range, and reduce_max over an empty axis. reduce_sum of a
// splat is value*count, the exact sum, rounded once. select is left to
// identity, stop_gradient is never removed, and neg, abs and sign of bool
// are left to the backend.
func fold(v *ir.Value) (*ir.Value, bool) {
	if len(v.Args) == 0 || v.Op == ir.OpSelect || v.Op == ir.OpStopGradient {
		return nil, false
	}
	for _, a := range v.Args {
		if a.Op != ir.OpConstant {
			return nil, false
		}
	}
	x := v.Args[0]
	in, out := x.Type.DType, v.Type.DType
	switch v.Op {
	case ir.OpBroadcast, ir.OpReshape, ir.OpTranspose, ir.OpSlice:
		return &ir.Value{Op: ir.OpConstant, Type: cloneType(v.Type), Attrs: x.Attrs, ID: newID}, true
	case ir.OpReduceMax:
		if reducedCount(x.Type, v.Attrs.Ints("axes")) == 0 {
			return nil, false
		}
		return &ir.Value{Op: ir.OpConstant, Type: cloneType(v.Type), Attrs: x.Attrs, ID: newID}, true
	case ir.OpReduceSum:
		n := reducedCount(x.Type, v.Attrs.Ints("axes"))
		if in.IsFloat() {
			return constant(v.Type, roundTo(out, constFloat(x)*float64(n))), true
		}
		return constant(v.Type, wrap(out, constInt(x)*int64(n))), true
	case ir.OpConvert:
		return foldConvert(v, x)
	}
	if !v.Op.IsElementwise() {
		return nil, false
	}
	compare := v.Op.Class() == ir.ClassCompare
	if in.IsFloat() {
		a := constFloat(x)
		var b float64
		if len(v.Args) == 2 {
			b = constFloat(v.Args[1])
		}
		r, ok := evalFloat(v.Op, a, b)
		if !ok {
			return nil, false
		}
		if compare {
			return constant(v.Type, int64(r)), true
		}
		return constant(v.Type, roundTo(out, r)), true
	}
	a := constInt(x)
	var b int64
	if len(v.Args) == 2 {
		b = constInt(v.Args[1])
	}
	r, ok := evalInt(v.Op, in, a, b)
	if !ok {
		return nil, false
	}
	return constant(v.Type, wrap(out, r)), true
}

func foldConvert(v, x *ir.Value) (*ir.Value, bool) {
	in, out := x.Type.DType, v.Type.DType
	if in.IsFloat() {
		a := constFloat(x)
		switch {
		case out.IsFloat():
			return constant(v.Type, roundTo(out, a)), true
		case math.IsNaN(a):
			return nil, false
		case out == ir.Bool:
			return constant(v.Type, b2i(a != 0)), true
		}
		t := math.Trunc(a)
		if out == ir.I32 && (t < math.MinInt32 || t > math.MaxInt32) || t < -(1<<63) || t >= 1<<63 {
			return nil, false // also catches ±inf
		}
		return constant(v.Type, int64(t)), true
	}
	a := constInt(x)
	if out.IsFloat() {
		if a > 1<<53 || a < -(1<<53) {
			return nil, false // float64 would round it before the dtype does
		}
		return constant(v.Type, roundTo(out, float64(a))), true
	}
	return constant(v.Type, wrap(out, a)), true
}

// constant returns a new, unplaced splat constant of type t. val is a float64
// for float types and an int64 otherwise.
func constant(t ir.Type, val any) *ir.Value {
	return &ir.Value{Op: ir.OpConstant, Type: cloneType(t), Attrs: ir.Attrs{}.Set("value", val), ID: newID}
}

func cloneType(t ir.Type) ir.Type { return ir.Type{DType: t.DType, Shape: t.Shape.Clone()} }

// isConst reports whether v is a splat constant equal to c.
func isConst(v *ir.Value, c float64) bool {
	if v.Op != ir.OpConstant {
		return false
	}
	if v.Type.DType.IsFloat() {
		return constFloat(v) == c
	}
	return float64(constInt(v)) == c
}

// constFloat is the value of a float constant, rounded to its dtype: the
// attribute may hold more precision than the dtype has.
func constFloat(v *ir.Value) float64 {
	return roundTo(v.Type.DType, v.Attrs.Float("value"))
}

// constInt is the value of an integer or bool constant.
func constInt(v *ir.Value) int64 {
	val, _ := v.Attrs.Get("value")
	switch n := val.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

func reducedCount(t ir.Type, axes []int) int {
	n := 1
	for _, a := range axes {
		n *= t.Shape[a]
	}
	return n
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// evalFloat applies a float elementwise op to scalars; compares give 0 or 1.
func evalFloat(op ir.Op, a, b float64) (float64, bool) {
	switch op {
	case ir.OpNeg:
		return -a, true
	case ir.OpAbs:
		return math.Abs(a), true
	case ir.OpExp:
		return math.Exp(a), true
	case ir.OpLog:
		return math.Log(a), true
	case ir.OpSqrt:
		return math.Sqrt(a), true
	case ir.OpRsqrt:
		return 1 / math.Sqrt(a), true
	case ir.OpTanh:
		return math.Tanh(a), true
	case ir.OpErf:
		return math.Erf(a), true
	case ir.OpSin:
		return math.Sin(a), true
	case ir.OpCos:
		return math.Cos(a), true
	case ir.OpRecip:
		return 1 / a, true
	case ir.OpSign:
		switch {
		case a > 0:
			return 1, true
		case a < 0:
			return -1, true
		}
		return a, true // ±0 and NaN
	case ir.OpAdd:
		return a + b, true
	case ir.OpSub:
		return a - b, true
	case ir.OpMul:
		return a * b, true
	case ir.OpDiv:
		return a / b, true
	case ir.OpMax: // NaN-propagating, as in XLA
		return math.Max(a, b), true
	case ir.OpMin:
		return math.Min(a, b), true
	case ir.OpPow:
		return math.Pow(a, b), true
	}
	if r, ok := compare(op, a, b); ok {
		return b2f(r), true
	}
	return 0, false
}

// evalInt applies an integer or bool elementwise op to scalars of dtype d;
// the caller wraps the result to the result dtype.
func evalInt(op ir.Op, d ir.DType, a, b int64) (int64, bool) {
	if d == ir.Bool {
		switch op {
		case ir.OpNot:
			return b2i(a == 0), true
		case ir.OpAnd:
			return b2i(a != 0 && b != 0), true
		case ir.OpOr:
			return b2i(a != 0 || b != 0), true
		}
		if op.Class() != ir.ClassCompare {
			return 0, false // neg, abs, sign of bool: leave them to the backend
		}
	}
	switch op {
	case ir.OpNeg:
		return -a, true
	case ir.OpAbs:
		if a < 0 {
			return -a, true
		}
		return a, true
	case ir.OpSign:
		return b2i(a > 0) - b2i(a < 0), true
	case ir.OpAdd:
		return a + b, true
	case ir.OpSub:
		return a - b, true
	case ir.OpMul:
		return a * b, true
	case ir.OpDiv:
		if b == 0 || b == -1 && (a == math.MinInt64 || d == ir.I32 && a == math.MinInt32) {
			return 0, false // traps or is undefined on the target
		}
		return a / b, true
	case ir.OpMax:
		return max(a, b), true
	case ir.OpMin:
		return min(a, b), true
	}
	if r, ok := compare(op, a, b); ok {
		return b2i(r), true
	}
	return 0, false
}

// compare applies a compare op; with NaN every compare but ne is false.
func compare[T int64 | float64](op ir.Op, a, b T) (result, ok bool) {
	switch op {
	case ir.OpEq:
		return a == b, true
	case ir.OpNe:
		return a != b, true
	case ir.OpLt:
		return a < b, true
	case ir.OpLe:
		return a <= b, true
	case ir.OpGt:
		return a > b, true
	case ir.OpGe:
		return a >= b, true
	}
	return false, false
}

// wrap reduces an integer to dtype d: two's complement for i32, 0 or 1 for
// bool.
func wrap(d ir.DType, x int64) int64 {
	switch d {
	case ir.I32:
		return int64(int32(x))
	case ir.Bool:
		return b2i(x != 0)
	}
	return x
}

// roundTo rounds x to the nearest value of float dtype d (scalar.Round);
// other dtypes keep x.
func roundTo(d ir.DType, x float64) float64 {
	if !d.IsFloat() {
		return x
	}
	return scalar.Round(d, x)
}
