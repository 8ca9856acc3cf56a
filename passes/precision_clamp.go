package passes

import (
	"fmt"
	"io"
	"math"

	"xlc/ir"
)

// maskLimit is the magnitude a mask constant is clamped to in dtype d: the
// largest power of two at most half of d's largest finite value (2^15 in
// f16, 2^127 in bf16), so that adding an operand's own values to it stays
// finite.
func maskLimit(d ir.DType) float64 {
	if d == ir.F16 {
		return 1 << 15
	}
	return math.Ldexp(1, 127)
}

// clamper rewrites a dot operand's expression so that no constant in it
// overflows the half type: a mask written as select(m, x, -1e9) or as
// x·m + (-1e12)·(1-m) holds -inf in f16, and -inf·0 is NaN in the product.
// Only the copy the dot reads changes; other consumers keep the f32 value.
type clamper struct {
	half ir.DType
	log  io.Writer
	emit func(*ir.Value) // places a new instruction before the dot
	memo map[*ir.Value]*ir.Value
}

// maskOps are the ops a mask constant reaches a dot operand through.
var maskOps = map[ir.Op]bool{
	ir.OpSelect: true, ir.OpAdd: true, ir.OpSub: true, ir.OpMul: true, ir.OpNeg: true,
	ir.OpBroadcast: true, ir.OpReshape: true, ir.OpTranspose: true,
}

// clamp returns v, or a copy of v's expression with each overflowing float
// constant replaced by ±maskLimit, at most depth ops up from v.
func (c *clamper) clamp(v, dot *ir.Value, depth int) *ir.Value {
	if r, ok := c.memo[v]; ok {
		return r
	}
	r := v
	switch {
	case v.Op == ir.OpConstant && v.Type.DType == ir.F32:
		x := constFloat(v)
		if !math.IsInf(x, 0) && math.IsInf(roundTo(c.half, x), 0) {
			r = &ir.Value{Op: ir.OpConstant, Type: cloneType(v.Type),
				Attrs: ir.Attrs{}.Set("value", math.Copysign(maskLimit(c.half), x))}
			c.emit(r)
			fmt.Fprintf(c.log, "clamp %s in the operand of %s: %s overflows %v, %s there\n",
				v.Ref(), dot.Ref(), ir.FormatFloat(v.Attrs.Float("value")), c.half, ir.FormatFloat(math.Copysign(maskLimit(c.half), x)))
		}
	case maskOps[v.Op] && v.Type.DType == ir.F32 && depth > 0:
		var args []*ir.Value
		for i, a := range v.Args {
			if n := c.clamp(a, dot, depth-1); n != a {
				if args == nil {
					args = append([]*ir.Value(nil), v.Args...)
				}
				args[i] = n
			}
		}
		if args != nil {
			r = &ir.Value{Op: v.Op, Args: args, Type: cloneType(v.Type), Attrs: v.Attrs}
			c.emit(r)
		}
	}
	c.memo[v] = r
	return r
}
