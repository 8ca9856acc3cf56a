package codegen

import (
	"math"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Branch-free float (f32) exp, log, tanh and erf. Each is straight-line IR:
// fma, fmul, fadd, fdiv, select, bitcasts and integer ops on the bits, and
// the llvm.fma/fabs/copysign intrinsics, so opt's loop vectorizer turns an
// elementwise loop over them into vector code (a scalar call to a double
// libm function does not vectorize). They are not the interpreter's results
// bit for bit: the maximal errors below are against Go's float64 function
// rounded to float32, in float32 ulps (the integer distance between the two
// floats), and in brackets against the double result itself in ulps of
// the rounded one, measured by a float model of the code (vmath_fit.go)
// over every 7th float32 bit pattern of the interesting range, both signs
// (3·10^8 inputs each; 6·10^8 over all floats for log), and checked on the
// compiled code by TestVectorMath (5.5·10^6 inputs).
//
// The coefficients are float32 bit patterns fitted by vmath_fit.go (Lawson's
// iteratively reweighted least squares, a near-minimax fit, on Chebyshev
// nodes in float64, then rounded to float32): go run codegen/vmath_fit.go.

// vmathF32 are the f32 ops that vmath computes in float.
var vmathF32 = map[ir.Op]bool{ir.OpExp: true, ir.OpLog: true, ir.OpTanh: true, ir.OpErf: true}

var (
	// expPoly: e^r = 1 + r + r²·P(r) on |r| ≤ 0.35, P's coefficients from r⁰.
	expPoly = []uint32{0x3efffffe, 0x3e2aaa45, 0x3d2aac8b, 0x3c091fdb, 0x3ab50d45}
	// logPoly: log(1+f) = f - f²/2 + f³·P(f) on √½-1 ≤ f ≤ √2-1.
	logPoly = []uint32{0x3eaaaaaa, 0xbe800114, 0x3e4cd004, 0xbe2a3921, 0x3e116d10, 0xbe06c2ac, 0x3e02adaf, 0xbd9c5a76}
	// erfPoly: erf(a) = a·P(a²) on 0 ≤ a ≤ erfSmall; P(0) ≈ 2/√π.
	erfPoly = []uint32{0x3f906ebb, 0xbec093a3, 0x3de7178e, 0xbcdc15fc, 0x3bab2472, 0xba5f4226, 0x38f2514e, 0xb7330f22}
	// erfcLog: log(erfc(a)) = Q(a - erfSmall) on erfSmall ≤ a ≤ erfMax.
	erfcLog = []uint32{0xbfc43397, 0xc01b88b8, 0xbf53983c, 0xbd4016a5, 0x3c39923a, 0xbb0d2269, 0x396596b7,
		0x381dd95f, 0xb7c21191, 0x36a1509e, 0xb4d86e5e}
)

const (
	tanhSmall = 0.55  // tanh is h - h²/(1+h) below, h/(1+h) above
	tanhMax   = 9.5   // tanh(a) rounds to 1 beyond
	erfSmall  = 0.875 // erf's polynomial below, 1 - e^Q above
	erfMax    = 4     // erf(a) rounds to 1 beyond
	expMagic  = 0x1.8p23
)

// f32c is the float constant of the bit pattern u.
func f32c(u uint32) value.Value {
	return fconst(types.Float, float64(math.Float32frombits(u)))
}

// fc is the float constant x (exact in float).
func fc(x float32) value.Value { return fconst(types.Float, float64(x)) }

func (g *kernelBuilder) fma(a, b, c value.Value) value.Value { return g.callF("fma", false, a, b, c) }

// horner is P(t) = c[0] + t·(c[1] + t·(...)) with fmas.
func (g *kernelBuilder) horner(c []uint32, t value.Value) value.Value {
	p := f32c(c[len(c)-1])
	for k := len(c) - 2; k >= 0; k-- {
		p = g.fma(p, t, f32c(c[k]))
	}
	return p
}

// fselect is select(x pred y, a, b) on floats.
func (g *kernelBuilder) fselect(pred enum.FPred, x, y, a, b value.Value) value.Value {
	return g.b.NewSelect(g.b.NewFCmp(pred, x, y), a, b)
}

// vmath computes the f32 op (in vmathF32) of x.
func (g *kernelBuilder) vmath(op ir.Op, x value.Value) value.Value {
	switch op {
	case ir.OpExp:
		return g.expF32(x)
	case ir.OpLog:
		return g.logF32(x)
	case ir.OpTanh:
		return g.tanhF32(x)
	}
	return g.erfF32(x)
}

// expCore is e^x for x in [-104, 89] (NaN gives NaN): expReduce's e^r = 1
// + q, scaled by 2^n in two factors 2^⌊n/2⌋·2^(n-⌊n/2⌋), both normal, so
// that subnormal results round once and 2^128 overflows to +inf.
func (g *kernelBuilder) expCore(x value.Value) value.Value {
	b := g.b
	ni, q := g.expReduce(x)
	y := b.NewFAdd(fc(1), q)
	n1 := b.NewAShr(ni, i32c(1))
	n2 := b.NewSub(ni, n1)
	s1, s2 := g.pow2(n1, 0), g.pow2(n2, 0)
	return b.NewFMul(b.NewFMul(y, s1), s2)
}

// expReduce splits e^x as 2^n·(1 + q): n = round(x/ln2) by adding 1.5·2^23
// (its integer in the low bits), r = x - n·ln2 in two fmas (ln2 split into
// float hi and lo parts) and q = e^r - 1 = r + r²·P(r). It returns n as
// an i32 and q.
func (g *kernelBuilder) expReduce(x value.Value) (ni, q value.Value) {
	b := g.b
	magic := fc(expMagic)
	t := g.fma(x, fc(float32(math.Log2E)), magic)
	n := b.NewFSub(t, magic)
	ni = b.NewSub(b.NewBitCast(t, types.I32), b.NewBitCast(magic, types.I32))
	ln2hi := float32(math.Ln2)
	ln2lo := float32(math.Ln2 - float64(ln2hi))
	nn := b.NewFNeg(n)
	r := g.fma(nn, fc(ln2hi), x)
	r = g.fma(nn, fc(ln2lo), r)
	return ni, g.fma(g.horner(expPoly, r), b.NewFMul(r, r), r)
}

// pow2 is the float 2^(n+k) for an i32 n with n+k a normal exponent.
func (g *kernelBuilder) pow2(n value.Value, k int64) value.Value {
	b := g.b
	return b.NewBitCast(b.NewShl(b.NewAdd(n, i32c(127+k)), i32c(23)), types.Float)
}

// expF32 is e^x: expCore of x clamped to at most 89 (e^89 rounds to +inf),
// and 0 below -104 (where e^x rounds to 0), selected rather than computed:
// a masked score (-1e9) would otherwise scale through a subnormal, which
// costs a microcode assist per element on Intel cores. Max error 1 ulp
// (1.006).
func (g *kernelBuilder) expF32(x value.Value) value.Value {
	under := g.b.NewFCmp(enum.FPredOLT, x, fc(-104))
	xc := g.fselect(enum.FPredOGT, x, fc(89), fc(89), x)
	xc = g.b.NewSelect(under, fc(0), xc)
	return g.b.NewSelect(under, fc(0), g.expCore(xc))
}

// logF32 is log x: a subnormal x is scaled by 2^23 first; x = 2^e·m with m
// in [√½, √2) from the bits (subtracting √½'s bits moves the exponent
// boundary there), f = m - 1 (exact), log(1+f) = f - f²/2 + f³·P(f), plus
// e·ln2 in two fmas (ln2 split). 0 and -0 give -inf, x < 0 NaN, +inf +inf,
// NaN NaN. Max error 1 ulp (0.93).
func (g *kernelBuilder) logF32(x value.Value) value.Value {
	b := g.b
	sub := b.NewFCmp(enum.FPredOLT, x, fc(0x1p-126))
	xs := b.NewSelect(sub, b.NewFMul(x, fc(0x1p23)), x)
	w := b.NewSub(b.NewBitCast(xs, types.I32), i32c(0x3f3504f3))
	var e value.Value = b.NewSIToFP(b.NewAShr(w, i32c(23)), types.Float)
	e = b.NewFSub(e, b.NewSelect(sub, fc(23), fc(0)))
	m := b.NewBitCast(b.NewAdd(b.NewAnd(w, i32c(0x7fffff)), i32c(0x3f3504f3)), types.Float)
	f := b.NewFSub(m, fc(1))
	q := g.fma(g.horner(logPoly, f), f, fc(-0.5))
	y := g.fma(q, b.NewFMul(f, f), f)
	ln2hi := float32(math.Ln2)
	ln2lo := float32(math.Ln2 - float64(ln2hi))
	r := g.fma(e, fc(ln2hi), g.fma(e, fc(ln2lo), y))
	inf := fc(float32(math.Inf(1)))
	r = g.fselect(enum.FPredUEQ, x, inf, x, r) // +inf, NaN
	r = g.fselect(enum.FPredOLT, x, fc(0), fc(float32(math.NaN())), r)
	return g.fselect(enum.FPredOEQ, x, fc(0), fc(float32(math.Inf(-1))), r)
}

// tanhF32 is tanh x, computed for a = |x| (clamped to 9.5, beyond which
// tanh rounds to 1) and given x's sign (so tanh(-0) is -0): with h =
// (e^2a - 1)/2 from expReduce, h = 2^(n-1)·q + (2^(n-1) - ½) in one fma,
// tanh a = h/(1+h), and below 0.55 h - h·h/(1+h), where the quotient's
// rounding error is scaled down by h. Max error 2 ulp (1.81).
func (g *kernelBuilder) tanhF32(x value.Value) value.Value {
	b := g.b
	a := g.callF("fabs", false, x)
	ac := g.fselect(enum.FPredOGT, a, fc(tanhMax), fc(tanhMax), a)
	ni, q := g.expReduce(b.NewFMul(fc(2), ac))
	s := g.pow2(ni, -1)
	h := g.fma(s, q, b.NewFSub(s, fc(0.5)))
	quo := b.NewFDiv(h, b.NewFAdd(fc(1), h))
	small := g.fma(b.NewFNeg(h), quo, h)
	r := g.fselect(enum.FPredOLT, a, fc(tanhSmall), small, quo)
	return g.callF("copysign", false, r, x)
}

// erfF32 is erf x, computed for a = |x| and given x's sign: a·P(a²) for
// a < 0.875, with P(0) as float hi plus lo parts so that erf(x) ≈ 2x/√π
// keeps full accuracy; else 1 - e^Q(a-0.875) with Q fitted to log erfc on
// [0.875, 4] and a clamped to 4 (erf rounds to 1 beyond 3.92). Max error
// 1 ulp (1.03).
func (g *kernelBuilder) erfF32(x value.Value) value.Value {
	b := g.b
	a := g.callF("fabs", false, x)
	t := b.NewFMul(a, a)
	c0 := math.Float32frombits(erfPoly[0])
	c0lo := float32(2/math.SqrtPi - float64(c0))
	q := g.fma(t, g.horner(erfPoly[1:], t), fc(c0lo))
	small := g.fma(a, fc(c0), b.NewFMul(a, q))
	ac := g.fselect(enum.FPredOGT, a, fc(erfMax), fc(erfMax), a)
	e := g.expCore(g.horner(erfcLog, b.NewFSub(ac, fc(erfSmall))))
	big := b.NewFSub(fc(1), e)
	r := g.fselect(enum.FPredOLT, a, fc(erfSmall), small, big)
	return g.callF("copysign", false, r, x)
}
