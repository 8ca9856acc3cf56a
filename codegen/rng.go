package codegen

import (
	"math"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// The Philox4x32 multipliers and Weyl key increments, as runtime/interp.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// philox emits Philox4x32-10 of key (k0, k1) and counter c (i32 values).
func (g *kgen) philox(k0, k1 value.Value, c [4]value.Value) [4]value.Value {
	b := g.b
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 = b.NewAdd(k0, i32c(philoxW0))
			k1 = b.NewAdd(k1, i32c(philoxW1))
		}
		p0 := b.NewMul(b.NewZExt(c[0], types.I64), i64c(philoxM0))
		p1 := b.NewMul(b.NewZExt(c[2], types.I64), i64c(philoxM1))
		hi := func(p value.Value) value.Value { return b.NewTrunc(b.NewLShr(p, i64c(32)), types.I32) }
		c = [4]value.Value{
			b.NewXor(b.NewXor(hi(p1), c[1]), k0), b.NewTrunc(p1, types.I32),
			b.NewXor(b.NewXor(hi(p0), c[3]), k1), b.NewTrunc(p0, types.I32),
		}
	}
	return c
}

// emitRng: the parallel range is the blocks of four values; block b is the
// Philox block with key (seed low, seed high) and counter (b low, b high,
// stream low, stream high), so value i is word i%4 of block i/4, as
// interp.Uniform. Normal values come in pairs from the same block by
// Box–Muller, as interp.Normal.
func (g *kgen) emitRng(v *ir.Value) (extent, cost int64) {
	d := v.Type.DType
	n := int64(v.Type.Shape.NumElements())
	if n == 0 {
		return 0, 1
	}
	stream := uint64(int64(v.Attrs.Int("stream")))
	normal := v.Attrs.String("dist") == "normal"
	blocks := (n + 3) / 4
	seed := g.elem(v.Args[0], atDims(ir.Shape{}, nil))
	k0 := g.b.NewTrunc(seed, types.I32)
	k1 := g.b.NewTrunc(g.b.NewLShr(seed, i64c(32)), types.I32)
	below1 := map[ir.DType]float64{ir.F64: 1 - 0x1p-53, ir.F32: 1 - 0x1p-24, ir.F16: 1 - 0x1p-11, ir.BF16: 1 - 0x1p-8}[d]
	g.forLoop("block", g.lo, g.hi, func(blk value.Value) {
		b := g.b
		ctr := [4]value.Value{
			b.NewTrunc(blk, types.I32), b.NewTrunc(b.NewLShr(blk, i64c(32)), types.I32),
			i32c(int64(uint32(stream))), i32c(int64(uint32(stream >> 32))),
		}
		w := g.philox(k0, k1, ctr)
		var u [4]value.Value
		for i := range u {
			u[i] = b.NewFMul(b.NewUIToFP(w[i], types.Double), fconst(types.Double, 0x1p-32))
		}
		var z [4]value.Value
		if normal {
			for j := 0; j < 4; j += 2 {
				l := g.callF("log", false, b.NewFSub(fconst(types.Double, 1), u[j]))
				r := g.callF("sqrt", false, b.NewFMul(fconst(types.Double, -2), l))
				th := b.NewFMul(fconst(types.Double, 2*math.Pi), u[j+1])
				z[j] = b.NewFMul(r, g.callF("cos", false, th))
				z[j+1] = b.NewFMul(r, g.callF("sin", false, th))
			}
			for i := range z {
				z[i] = g.roundDouble(d, z[i])
			}
		} else {
			for i := range z {
				x := g.roundDouble(d, u[i])
				t := x.Type()
				one := b.NewFCmp(enum.FPredOGE, x, fconst(t, 1))
				z[i] = b.NewSelect(one, fconst(t, below1), x)
			}
		}
		first := b.NewMul(blk, i64c(4))
		for i := range z {
			at := g.b.NewAdd(first, i64c(int64(i)))
			if n%4 == 0 {
				g.storeAt(d, z[i], g.out, at)
				continue
			}
			g.ifThen("in", g.b.NewICmp(enum.IPredSLT, at, i64c(n)), func() {
				g.storeAt(d, z[i], g.out, at)
			})
		}
	})
	return blocks, 100
}
