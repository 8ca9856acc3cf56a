package trainstep

import (
	"math"
	"math/rand/v2"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

// TestGradRulesComplete checks that every op has an entry in the rule table,
// explicit for the ops without a gradient.
func TestGradRulesComplete(t *testing.T) {
	for _, op := range ir.Ops() {
		if _, ok := gradRules[op]; !ok {
			t.Errorf("%v has no gradient rule (not even noGrad)", op)
		}
	}
	if len(gradRules) != len(ir.Ops()) {
		t.Errorf("%d rules for %d ops", len(gradRules), len(ir.Ops()))
	}
}

func unaryCase(op ir.Op, gen func(*rand.Rand) float64) fdCase {
	return fdCase{
		name:  op.String(),
		args:  []fdArg{{t: f64(2, 3), gen: gen}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value { return b.Unary(op, xs[0]) },
	}
}

func binaryCase(op ir.Op, ga, gb func(*rand.Rand) float64) fdCase {
	return fdCase{
		name:  op.String(),
		args:  []fdArg{{t: f64(2, 3), gen: ga}, {t: f64(2, 3), gen: gb}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value { return b.Binary(op, xs[0], xs[1]) },
	}
}

// oneArg is a case with one f64 operand of type in, transformed by fn.
func oneArg(name string, in ir.Type, fn func(b *ir.Builder, x *ir.Value) *ir.Value) fdCase {
	return fdCase{name: name, args: []fdArg{{t: in}}, build: func(b *ir.Builder, xs []*ir.Value) *ir.Value { return fn(b, xs[0]) }}
}

// dotCase contracts A and B with the given dims.
func dotCase(name string, a, bt ir.Type, lb, rb, lc, rc []int) fdCase {
	return fdCase{
		name: "dot " + name,
		args: []fdArg{{t: a}, {t: bt}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Dot(xs[0], xs[1], lb, rb, lc, rc)
		},
	}
}

var (
	positive = uniformIn(0.5, 2)
	// apart draws values on a grid of step 0.25, shifted per operand
	// below, so that max/min and reduce_max never meet a tie.
	apart = func(r *rand.Rand) float64 { return float64(r.IntN(16))*0.25 - 2 }
	shift = func(r *rand.Rand) float64 { return apart(r) + 0.125 }
)

// opCases holds a finite-difference case for every differentiable op, and
// for the ops without a gradient that can appear on a path (sign).
var opCases = []fdCase{
	unaryCase(ir.OpNeg, nil),
	unaryCase(ir.OpAbs, awayFromZero),
	unaryCase(ir.OpExp, nil),
	unaryCase(ir.OpLog, positive),
	unaryCase(ir.OpSqrt, positive),
	unaryCase(ir.OpRsqrt, positive),
	unaryCase(ir.OpTanh, uniformIn(-2, 2)),
	unaryCase(ir.OpErf, uniformIn(-2, 2)),
	unaryCase(ir.OpSin, uniformIn(-3, 3)),
	unaryCase(ir.OpCos, uniformIn(-3, 3)),
	unaryCase(ir.OpRecip, awayFromZero),
	unaryCase(ir.OpSign, awayFromZero),

	binaryCase(ir.OpAdd, nil, nil),
	binaryCase(ir.OpSub, nil, nil),
	binaryCase(ir.OpMul, nil, nil),
	binaryCase(ir.OpDiv, nil, awayFromZero),
	binaryCase(ir.OpMax, apart, shift),
	binaryCase(ir.OpMin, apart, shift),
	binaryCase(ir.OpPow, positive, uniformIn(-2, 2)),

	{
		name: "select",
		args: []fdArg{{t: ir.T(ir.Bool, 2, 3), ints: []int64{1, 0, 0, 1, 1, 0}}, {t: f64(2, 3)}, {t: f64(2, 3)}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Select(xs[0], xs[1], xs[2])
		},
	},
	{
		// Through f32 and back: a larger step and tolerance.
		name: "convert",
		args: []fdArg{{t: f64(2, 3)}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Convert(b.Unary(ir.OpSin, b.Convert(xs[0], ir.F32)), ir.F64)
		},
		step: 1e-2, tol: 2e-3,
	},

	oneArg("broadcast scalar", f64(), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Broadcast(x, ir.Shape{2, 3}, nil) }),
	oneArg("broadcast row", f64(3), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Broadcast(x, ir.Shape{2, 3}, []int{1}) }),
	oneArg("broadcast size-1 dim", f64(2, 1), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Broadcast(x, ir.Shape{2, 4, 3}, []int{0, 2})
	}),
	oneArg("broadcast size-1 kept", f64(1, 2, 1), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Broadcast(x, ir.Shape{1, 3, 2, 2}, []int{0, 2, 3})
	}),
	oneArg("reshape", f64(2, 3), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reshape(x, ir.Shape{3, 1, 2}) }),
	oneArg("transpose", f64(2, 3, 4), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Transpose(x, []int{2, 0, 1}) }),
	oneArg("slice", f64(5, 6), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Slice(x, []int{1, 0}, []int{4, 6}, []int{2, 4})
	}),
	oneArg("slice empty", f64(3, 2), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Concat(0, b.Slice(x, []int{1, 1}, []int{1, 2}, []int{1, 1}), b.Slice(x, []int{0, 0}, []int{3, 1}, []int{1, 1}))
	}),
	oneArg("pad", f64(2, 3), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Pad(x, []int{1, 0}, []int{0, 2}, []int{1, 2})
	}),
	oneArg("pad empty", f64(0, 3), func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Pad(x, []int{1, 0}, []int{1, 0}, []int{2, 0})
	}),
	{
		name: "concat",
		args: []fdArg{{t: f64(2, 1)}, {t: f64(2, 3)}, {t: f64(2, 2)}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Concat(1, xs[0], xs[1], xs[2], xs[0])
		},
	},
	oneArg("reduce_sum", f64(2, 3, 4), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceSum, x, []int{0, 2}) }),
	oneArg("reduce_sum none", f64(2, 3), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceSum, x, nil) }),
	oneArg("reduce_max rows", f64(3, 4), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceMax, x, []int{1}) }),
	oneArg("reduce_max outer", f64(2, 3, 4), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceMax, x, []int{0, 2}) }),
	oneArg("reduce_max all", f64(2, 3), func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceMax, x, []int{0, 1}) }),

	dotCase("matmul", f64(2, 3), f64(3, 4), nil, nil, []int{1}, []int{0}),
	dotCase("matmul transposed", f64(3, 2), f64(4, 3), nil, nil, []int{0}, []int{1}),
	dotCase("two batch dims", f64(2, 3, 4, 5), f64(2, 3, 5, 2), []int{0, 1}, []int{0, 1}, []int{3}, []int{2}),
	dotCase("scattered batch dims", f64(4, 2, 5, 3), f64(3, 5, 2, 2), []int{3, 1}, []int{0, 2}, []int{2}, []int{1}),
	dotCase("two contracting dims", f64(2, 3, 4), f64(4, 3, 5), nil, nil, []int{1, 2}, []int{1, 0}),
	dotCase("contracting non-leading order", f64(3, 4, 2), f64(2, 5, 3), nil, nil, []int{2, 0}, []int{0, 2}),
	dotCase("batch and two contracting", f64(3, 2, 4, 2), f64(2, 4, 3, 5), []int{0}, []int{2}, []int{3, 2}, []int{0, 1}),
	dotCase("outer", f64(2), f64(3), nil, nil, nil, nil),
	dotCase("inner", f64(4), f64(4), nil, nil, []int{0}, []int{0}),

	{
		name: "gather repeated",
		args: []fdArg{{t: f64(5, 3)}, {t: ir.T(ir.I32, 2, 3), ints: []int64{0, 2, 2, 4, 0, 2}}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Gather(xs[0], xs[1], 0)
		},
	},
	{
		name: "gather axis 1",
		args: []fdArg{{t: f64(2, 4, 3)}, {t: ir.T(ir.I64, 3), ints: []int64{1, 3, 1}}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.Gather(xs[0], xs[1], 1)
		},
	},
	{
		name: "scatter_add",
		args: []fdArg{{t: f64(4, 3)}, {t: ir.T(ir.I32, 4), ints: []int64{0, 2, 0, 1}}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			return b.ScatterAdd(xs[0], xs[1], 0, f64(3, 3))
		},
	},
	{
		name: "stop_gradient, compares and constants off the path",
		args: []fdArg{{t: f64(2, 3)}},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			x := xs[0]
			gate := b.Binary(ir.OpGt, b.Unary(ir.OpStopGradient, x), b.Constant(x.Type, 0))
			k := b.Convert(b.Iota(ir.T(ir.I32, 2, 3), 1), ir.F64)
			return b.Select(gate, b.Binary(ir.OpMul, x, k), b.Unary(ir.OpExp, x))
		},
	},
}

// TestGradOps checks every op's rule against central finite differences,
// first and second order.
func TestGradOps(t *testing.T) {
	for i, c := range opCases {
		t.Run(c.name, func(t *testing.T) { checkCase(t, c, uint64(100+i)) })
	}
}

// TestGradOpsCovered checks that opCases exercise every op that has a rule.
func TestGradOpsCovered(t *testing.T) {
	seen := map[ir.Op]bool{}
	for _, c := range opCases {
		b := ir.NewBuilder("c")
		xs := make([]*ir.Value, len(c.args))
		for i, a := range c.args {
			xs[i] = b.Param("x", a.t, nil)
		}
		c.build(b, xs)
		for _, v := range b.F.Body {
			seen[v.Op] = true
		}
	}
	for _, op := range ir.Ops() {
		if gradRules[op] != nil && !seen[op] {
			t.Errorf("no finite-difference case uses %v", op)
		}
	}
}

// gradValues builds fn(x) for one parameter of type xt, takes the gradient
// of reduce_sum(fn(x)) and its second derivative along ones, and returns both
// evaluated at x.
func gradValues(t *testing.T, xt ir.Type, x []float64, fn func(b *ir.Builder, x *ir.Value) *ir.Value) (g, h []float64) {
	t.Helper()
	b := ir.NewBuilder("f")
	p := b.Param("x", xt, nil)
	out := fn(b, p)
	loss := b.Reduce(ir.OpReduceSum, out, allAxes(out.Type.Rank()))
	gs, err := Grad(b.F, loss, []*ir.Value{p})
	if err != nil {
		t.Fatal(err)
	}
	loss2 := b.Reduce(ir.OpReduceSum, gs[0], allAxes(xt.Rank()))
	hs, err := Grad(b.F, loss2, []*ir.Value{p})
	if err != nil {
		t.Fatal(err)
	}
	b.F.Results = []*ir.Value{gs[0], hs[0]}
	res, err := interp.Run(b.F, []*interp.Tensor{interp.FromFloats(xt, x)})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].F, res[1].F
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12*(1+math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// TestGradTiesAndKinks pins the conventions at points where finite
// differences do not apply: reduce_max splits among tied maxima, max and min
// send ties to the first operand, abs has gradient 0 at 0, and pow's
// gradients stay finite (no NaN) at a base <= 0 with an integer exponent.
func TestGradTiesAndKinks(t *testing.T) {
	g, _ := gradValues(t, f64(2, 3), []float64{1, 3, 3, 2, 2, 2}, func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Reduce(ir.OpReduceMax, x, []int{1})
	})
	if want := []float64{0, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 3}; !sameFloats(g, want) {
		t.Errorf("reduce_max ties: gradient %v, want %v", g, want)
	}
	g, _ = gradValues(t, f64(3), []float64{1, 2, 3}, func(b *ir.Builder, x *ir.Value) *ir.Value {
		y := b.Constant(x.Type, 2)
		return b.Binary(ir.OpAdd, b.Binary(ir.OpMax, x, y), b.Binary(ir.OpMin, x, y))
	})
	if want := []float64{1, 2, 1}; !sameFloats(g, want) {
		t.Errorf("max+min with ties: gradient %v, want %v", g, want)
	}
	g, _ = gradValues(t, f64(3), []float64{-1, 0, 2}, func(b *ir.Builder, x *ir.Value) *ir.Value { return b.Unary(ir.OpAbs, x) })
	if want := []float64{-1, 0, 1}; !sameFloats(g, want) {
		t.Errorf("abs: gradient %v, want %v", g, want)
	}
	for _, wrtBase := range []bool{true, false} {
		base := []float64{-1.5, 0, 2}
		fn := func(b *ir.Builder, x *ir.Value) *ir.Value {
			if wrtBase {
				return b.Binary(ir.OpPow, x, b.Constant(x.Type, 3))
			}
			return b.Binary(ir.OpPow, b.Constant(x.Type, 0), x) // exponent: the base is 0
		}
		x := base
		if !wrtBase {
			x = []float64{1, 2, 3}
		}
		g, h := gradValues(t, f64(3), x, fn)
		for i := range g {
			if math.IsNaN(g[i]) || math.IsNaN(h[i]) || math.IsInf(g[i], 0) || math.IsInf(h[i], 0) {
				t.Errorf("pow (wrt base %v) at %v: gradient %v, second %v", wrtBase, x, g, h)
				break
			}
		}
		if wrtBase {
			if want := []float64{3 * 2.25, 0, 12}; !sameFloats(g, want) {
				t.Errorf("pow(x, 3): gradient %v, want %v", g, want)
			}
			if want := []float64{-9, 0, 12}; !sameFloats(h, want) {
				t.Errorf("pow(x, 3): second derivative %v, want %v", h, want)
			}
		}
	}
	// pow(x, 0) = 1 has derivative 0 everywhere, at x = 0 too (not 0·0^-1).
	g, h := gradValues(t, f64(3), []float64{0, 1, -2}, func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Binary(ir.OpPow, x, b.Constant(x.Type, 0))
	})
	if want := []float64{0, 0, 0}; !sameFloats(g, want) || !sameFloats(h, want) {
		t.Errorf("pow(x, 0): gradient %v, second %v; want zeros", g, h)
	}
}

// TestGradNoPath checks the zero gradients: of values y does not depend on,
// of values reached only through stop_gradient, compares, sign or rng, and
// of integer values.
func TestGradNoPath(t *testing.T) {
	b := ir.NewBuilder("f")
	x := b.Param("x", f64(3), nil)
	unused := b.Param("unused", f64(2), nil)
	k := b.Param("k", ir.T(ir.I64), nil)
	idx := b.Param("i", ir.T(ir.I32, 3), nil)
	noise := b.Rng(k, f64(3), "normal", 0)
	s := b.Unary(ir.OpSign, x)
	sg := b.Unary(ir.OpStopGradient, b.Unary(ir.OpExp, x))
	c := b.Select(b.Binary(ir.OpLt, x, noise), b.Constant(x.Type, 1), b.Constant(x.Type, 2))
	fi := b.Convert(idx, ir.F64)
	sum := b.Binary(ir.OpAdd, b.Binary(ir.OpAdd, s, sg), b.Binary(ir.OpMul, c, fi))
	loss := b.Reduce(ir.OpReduceSum, sum, []int{0})
	grads, err := Grad(b.F, loss, []*ir.Value{x, unused, k, idx, fi, loss})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range grads[:4] {
		if g.Op != ir.OpConstant || g.Attrs.Float("value") != 0 || !g.Type.Equal(b.F.Params[i].Type) {
			t.Errorf("gradient %d: %v %v %v, want a zero constant of %v", i, g.Op, g.Attrs.Format(), g.Type, b.F.Params[i].Type)
		}
	}
	b.F.Results = append(grads[4:], c)
	res, err := interp.Run(b.F, []*interp.Tensor{
		interp.FromFloats(x.Type, []float64{-1, 0.5, 2}), interp.FromFloats(unused.Type, []float64{0, 0}),
		interp.FromInts(k.Type, []int64{7}), interp.FromInts(idx.Type, []int64{1, 2, 3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sameFloats(res[0].F, res[2].F) {
		t.Errorf("d loss/d convert(i) = %v, want the select's values %v", res[0].F, res[2].F)
	}
	if res[1].Scalar() != 1 {
		t.Errorf("d loss/d loss = %v, want 1", res[1].Scalar())
	}
}
