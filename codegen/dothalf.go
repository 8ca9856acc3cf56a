package codegen

import (
	"fmt"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Half precision operands: a bf16 or f16 A or B is read as 2-byte
// elements and converted to f32 as it is packed (DotSpec.AType, BType);
// the packed panels, the micro-kernels and C are f32. bf16 widens exactly
// by a shift into the high half of an f32 (vpmovzxwd and vpslld by
// vectors, punpcklwd with zeros on plain x86-64); f16 by fpext, which llc
// lowers to F16C's vcvtph2ps on x86-64-v3 and v4, fcvtl on aarch64 and a
// libcall per element (__extendhfsf2) on plain x86-64.

// dotOperandType reports whether d is a type DotSpec's A or B may have:
// the zero value (f32), f32, bf16 or f16.
func dotOperandType(d ir.DType) bool {
	return d == 0 || d == ir.F32 || d == ir.BF16 || d == ir.F16
}

// dotType is an operand's type, F32 for the zero value.
func dotType(d ir.DType) ir.DType {
	if d == 0 {
		return ir.F32
	}
	return d
}

func (s DotSpec) aType() ir.DType { return dotType(s.AType) }
func (s DotSpec) bType() ir.DType { return dotType(s.BType) }
func (s DotSpec) halfA() bool     { return s.aType() != ir.F32 }
func (s DotSpec) halfB() bool     { return s.bType() != ir.F32 }

// dotElem is the LLVM type of an operand's elements in memory: float, or
// i16 for a half type.
func dotElem(d ir.DType) types.Type {
	if dotType(d) == ir.F32 {
		return gemmF32
	}
	return types.I16
}

// gepT is gep on a buffer of elements of operand type d.
func (g *gemmGen) gepT(d ir.DType, p value.Value, idx value.Value) value.Value {
	if c, ok := idx.(*constant.Int); ok && c.X.Sign() == 0 {
		return p
	}
	e := g.cur.NewGetElementPtr(dotElem(d), p, idx)
	e.InBounds = true
	return e
}

// widen converts x, an element or a vector of elements of type d as
// loaded, to f32.
func (g *gemmGen) widen(d ir.DType, x value.Value) value.Value {
	var n uint64
	if v, ok := x.Type().(*types.VectorType); ok {
		n = v.Len
	}
	typ := func(scalar types.Type) types.Type {
		if n == 0 {
			return scalar
		}
		return types.NewVector(n, scalar)
	}
	switch dotType(d) {
	case ir.BF16:
		w := g.cur.NewZExt(x, typ(types.I32))
		var sh value.Value = constant.NewInt(types.I32, 16)
		if n > 0 {
			e := make([]constant.Constant, n)
			for i := range e {
				e[i] = constant.NewInt(types.I32, 16)
			}
			sh = constant.NewVector(typ(types.I32).(*types.VectorType), e...)
		}
		return g.cur.NewBitCast(g.cur.NewShl(w, sh), typ(gemmF32))
	case ir.F16:
		return g.cur.NewFPExt(g.cur.NewBitCast(x, typ(types.Half)), typ(gemmF32))
	}
	return x
}

// loadAs loads the element of type d at p as an f32.
func (g *gemmGen) loadAs(d ir.DType, p value.Value) value.Value {
	if dotType(d) == ir.F32 {
		return g.loadF(p)
	}
	l := g.cur.NewLoad(types.I16, p)
	l.Align = 2
	return g.widen(d, l)
}

// loadVAs loads the first lanes elements (1..Vec) of type d at p, which
// is aligned to one element, as a vector of f32 (zero past lanes).
func (g *gemmGen) loadVAs(d ir.DType, p value.Value, lanes int) value.Value {
	if dotType(d) == ir.F32 {
		if lanes == g.t.Vec {
			return g.loadV(p, 4)
		}
		return g.maskedLoad(p, g.mask(lanes))
	}
	vt := types.NewVector(uint64(g.t.Vec), types.I16)
	pt := types.NewPointer(vt)
	var x value.Value
	if lanes == g.t.Vec {
		l := g.cur.NewLoad(vt, g.cur.NewBitCast(p, pt))
		l.Align = 2
		x = l
	} else {
		name := fmt.Sprintf("llvm.masked.load.v%di16.p0v%[1]di16", g.t.Vec)
		mt := types.NewVector(uint64(g.t.Vec), types.I1)
		f := g.intrinsic(name, vt, pt, types.I32, mt, vt)
		x = g.cur.NewCall(f, g.cur.NewBitCast(p, pt), constant.NewInt(types.I32, 2), g.mask(lanes), constant.NewZeroInitializer(vt))
	}
	return g.widen(d, x)
}
