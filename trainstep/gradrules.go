package trainstep

import (
	"math"

	"xlc/ir"
)

// gradRule is the gradient rule of one op: given g, the adjoint of
// instruction x (same type as x), it returns x's adjoint contribution to each
// of its operands; a nil entry (or a nil slice) means no contribution. Rules
// emit only ops that have rules themselves, so gradients can be
// differentiated again, and never emit a NaN where the forward values and
// the derivative are finite (select reads safe operands, so an unselected
// branch holds no NaN either).
type gradRule func(b *ir.Builder, x, g *ir.Value) []*ir.Value

// noGrad is the (nil) rule of ops through which no gradient flows:
// compares, boolean ops, sign, stop_gradient, iota, constant, rng. Grad does
// not look past them.
var noGrad gradRule

// gradRules holds one rule per op of ir/op.go; TestGradRulesComplete checks
// that none is missing.
var gradRules = map[ir.Op]gradRule{
	ir.OpNeg: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(adNeg(b, g)) },
	ir.OpAbs: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return adOne(adMul(b, g, b.Unary(ir.OpSign, x.Args[0])))
	},
	ir.OpExp:   func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(adMul(b, g, x)) },
	ir.OpLog:   func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(adDiv(b, g, x.Args[0])) },
	ir.OpSqrt:  gradSqrt,
	ir.OpRsqrt: gradRsqrt,
	ir.OpTanh:  gradTanh,
	ir.OpErf:   gradErf,
	ir.OpSin: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return adOne(adMul(b, g, b.Unary(ir.OpCos, x.Args[0])))
	},
	ir.OpCos: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return adOne(adNeg(b, adMul(b, g, b.Unary(ir.OpSin, x.Args[0]))))
	},
	ir.OpRecip:        func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(adNeg(b, adMul(b, g, adMul(b, x, x)))) },
	ir.OpSign:         noGrad,
	ir.OpNot:          noGrad,
	ir.OpStopGradient: noGrad,

	ir.OpAdd: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return []*ir.Value{g, g} },
	ir.OpSub: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return []*ir.Value{g, adNeg(b, g)} },
	ir.OpMul: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return []*ir.Value{adMul(b, g, x.Args[1]), adMul(b, g, x.Args[0])}
	},
	ir.OpDiv: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		d := x.Args[1]
		return []*ir.Value{adDiv(b, g, d), adNeg(b, adDiv(b, adMul(b, g, x), d))}
	},
	ir.OpMax: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return gradMinMax(b, x, g, ir.OpGe) },
	ir.OpMin: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return gradMinMax(b, x, g, ir.OpLe) },
	ir.OpPow: gradPow,
	ir.OpAnd: noGrad,
	ir.OpOr:  noGrad,

	ir.OpEq: noGrad,
	ir.OpNe: noGrad,
	ir.OpLt: noGrad,
	ir.OpLe: noGrad,
	ir.OpGt: noGrad,
	ir.OpGe: noGrad,

	ir.OpSelect: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		p, z := x.Args[0], adZeros(b, g)
		return []*ir.Value{nil, b.Select(p, g, z), b.Select(p, z, g)}
	},
	ir.OpConvert: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		if d := x.Args[0].Type.DType; d.IsFloat() && x.Type.DType.IsFloat() {
			return adOne(b.Convert(g, d))
		}
		return nil
	},
	ir.OpBroadcast: gradBroadcast,
	ir.OpReshape:   func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(b.Reshape(g, x.Args[0].Type.Shape)) },
	ir.OpTranspose: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return adOne(adTranspose(b, g, adInvertPerm(x.Attrs.Ints("perm"))))
	},
	ir.OpSlice:     gradSlice,
	ir.OpPad:       gradPad,
	ir.OpConcat:    gradConcat,
	ir.OpIota:      noGrad,
	ir.OpConstant:  noGrad,
	ir.OpReduceSum: func(b *ir.Builder, x, g *ir.Value) []*ir.Value { return adOne(adBroadcastBack(b, g, x)) },
	ir.OpReduceMax: gradReduceMax,
	ir.OpDot:       gradDot,
	ir.OpGather: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return []*ir.Value{b.ScatterAdd(g, x.Args[1], x.Attrs.Int("axis"), x.Args[0].Type), nil}
	},
	ir.OpScatterAdd: func(b *ir.Builder, x, g *ir.Value) []*ir.Value {
		return []*ir.Value{b.Gather(g, x.Args[1], x.Attrs.Int("axis")), nil}
	},
	ir.OpRng: noGrad,
	// Fusion runs after autodiff (the pipeline's last pass); Grad refuses a
	// function that holds a fusion rather than skip it.
	ir.OpFusion: noGrad,
	ir.OpOutput: noGrad,
}

func adOne(v *ir.Value) []*ir.Value { return []*ir.Value{v} }

func adNeg(b *ir.Builder, x *ir.Value) *ir.Value    { return b.Unary(ir.OpNeg, x) }
func adMul(b *ir.Builder, x, y *ir.Value) *ir.Value { return b.Binary(ir.OpMul, x, y) }
func adDiv(b *ir.Builder, x, y *ir.Value) *ir.Value { return b.Binary(ir.OpDiv, x, y) }

// adSplat is a constant of like's type, every element c.
func adSplat(b *ir.Builder, like *ir.Value, c float64) *ir.Value { return b.Constant(like.Type, c) }

func adZeros(b *ir.Builder, like *ir.Value) *ir.Value { return adSplat(b, like, 0) }

// gradSqrt is g/(2y).
func gradSqrt(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	return adOne(adDiv(b, g, adMul(b, adSplat(b, x, 2), x)))
}

// gradRsqrt is -0.5·g·y³.
func gradRsqrt(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	y3 := adMul(b, adMul(b, x, x), x)
	return adOne(adMul(b, adMul(b, adSplat(b, x, -0.5), g), y3))
}

// gradTanh is g·(1-y²).
func gradTanh(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	return adOne(adMul(b, g, b.Binary(ir.OpSub, adSplat(b, x, 1), adMul(b, x, x))))
}

// gradErf is g·2/√π·exp(-a²).
func gradErf(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	a := x.Args[0]
	e := b.Unary(ir.OpExp, adNeg(b, adMul(b, a, a)))
	return adOne(adMul(b, g, adMul(b, adSplat(b, x, 2/math.Sqrt(math.Pi)), e)))
}

// gradMinMax sends g to the operand the result came from: the first where
// cmp(a, b) holds (ties go to the first operand), the second elsewhere.
func gradMinMax(b *ir.Builder, x, g *ir.Value, cmp ir.Op) []*ir.Value {
	p := b.Binary(cmp, x.Args[0], x.Args[1])
	z := adZeros(b, g)
	return []*ir.Value{b.Select(p, g, z), b.Select(p, z, g)}
}

// gradPow is g·b·a^(b-1) for the base (0 where b = 0, even at a = 0 where
// the product would be 0·inf) and g·y·log a for the exponent where a > 0
// and 0 elsewhere. Both read safe operands (exponent 1 where b = 0, base 1
// where a <= 0) so that the unselected branches, and their own gradients,
// hold no NaN.
func gradPow(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	a, e := x.Args[0], x.Args[1]
	nonzero := b.Binary(ir.OpNe, e, adZeros(b, e))
	es := b.Select(nonzero, e, adSplat(b, e, 1))
	da := b.Select(nonzero, adMul(b, g, adMul(b, es, b.Binary(ir.OpPow, a, b.Binary(ir.OpSub, es, adSplat(b, es, 1))))), adZeros(b, a))
	pos := b.Binary(ir.OpGt, a, adZeros(b, a))
	safe := b.Select(pos, a, adSplat(b, a, 1))
	de := adMul(b, g, b.Select(pos, adMul(b, x, b.Unary(ir.OpLog, safe)), adZeros(b, x)))
	return []*ir.Value{da, de}
}

// gradBroadcast sums g over the added dims and over the operand's size-1
// dims that were expanded, then reshapes the sum to the operand's shape.
func gradBroadcast(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	in := x.Args[0].Type.Shape
	dims := x.Attrs.Ints("dims")
	keep := make([]bool, x.Type.Rank())
	for i, d := range dims {
		keep[d] = in[i] == x.Type.Shape[d]
	}
	var axes []int
	for d, k := range keep {
		if !k {
			axes = append(axes, d)
		}
	}
	s := g
	if len(axes) > 0 {
		s = b.Reduce(ir.OpReduceSum, g, axes)
	}
	if !s.Type.Shape.Equal(in) {
		s = b.Reshape(s, in)
	}
	return adOne(s)
}

// adBroadcastBack broadcasts g, the adjoint of a reduction x, back to the
// reduced operand's shape.
func adBroadcastBack(b *ir.Builder, g, x *ir.Value) *ir.Value {
	in := x.Args[0].Type.Shape
	red := make([]bool, len(in))
	for _, a := range x.Attrs.Ints("axes") {
		red[a] = true
	}
	dims := []int{}
	for i, r := range red {
		if !r {
			dims = append(dims, i)
		}
	}
	return b.Broadcast(g, in, dims)
}

// gradReduceMax splits g evenly among the maxima of each reduced group, as
// JAX does: g·[a == y] / count.
func gradReduceMax(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	a := x.Args[0]
	mask := b.Select(b.Binary(ir.OpEq, a, adBroadcastBack(b, x, x)), adSplat(b, a, 1), adZeros(b, a))
	count := b.Reduce(ir.OpReduceSum, mask, x.Attrs.Ints("axes"))
	return adOne(adMul(b, adBroadcastBack(b, adDiv(b, g, count), x), mask))
}

// gradSlice pads g with zeros back to the operand's shape.
func gradSlice(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	in := x.Args[0].Type.Shape
	start, stride := x.Attrs.Ints("start"), x.Attrs.Ints("stride")
	high, interior := make([]int, len(in)), make([]int, len(in))
	for i, n := range x.Type.Shape {
		interior[i] = stride[i] - 1
		high[i] = in[i] - start[i]
		if n > 0 {
			high[i] -= n + (n-1)*interior[i]
		}
	}
	return adOne(b.Pad(g, start, high, interior))
}

// gradPad takes from g the elements that came from the operand.
func gradPad(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	low, interior := x.Attrs.Ints("low"), x.Attrs.Ints("interior")
	in := x.Args[0].Type.Shape
	limit, stride := make([]int, len(in)), make([]int, len(in))
	for i, n := range in {
		stride[i] = interior[i] + 1
		limit[i] = low[i]
		if n > 0 {
			limit[i] += (n-1)*stride[i] + 1
		}
	}
	return adOne(b.Slice(g, low, limit, stride))
}

// gradConcat slices each operand's part out of g.
func gradConcat(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	ax := x.Attrs.Int("axis")
	r := x.Type.Rank()
	out := make([]*ir.Value, len(x.Args))
	at := 0
	for k, a := range x.Args {
		start, limit, stride := make([]int, r), x.Type.Shape.Clone(), make([]int, r)
		for i := range stride {
			stride[i] = 1
		}
		start[ax], limit[ax] = at, at+a.Type.Shape[ax]
		at = limit[ax]
		out[k] = b.Slice(g, start, limit, stride)
	}
	return out
}

// gradDot is dot_general's transpose rule. With the result's dims ordered
// batch, lhs free, rhs free:
//
//	dA = dot(g, B) contracting g's rhs-free dims with B's free dims, giving
//	     batch, lhs free, then B's contracting dims in B's order;
//	dB = dot(A, g) contracting A's free dims with g's lhs-free dims, giving
//	     batch, A's contracting dims in A's order, then rhs free;
//
// and a transpose puts each into its operand's dim order.
func gradDot(b *ir.Builder, x, g *ir.Value) []*ir.Value {
	A, B := x.Args[0], x.Args[1]
	lb, rb, lc, rc := ir.DotDims(x.Attrs)
	la, fb := ir.DotFree(A.Type.Rank(), lb, lc), ir.DotFree(B.Type.Rank(), rb, rc)
	nb, na := len(lb), len(la)
	gBatch := adSeq(0, nb)
	gA, gB := adSeq(nb, nb+na), adSeq(nb+na, nb+na+len(fb))

	// dA: its dims are A's batch dims, A's free dims, then the A dims
	// paired with B's contracting dims taken in B's order.
	dA := b.Dot(g, B, gBatch, rb, gB, fb)
	toA := append(append(append([]int{}, lb...), la...), adPaired(rc, lc)...)
	// dB: B's batch dims, the B dims paired with A's contracting dims in A's
	// order, then B's free dims.
	dB := b.Dot(A, g, lb, gBatch, la, gA)
	toB := append(append(append([]int{}, rb...), adPaired(lc, rc)...), fb...)
	return []*ir.Value{adTranspose(b, dA, adInvertPerm(toA)), adTranspose(b, dB, adInvertPerm(toB))}
}

// adPaired returns, for the dims of src sorted ascending, the dims of
// dst paired with them (src[k] pairs with dst[k]).
func adPaired(src, dst []int) []int {
	maxd := -1
	for _, d := range src {
		maxd = max(maxd, d)
	}
	at := make([]int, maxd+1)
	for i := range at {
		at[i] = -1
	}
	for k, d := range src {
		at[d] = dst[k]
	}
	var out []int
	for _, d := range at {
		if d >= 0 {
			out = append(out, d)
		}
	}
	return out
}

func adSeq(lo, hi int) []int {
	s := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// adInvertPerm returns q with q[p[i]] = i.
func adInvertPerm(p []int) []int {
	q := make([]int, len(p))
	for i, d := range p {
		q[d] = i
	}
	return q
}

// adTranspose transposes x by perm, or returns x for the identity.
func adTranspose(b *ir.Builder, x *ir.Value, perm []int) *ir.Value {
	for i, p := range perm {
		if p != i {
			return b.Transpose(x, perm)
		}
	}
	return x
}
