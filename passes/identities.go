package passes

import "xlc/ir"

// identity replaces an instruction that equals one of its operands:
// x+0, 0+x, x-0, x*1, 1*x, x/1, neg(neg x), select with a constant
// predicate, select(p, x, x), max(x, x), min(x, x), and(x, x), or(x, x)
// and convert to x's own dtype. x+0 turns -0+0
// (= +0) into -0; nothing distinguishes the two but division by them.
//
// Not folded, on purpose: x-x and x*0 (NaN and ±inf give NaN, not 0), x/x
// (0/0), and stop_gradient(x) (it is the identity, but autodiff must see it).
func identity(v *ir.Value) (*ir.Value, bool) {
	switch v.Op {
	case ir.OpAdd:
		if isConst(v.Args[1], 0) {
			return v.Args[0], true
		}
		if isConst(v.Args[0], 0) {
			return v.Args[1], true
		}
	case ir.OpSub:
		if isConst(v.Args[1], 0) {
			return v.Args[0], true
		}
	case ir.OpMul:
		if isConst(v.Args[1], 1) {
			return v.Args[0], true
		}
		if isConst(v.Args[0], 1) {
			return v.Args[1], true
		}
	case ir.OpDiv:
		if isConst(v.Args[1], 1) {
			return v.Args[0], true
		}
	case ir.OpMax, ir.OpMin, ir.OpAnd, ir.OpOr:
		if v.Args[0] == v.Args[1] {
			return v.Args[0], true
		}
	case ir.OpNeg:
		if x := v.Args[0]; x.Op == ir.OpNeg {
			return x.Args[0], true
		}
	case ir.OpSelect:
		p, a, b := v.Args[0], v.Args[1], v.Args[2]
		if p.Op == ir.OpConstant {
			if constInt(p) != 0 {
				return a, true
			}
			return b, true
		}
		if a == b {
			return a, true
		}
	case ir.OpConvert:
		if x := v.Args[0]; x.Type.DType == v.Type.DType {
			return x, true
		}
	}
	return nil, false
}

// shapeFold removes shape ops that do nothing and merges chains of them:
// a transpose of a transpose becomes one transpose (perms composed), an
// identity transpose goes; a reshape of a reshape becomes one reshape, a
// reshape to the operand's shape goes; a broadcast of a broadcast becomes one
// broadcast (dims composed), a broadcast to the operand's own type goes.
// Merging rewrites the instruction in place, returning it.
func shapeFold(v *ir.Value) (*ir.Value, bool) {
	if len(v.Args) != 1 {
		return nil, false
	}
	x := v.Args[0]
	switch v.Op {
	case ir.OpTranspose:
		perm := v.Attrs.Ints("perm")
		if x.Op == ir.OpTranspose {
			inner := x.Attrs.Ints("perm")
			c := make([]int, len(perm))
			for i, p := range perm {
				c[i] = inner[p]
			}
			v.Args[0] = x.Args[0]
			v.Attrs = v.Attrs.Set("perm", c)
			return v, true
		}
		for i, p := range perm {
			if p != i {
				return nil, false
			}
		}
		return x, true
	case ir.OpReshape:
		if v.Type.Equal(x.Type) {
			return x, true
		}
		if x.Op == ir.OpReshape {
			v.Args[0] = x.Args[0]
			return v, true
		}
	case ir.OpBroadcast:
		if v.Type.Equal(x.Type) {
			return x, true
		}
		if x.Op == ir.OpBroadcast {
			dims, inner := v.Attrs.Ints("dims"), x.Attrs.Ints("dims")
			c := make([]int, len(inner))
			for i, d := range inner {
				c[i] = dims[d]
			}
			v.Args[0] = x.Args[0]
			v.Attrs = v.Attrs.Set("dims", c)
			return v, true
		}
	}
	return nil, false
}
