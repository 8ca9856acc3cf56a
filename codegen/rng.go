package codegen

import (
	"math"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// philox emits Philox4x32-10 of key (k0, k1) and counter c (i32 values).
func (g *kernelBuilder) philox(k0, k1 value.Value, c [4]value.Value) [4]value.Value {
	b := g.b
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 = b.NewAdd(k0, i32c(ir.PhiloxW0))
			k1 = b.NewAdd(k1, i32c(ir.PhiloxW1))
		}
		p0 := b.NewMul(b.NewZExt(c[0], types.I64), i64c(ir.PhiloxM0))
		p1 := b.NewMul(b.NewZExt(c[2], types.I64), i64c(ir.PhiloxM1))
		hi := func(p value.Value) value.Value { return b.NewTrunc(b.NewLShr(p, i64c(32)), types.I32) }
		c = [4]value.Value{
			b.NewXor(b.NewXor(hi(p1), c[1]), k0), b.NewTrunc(p1, types.I32),
			b.NewXor(b.NewXor(hi(p0), c[3]), k1), b.NewTrunc(p0, types.I32),
		}
	}
	return c
}

// rngSetup returns the key words of an rng instruction's seed operand.
func (g *kernelBuilder) rngKey(v *ir.Value) (k0, k1 value.Value) {
	seed := g.elem(v.Args[0], atDims(ir.Shape{}, nil))
	k0 = g.b.NewTrunc(seed, types.I32)
	k1 = g.b.NewTrunc(g.b.NewLShr(seed, i64c(32)), types.I32)
	return k0, k1
}

// rngUniforms returns the four uniforms (in [0, 1), 32 random bits each)
// of Philox block blk of v's stream, as values of t (double, or float:
// converting the word to float and scaling by 2^-32 rounds as converting
// the double to float does, the scaling being exact).
func (g *kernelBuilder) rngUniforms(v *ir.Value, k0, k1, blk value.Value, t types.Type) [4]value.Value {
	stream := uint64(int64(v.Attrs.Int("stream")))
	b := g.b
	ctr := [4]value.Value{
		b.NewTrunc(blk, types.I32), b.NewTrunc(b.NewLShr(blk, i64c(32)), types.I32),
		i32c(int64(uint32(stream))), i32c(int64(uint32(stream >> 32))),
	}
	w := g.philox(k0, k1, ctr)
	var u [4]value.Value
	for i := range u {
		u[i] = b.NewFMul(b.NewUIToFP(w[i], t), fconst(t, 0x1p-32))
	}
	return u
}

// boxMuller returns r·cos(2π u1) and r·sin(2π u1) with r = sqrt(-2 ln(1-u0)),
// as interp.Normal.
func (g *kernelBuilder) boxMuller(u0, u1 value.Value) (z0, z1 value.Value) {
	b := g.b
	l := g.callF("log", false, b.NewFSub(fconst(types.Double, 1), u0))
	r := g.callF("sqrt", false, b.NewFMul(fconst(types.Double, -2), l))
	th := b.NewFMul(fconst(types.Double, 2*math.Pi), u1)
	return b.NewFMul(r, g.callF("cos", false, th)), b.NewFMul(r, g.callF("sin", false, th))
}

// rngRound rounds a double from the stream to v's dtype; uniform values that
// round up to 1 become the largest value below 1, as the interpreter.
func (g *kernelBuilder) rngRound(v *ir.Value, x value.Value) value.Value {
	x = g.roundDouble(v.Type.DType, x)
	if v.Attrs.String("dist") == "normal" {
		return x
	}
	return g.below1(v, x)
}

// below1 replaces a uniform x of v's dtype that rounded up to 1 by the
// largest value below 1.
func (g *kernelBuilder) below1(v *ir.Value, x value.Value) value.Value {
	below1 := map[ir.DType]float64{ir.F64: 1 - 0x1p-53, ir.F32: 1 - 0x1p-24, ir.F16: 1 - 0x1p-11, ir.BF16: 1 - 0x1p-8}[v.Type.DType]
	t := x.Type()
	one := g.b.NewFCmp(enum.FPredOGE, x, fconst(t, 1))
	return g.b.NewSelect(one, fconst(t, below1), x)
}

// elemRng computes one element i of an rng: word i%4 of block i/4 (uniform),
// or the cosine (even i) or sine (odd i) of the pair i&^1 (normal).
func (g *kernelBuilder) elemRng(v *ir.Value, ix *index) value.Value {
	b := g.b
	k0, k1 := g.rngKey(v)
	lin := g.linear(ix)
	blk := b.NewLShr(lin, i64c(2))
	word := b.NewAnd(lin, i64c(3))
	pick := func(w value.Value, xs [4]value.Value) value.Value {
		r := xs[3]
		for i := 2; i >= 0; i-- {
			r = b.NewSelect(b.NewICmp(enum.IPredEQ, w, i64c(int64(i))), xs[i], r)
		}
		return r
	}
	if v.Attrs.String("dist") != "normal" {
		return pick(word, g.rngBlock(v, k0, k1, blk))
	}
	u := g.rngUniforms(v, k0, k1, blk, types.Double)
	first := b.NewICmp(enum.IPredULT, word, i64c(2))
	u0 := b.NewSelect(first, u[0], u[2])
	u1 := b.NewSelect(first, u[1], u[3])
	z0, z1 := g.boxMuller(u0, u1)
	odd := b.NewICmp(enum.IPredNE, b.NewAnd(word, i64c(1)), i64c(0))
	return g.rngRound(v, b.NewSelect(odd, z1, z0))
}

// emitRng: the parallel range is the blocks of four values; block b is the
// Philox block with key (seed low, seed high) and counter (b low, b high,
// stream low, stream high), so value i is word i%4 of block i/4, as
// interp.Uniform. Normal values come in pairs from the same block by
// Box–Muller, as interp.Normal.
func (g *kernelBuilder) emitRng(v *ir.Value) (extent, cost int64) {
	n := int64(v.Type.Shape.NumElements())
	if n == 0 {
		return 0, 1
	}
	k0, k1 := g.rngKey(v)
	put := func(z, at value.Value) { g.storeAt(v.Type.DType, z, g.out, at) }
	g.forLoop("block", g.lo, g.hi, func(blk value.Value) {
		g.storeBlock(v, k0, k1, blk, nil, i64c(n), n%4 == 0, put)
	})
	return (n + 3) / 4, 100
}

// rngBlock returns the four values of block blk of v's stream, rounded to
// v's dtype.
func (g *kernelBuilder) rngBlock(v *ir.Value, k0, k1, blk value.Value) [4]value.Value {
	if v.Type.DType == ir.F32 && v.Attrs.String("dist") != "normal" {
		z := g.rngUniforms(v, k0, k1, blk, types.Float)
		for i := range z {
			z[i] = g.below1(v, z[i])
		}
		return z
	}
	z := g.rngUniforms(v, k0, k1, blk, types.Double)
	if v.Attrs.String("dist") == "normal" {
		z[0], z[1] = g.boxMuller(z[0], z[1])
		z[2], z[3] = g.boxMuller(z[2], z[3])
	}
	for i := range z {
		z[i] = g.rngRound(v, z[i])
	}
	return z
}

// storeBlock puts each value of block blk of v's stream that lies in
// [from, to) (from nil: 0) with its linear index; whole says every one
// does.
func (g *kernelBuilder) storeBlock(v *ir.Value, k0, k1, blk, from, to value.Value, whole bool, put func(z, at value.Value)) {
	z := g.rngBlock(v, k0, k1, blk)
	first := g.b.NewMul(blk, i64c(4))
	for i := range z {
		at := g.b.NewAdd(first, i64c(int64(i)))
		if whole {
			put(z[i], at)
			continue
		}
		in := value.Value(g.b.NewICmp(enum.IPredSLT, at, to))
		if from != nil {
			in = g.b.NewAnd(g.b.NewICmp(enum.IPredSGE, at, from), in)
		}
		g.ifThen("in", in, func() { put(z[i], at) })
	}
}

// fillRng puts v's values at linear indices [from, to) with their
// indices: the whole blocks inside the range first, then the one or two it
// cuts.
func (g *kernelBuilder) fillRng(v *ir.Value, from, to value.Value, put func(z, at value.Value)) {
	b := g.b
	k0, k1 := g.rngKey(v)
	lo := b.NewSDiv(b.NewAdd(from, i64c(3)), i64c(4))
	hi := b.NewSDiv(to, i64c(4))
	g.forLoop("draw", lo, b.NewSelect(b.NewICmp(enum.IPredSLT, lo, hi), hi, lo), func(blk value.Value) {
		g.storeBlock(v, k0, k1, blk, from, to, true, put)
	})
	head := b.NewSDiv(from, i64c(4))
	g.ifThen("head", b.NewICmp(enum.IPredSLT, head, lo), func() {
		g.storeBlock(v, k0, k1, head, from, to, false, put)
	})
	g.ifThen("tail", b.NewAnd(b.NewICmp(enum.IPredSGE, hi, lo), b.NewICmp(enum.IPredSLT, b.NewMul(hi, i64c(4)), to)), func() {
		g.storeBlock(v, k0, k1, hi, from, to, false, put)
	})
}
