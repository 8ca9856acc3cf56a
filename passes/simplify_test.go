package passes

import (
	"fmt"
	"testing"

	"xlc/ir"
)

// deepResidual builds a residual chain of n pre-norm MLP blocks, about 100
// instructions each, with work for simplify in every block: constant
// expressions, x*1, a duplicated mean, a transpose pair, a reshape chain, a
// neg(neg) and a dead branch.
func deepResidual(n int) *ir.Func {
	const B, D, H = 8, 16, 32
	b := ir.NewBuilder("deep")
	x := b.Param("x", ir.T(ir.F32, B, D), nil)
	bd := ir.Shape{B, D}
	bh := ir.Shape{B, H}
	c := func(v float64) *ir.Value { return b.Constant(ir.T(ir.F32), v) }
	bc := func(v *ir.Value, s ir.Shape) *ir.Value { return b.Broadcast(v, s, nil) }
	mean := func(v *ir.Value) *ir.Value {
		s := b.Reduce(ir.OpReduceSum, v, []int{1})
		s = b.Binary(ir.OpMul, s, b.Broadcast(b.Binary(ir.OpDiv, c(1), c(D)), ir.Shape{B}, nil))
		return b.Broadcast(s, bd, []int{0})
	}
	for i := 0; i < n; i++ {
		p := func(name string, t ir.Type) *ir.Value {
			return b.Param(fmt.Sprintf("%s%d", name, i), t, ir.Attrs{}.Set("role", "param"))
		}
		w1, w2 := p("w1_", ir.T(ir.F32, D, H)), p("w2_", ir.T(ir.F32, H, D))
		gamma, beta := p("gamma", ir.T(ir.F32, D)), p("beta", ir.T(ir.F32, D))

		// Layer norm, with the mean computed twice.
		m1, m2 := mean(x), mean(x)
		xc := b.Binary(ir.OpSub, x, m1)
		xc2 := b.Binary(ir.OpSub, x, m2)
		v := mean(b.Binary(ir.OpMul, xc, xc2))
		eps := bc(b.Binary(ir.OpMul, c(1e-5), c(1)), bd)
		r := b.Unary(ir.OpRsqrt, b.Binary(ir.OpAdd, v, eps))
		xn := b.Binary(ir.OpMul, xc, r)
		xn = b.Binary(ir.OpMul, xn, b.Broadcast(gamma, bd, []int{1}))
		xn = b.Binary(ir.OpAdd, xn, b.Broadcast(beta, bd, []int{1}))

		// MLP with a tanh-approximated gelu.
		h := b.Dot(xn, w1, nil, nil, []int{1}, []int{0})
		h3 := b.Binary(ir.OpMul, b.Binary(ir.OpMul, h, h), h)
		k := bc(b.Unary(ir.OpSqrt, b.Binary(ir.OpDiv, c(2), c(3.141592653589793))), bh)
		inner := b.Binary(ir.OpAdd, h, b.Binary(ir.OpMul, bc(c(0.044715), bh), h3))
		t := b.Unary(ir.OpTanh, b.Binary(ir.OpMul, k, inner))
		one := bc(b.Binary(ir.OpSub, c(2), c(1)), bh)
		g := b.Binary(ir.OpMul, b.Binary(ir.OpMul, bc(c(0.5), bh), h), b.Binary(ir.OpAdd, one, t))
		g = b.Binary(ir.OpMul, g, one) // g*1
		g = b.Unary(ir.OpNeg, b.Unary(ir.OpNeg, g))
		o := b.Dot(g, w2, nil, nil, []int{1}, []int{0})

		// Shape round trips and an identity convert.
		o = b.Transpose(b.Transpose(o, []int{1, 0}), []int{1, 0})
		o = b.Reshape(b.Reshape(b.Reshape(o, ir.Shape{B * D}), ir.Shape{D, B}), bd)
		o = b.Convert(o, ir.F32)

		// Duplicated side work on the residual stream, merged by CSE.
		s1 := b.Unary(ir.OpTanh, b.Binary(ir.OpMul, xn, bc(c(0.5), bd)))
		s2 := b.Unary(ir.OpTanh, b.Binary(ir.OpMul, xn, bc(c(0.5), bd)))
		gate := b.Unary(ir.OpSign, b.Binary(ir.OpMax, s1, s2))
		gate = b.Binary(ir.OpDiv, gate, bc(b.Binary(ir.OpSub, b.Binary(ir.OpMul, c(3), c(4)), c(11)), bd))
		o = b.Binary(ir.OpAdd, o, b.Binary(ir.OpMul, gate, bc(b.Binary(ir.OpSub, c(1), c(1)), bd)))

		// A dead branch.
		b.Unary(ir.OpExp, b.Binary(ir.OpAdd, o, x))

		// Residual, scaled by a folded constant.
		scale := bc(b.Binary(ir.OpMul, c(1), c(1)), bd)
		x = b.Binary(ir.OpAdd, x, b.Binary(ir.OpMul, o, scale))
		zero := bc(c(0), bd)
		x = b.Select(bc(b.Binary(ir.OpLt, c(0), c(1)), ir.Shape{B, D}), b.Binary(ir.OpAdd, x, zero), x)
	}
	b.Return([]string{"y"}, x)
	if err := b.Err(); err != nil {
		panic(err)
	}
	return b.F
}

func TestSimplifyDeep(t *testing.T) {
	f := deepResidual(20)
	before := len(f.Body)
	changed, err := simplify(f)
	if err != nil || !changed {
		t.Fatalf("simplify: changed=%v, err=%v", changed, err)
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	text := f.String()
	if changed, err := simplify(f); err != nil || changed || f.String() != text {
		t.Fatalf("second run: changed=%v, err=%v", changed, err)
	}
	// Each block keeps 32 of its 107 instructions; 8 constants are shared
	// by all blocks. A rewrite that stops firing changes the count.
	if want := 32*20 + 8; len(f.Body) != want {
		t.Errorf("%d instructions after simplify, from %d; want %d", len(f.Body), before, want)
	}
}

func BenchmarkSimplifyDeep(b *testing.B) {
	const blocks = 1000
	var instrs, after int
	for b.Loop() {
		b.StopTimer()
		f := deepResidual(blocks)
		instrs = len(f.Body)
		b.StartTimer()
		if _, err := simplify(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Verify(); err != nil {
			b.Fatal(err)
		}
		after = len(f.Body)
	}
	b.ReportMetric(float64(instrs), "instrs")
	b.ReportMetric(float64(after), "instrs-after")
}
