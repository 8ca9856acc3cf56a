package codegen

import (
	"math"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
	"xlc/runtime/interp"
)

// Semantics. f32 add, sub, mul, div, sqrt, recip, max, min, compares and
// conversions are done in float, correctly rounded, so they equal the
// interpreter's. f32 exp, log, tanh and erf are branch-free polynomials in
// float that vectorize (vmath.go), within 2 ulps of Go's double function
// rounded to float. sin, cos, rsqrt and pow are computed in double (libm,
// or libmvec in vectorized loops, within 4 ulps of a double) and rounded
// once, as the interpreter does. f16 and bf16 are computed in double and
// rounded after every op with ir/scalar's rounding. Reductions, the naive
// dot and scatter_add accumulate floats in double and integers in their own
// type (wrapping) and round once; float sums may be reassociated
// (vectorized partial sums), and the fast f32 dot accumulates in float.

// fsuffix is the LLVM intrinsic suffix of a float compute type.
func fsuffix(t types.Type) string {
	if t.Equal(types.Float) {
		return "f32"
	}
	return "f64"
}

// callF calls the float function of one or two arguments: as the
// target's lowering names it (mathSym), an LLVM intrinsic or, with libm
// set, the C library's function.
func (g *kernelBuilder) callF(name string, libm bool, args ...value.Value) value.Value {
	t := args[0].Type()
	ps := make([]types.Type, len(args))
	for i := range ps {
		ps[i] = t
	}
	sym := g.mod.t.lower().mathSym(name, t, libm)
	return g.b.NewCall(g.mod.declare(sym, t, ps...), args...)
}

// fconst is the float constant x of compute type t.
func fconst(t types.Type, x float64) value.Value {
	return constant.NewFloat(t.(*types.FloatType), x)
}

// isHalf reports whether d is computed in double and rounded after each op.
func isHalf(d ir.DType) bool { return d == ir.F16 || d == ir.BF16 }

// inDouble are the f32 ops computed in double and rounded once, as the
// interpreter does: libm's double functions are within an ulp of Go's, so
// the f32 results are (all but always) the interpreter's bit for bit. f32
// exp, log, tanh and erf are not among them: they are computed in float by
// vmath (vmathF32), within 2 ulps of the interpreter, so that their loops
// vectorize. The f32 ops not listed (add, sub, mul, div, sqrt, recip, ...)
// are correctly rounded in float itself.
var inDouble = map[ir.Op]bool{
	ir.OpSin: true, ir.OpCos: true, ir.OpRsqrt: true, ir.OpPow: true,
}

// unary applies a unary elementwise op to x, a compute value of dtype d.
func (g *kernelBuilder) unary(op ir.Op, d ir.DType, x value.Value) value.Value {
	b := g.b
	t := x.Type()
	if !d.IsFloat() {
		zero := constant.NewInt(t.(*types.IntType), 0)
		switch op {
		case ir.OpNeg:
			return b.NewSub(zero, x)
		case ir.OpAbs:
			return b.NewSelect(b.NewICmp(enum.IPredSLT, x, zero), b.NewSub(zero, x), x)
		case ir.OpSign:
			pos := b.NewZExt(b.NewICmp(enum.IPredSGT, x, zero), t)
			neg := b.NewZExt(b.NewICmp(enum.IPredSLT, x, zero), t)
			return b.NewSub(pos, neg)
		case ir.OpNot:
			return b.NewXor(x, constant.NewInt(types.I1, 1))
		case ir.OpStopGradient:
			return x
		}
		fail("%v on %v", op, d)
	}
	if d == ir.F32 && vmathF32[op] {
		return g.vmath(op, x) // in float, vectorizable
	}
	if d == ir.F32 && inDouble[op] {
		return b.NewFPTrunc(g.unary(op, ir.F64, b.NewFPExt(x, types.Double)), types.Float)
	}
	var r value.Value
	exact := false // the result needs no rounding to d
	switch op {
	case ir.OpNeg:
		r, exact = b.NewFNeg(x), true
	case ir.OpAbs:
		r, exact = g.callF("fabs", false, x), true
	case ir.OpExp:
		r = g.callF("exp", false, x)
	case ir.OpLog:
		r = g.callF("log", false, x)
	case ir.OpSqrt:
		r = g.callF("sqrt", false, x)
	case ir.OpRsqrt:
		r = b.NewFDiv(fconst(t, 1), g.callF("sqrt", false, x))
	case ir.OpTanh:
		r = g.callF("tanh", true, x)
	case ir.OpErf:
		r = g.callF("erf", true, x)
	case ir.OpSin:
		r = g.callF("sin", false, x)
	case ir.OpCos:
		r = g.callF("cos", false, x)
	case ir.OpRecip:
		r = b.NewFDiv(fconst(t, 1), x)
	case ir.OpSign:
		pos := b.NewFCmp(enum.FPredOGT, x, fconst(t, 0))
		neg := b.NewFCmp(enum.FPredOLT, x, fconst(t, 0))
		r, exact = b.NewSelect(pos, fconst(t, 1), b.NewSelect(neg, fconst(t, -1), x)), true
	case ir.OpStopGradient:
		return x
	default:
		fail("%v on %v", op, d)
	}
	if exact || !isHalf(d) {
		return r
	}
	return g.roundHalf(d, r)
}

// binary applies a binary elementwise op to compute values of dtype d.
func (g *kernelBuilder) binary(op ir.Op, d ir.DType, x, y value.Value) value.Value {
	b := g.b
	t := x.Type()
	if !d.IsFloat() {
		switch op {
		case ir.OpAdd:
			return b.NewAdd(x, y)
		case ir.OpSub:
			return b.NewSub(x, y)
		case ir.OpMul:
			return b.NewMul(x, y)
		case ir.OpDiv:
			// x/0 is 0 and MIN/-1 wraps to MIN (= -x); the division itself
			// only ever sees a safe divisor, so it cannot trap even when
			// executed speculatively.
			it := t.(*types.IntType)
			zero, one, m1 := constant.NewInt(it, 0), constant.NewInt(it, 1), constant.NewInt(it, -1)
			isZero := b.NewICmp(enum.IPredEQ, y, zero)
			isM1 := b.NewICmp(enum.IPredEQ, y, m1)
			safe := b.NewSelect(b.NewOr(isZero, isM1), one, y)
			q := b.NewSDiv(x, safe)
			return b.NewSelect(isZero, zero, b.NewSelect(isM1, b.NewSub(zero, x), q))
		case ir.OpMax:
			return b.NewSelect(b.NewICmp(enum.IPredSGT, x, y), x, y)
		case ir.OpMin:
			return b.NewSelect(b.NewICmp(enum.IPredSLT, x, y), x, y)
		case ir.OpAnd:
			return b.NewAnd(x, y)
		case ir.OpOr:
			return b.NewOr(x, y)
		}
		fail("%v on %v", op, d)
	}
	if d == ir.F32 && inDouble[op] {
		return b.NewFPTrunc(g.binary(op, ir.F64, b.NewFPExt(x, types.Double), b.NewFPExt(y, types.Double)), types.Float)
	}
	var r value.Value
	exact := false
	switch op {
	case ir.OpAdd:
		r = b.NewFAdd(x, y)
	case ir.OpSub:
		r = b.NewFSub(x, y)
	case ir.OpMul:
		r = b.NewFMul(x, y)
	case ir.OpDiv:
		r = b.NewFDiv(x, y)
	case ir.OpMax:
		r, exact = g.maxMin(true, x, y), true
	case ir.OpMin:
		r, exact = g.maxMin(false, x, y), true
	case ir.OpPow:
		r = g.callF("pow", false, x, y)
	default:
		fail("%v on %v", op, d)
	}
	if exact || !isHalf(d) {
		return r
	}
	return g.roundHalf(d, r)
}

// compare applies a compare op to compute values of dtype d; the result is
// an i1. With NaN every compare but ne is false.
func (g *kernelBuilder) compare(op ir.Op, d ir.DType, x, y value.Value) value.Value {
	b := g.b
	if d.IsFloat() {
		p := map[ir.Op]enum.FPred{ir.OpEq: enum.FPredOEQ, ir.OpNe: enum.FPredUNE, ir.OpLt: enum.FPredOLT,
			ir.OpLe: enum.FPredOLE, ir.OpGt: enum.FPredOGT, ir.OpGe: enum.FPredOGE}[op]
		return b.NewFCmp(p, x, y)
	}
	if d == ir.Bool { // i1 is 0 or 1 unsigned; signed it would be 0 or -1
		p := map[ir.Op]enum.IPred{ir.OpEq: enum.IPredEQ, ir.OpNe: enum.IPredNE, ir.OpLt: enum.IPredULT,
			ir.OpLe: enum.IPredULE, ir.OpGt: enum.IPredUGT, ir.OpGe: enum.IPredUGE}[op]
		return b.NewICmp(p, x, y)
	}
	p := map[ir.Op]enum.IPred{ir.OpEq: enum.IPredEQ, ir.OpNe: enum.IPredNE, ir.OpLt: enum.IPredSLT,
		ir.OpLe: enum.IPredSLE, ir.OpGt: enum.IPredSGT, ir.OpGe: enum.IPredSGE}[op]
	return b.NewICmp(p, x, y)
}

// toDouble widens a float compute value to double (exactly).
func (g *kernelBuilder) toDouble(x value.Value) value.Value {
	if x.Type().Equal(types.Float) {
		return g.b.NewFPExt(x, types.Double)
	}
	return x
}

// roundDouble rounds the double x to the float dtype d, once, and returns
// d's compute value.
func (g *kernelBuilder) roundDouble(d ir.DType, x value.Value) value.Value {
	switch d {
	case ir.F32:
		return g.b.NewFPTrunc(x, types.Float)
	case ir.F64:
		return x
	}
	return g.roundHalf(d, x)
}

// roundHalf rounds the double x to the nearest f16 or bf16 value (ties to
// even, overflow to ±inf, NaN stays NaN), returned as a double: as
// interp.RoundF16/RoundBF16, through a round-to-odd step to float.
func (g *kernelBuilder) roundHalf(d ir.DType, x value.Value) value.Value {
	b := g.b
	f := g.toOddF32(x)
	if d == ir.F16 {
		return b.NewFPExt(b.NewFPTrunc(f, types.Half), types.Double)
	}
	w := b.NewBitCast(f, types.I32)
	isNaN := b.NewICmp(enum.IPredUGT, b.NewAnd(w, i32c(0x7fffffff)), i32c(0x7f800000))
	quiet := b.NewOr(w, i32c(0x00400000))
	lsb := b.NewAnd(b.NewLShr(w, i32c(16)), i32c(1))
	rne := b.NewAdd(b.NewAdd(w, i32c(0x7fff)), lsb)
	r := b.NewAnd(b.NewSelect(isNaN, quiet, rne), i32c(0xffff0000))
	return b.NewFPExt(b.NewBitCast(r, types.Float), types.Double)
}

// toOddF32 rounds the double x to float with round-to-odd (truncate, set
// the low bit when inexact), as interp's toOddF32.
func (g *kernelBuilder) toOddF32(x value.Value) value.Value {
	b := g.b
	r := b.NewFPTrunc(x, types.Float)
	exact := b.NewFCmp(enum.FPredUEQ, b.NewFPExt(r, types.Double), x) // equal, or NaN
	w := b.NewBitCast(r, types.I32)
	ax := g.callF("fabs", false, x)
	ar := g.callF("fabs", false, b.NewFPExt(r, types.Double))
	down := b.NewFCmp(enum.FPredOGT, ar, ax)
	w2 := b.NewSelect(down, b.NewSub(w, i32c(1)), w)
	odd := b.NewBitCast(b.NewOr(w2, i32c(1)), types.Float)
	return b.NewSelect(exact, r, odd)
}

// convert converts the compute value x of dtype from to dtype to, as the
// convert op.
func (g *kernelBuilder) convert(from, to ir.DType, x value.Value) value.Value {
	b := g.b
	if from == to {
		return x
	}
	switch {
	case from == ir.F32 && to == ir.BF16 && g.cvtBF16:
		// fptrunc to bfloat: vcvtneps2bf16, which rounds as roundHalf
		// but reads denormals as zero; those (and zeros) are rounded to
		// nearest even on the bits.
		h := value.Value(b.NewBitCast(b.NewFPTrunc(x, bfloatType{}), types.I16))
		w := b.NewBitCast(x, types.I32)
		den := b.NewICmp(enum.IPredEQ, b.NewAnd(w, i32c(0x7f800000)), i32c(0))
		rne := b.NewAdd(b.NewAdd(w, i32c(0x7fff)), b.NewAnd(b.NewLShr(w, i32c(16)), i32c(1)))
		h = b.NewSelect(den, b.NewTrunc(b.NewLShr(rne, i32c(16)), types.I16), h)
		f := b.NewBitCast(b.NewShl(b.NewZExt(h, types.I32), i32c(16)), types.Float)
		return b.NewFPExt(f, types.Double)
	case from.IsFloat() && to.IsFloat():
		return g.roundDouble(to, g.toDouble(x))
	case from.IsFloat() && to == ir.Bool:
		return b.NewFCmp(enum.FPredUNE, x, fconst(x.Type(), 0))
	case from.IsFloat():
		// Truncate toward zero, saturate, NaN to 0.
		it := computeType(to)
		xd := g.toDouble(x)
		name := "llvm.fptosi.sat." + map[ir.DType]string{ir.I32: "i32", ir.I64: "i64"}[to] + ".f64"
		return b.NewCall(g.mod.declare(name, it, types.Double), xd)
	case to.IsFloat():
		return g.intToFloat(from, to, x)
	case to == ir.Bool:
		return b.NewICmp(enum.IPredNE, x, constant.NewInt(x.Type().(*types.IntType), 0))
	case from == ir.Bool:
		return b.NewZExt(x, computeType(to))
	case from == ir.I64 && to == ir.I32:
		return b.NewTrunc(x, types.I32)
	case from == ir.I32 && to == ir.I64:
		return b.NewSExt(x, types.I64)
	}
	fail("convert %v to %v", from, to)
	return nil
}

// intToFloat converts an integer (or bool) compute value to the float dtype
// to with a single rounding, as interp.IntToFloat.
func (g *kernelBuilder) intToFloat(from, to ir.DType, x value.Value) value.Value {
	b := g.b
	if from == ir.Bool {
		return b.NewUIToFP(x, computeType(to)) // 0 or 1: exact everywhere
	}
	if to == ir.F32 {
		return b.NewSIToFP(x, types.Float)
	}
	return g.roundDouble(to, b.NewSIToFP(x, types.Double))
}

// constValue is the compute value of the constant op's value attribute v
// (int64 or float64) in dtype d, converted as the interpreter does.
func constValue(d ir.DType, v any) value.Value {
	var f float64
	var n int64
	switch v := v.(type) {
	case int64:
		if d.IsFloat() {
			f = interp.IntToFloat(d, v)
		} else {
			n = interp.RoundInt(d, v)
		}
	case float64:
		if d.IsFloat() {
			f = interp.Round(d, v)
		} else {
			n = interp.FloatToInt(d, v)
		}
	default:
		fail("constant: want a numeric value, have %T", v)
	}
	if d.IsFloat() {
		return fconst(computeType(d), f)
	}
	return constant.NewInt(computeType(d).(*types.IntType), n)
}

// zeroValue is the compute value 0 (false) of dtype d.
func zeroValue(d ir.DType) value.Value { return constValue(d, int64(0)) }

// minValue is the identity of max in dtype d: -inf or the integer minimum.
func minValue(d ir.DType) value.Value {
	switch {
	case d.IsFloat():
		return fconst(computeType(d), math.Inf(-1))
	case d == ir.I32:
		return constValue(d, int64(math.MinInt32))
	}
	return constValue(d, int64(math.MinInt64))
}

// maxMin is Go's math.Max (isMax) or math.Min of two float compute values:
// an infinity of the winning sign beats NaN, NaN beats everything else, and
// max(-0, +0) = +0, min(-0, +0) = -0. Selects only, so it vectorizes.
func (g *kernelBuilder) maxMin(isMax bool, x, y value.Value) value.Value {
	b := g.b
	t := x.Type()
	it := types.I64
	if t.Equal(types.Float) {
		it = types.I32
	}
	xb, yb := b.NewBitCast(x, it), b.NewBitCast(y, it)
	pred, inf := enum.FPredOGT, math.Inf(1)
	var same value.Value = b.NewAnd(xb, yb) // equal values: ±0 gives +0
	if !isMax {
		pred, inf = enum.FPredOLT, math.Inf(-1)
		same = b.NewOr(xb, yb) // ±0 gives -0
	}
	r := b.NewSelect(b.NewFCmp(pred, x, y), x, b.NewSelect(b.NewFCmp(enum.FPredOEQ, x, y), b.NewBitCast(same, t), y))
	r = b.NewSelect(b.NewFCmp(enum.FPredUNO, x, y), fconst(t, math.NaN()), r)
	hasInf := b.NewOr(b.NewFCmp(enum.FPredOEQ, x, fconst(t, inf)), b.NewFCmp(enum.FPredOEQ, y, fconst(t, inf)))
	return b.NewSelect(hasInf, fconst(t, inf), r)
}
