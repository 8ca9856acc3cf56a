package trainstep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime/interp"
)

// fdStep and fdTol are the central-difference step and the relative plus
// absolute tolerance of the f64 gradient checks.
const (
	fdStep = 1e-6
	fdTol  = 1e-6
)

// fdArg is one parameter of a gradient test case. Float parameters are
// differentiated; integer and bool ones hold the fixed values ints.
type fdArg struct {
	t    ir.Type
	gen  func(r *rand.Rand) float64 // nil: uniform in [-1, 1]
	ints []int64
}

// fdCase is a gradient test: build computes out from the parameters, and
// the loss is reduce_sum(w·out + u·out²/2) for fixed random w and u, so that
// second-order checks differentiate every rule's output again.
type fdCase struct {
	name  string
	args  []fdArg
	build func(b *ir.Builder, xs []*ir.Value) *ir.Value
	step  float64 // 0: fdStep
	tol   float64 // 0: fdTol
}

func f64(shape ...int) ir.Type { return ir.T(ir.F64, shape...) }

func uniformIn(lo, hi float64) func(r *rand.Rand) float64 {
	return func(r *rand.Rand) float64 { return lo + (hi-lo)*r.Float64() }
}

// awayFromZero draws from ±[0.2, 1].
func awayFromZero(r *rand.Rand) float64 {
	v := 0.2 + 0.8*r.Float64()
	if r.IntN(2) == 0 {
		return -v
	}
	return v
}

// allAxes lists 0..rank-1.

// fdSetup builds c's function with its loss and draws its arguments. It
// returns the function, the loss, the differentiated parameters and the
// argument tensors in parameter order (w and u last).
func fdSetup(t *testing.T, c fdCase, r *rand.Rand) (*ir.Func, *ir.Value, []*ir.Value, []*interp.Tensor) {
	t.Helper()
	b := ir.NewBuilder("case")
	xs := make([]*ir.Value, len(c.args))
	var in []*interp.Tensor
	var diff []*ir.Value
	for i, a := range c.args {
		xs[i] = b.Param(fmt.Sprintf("x%d", i), a.t, nil)
		if a.t.DType.IsFloat() {
			diff = append(diff, xs[i])
			in = append(in, randFloats(r, a.t, a.gen))
		} else {
			in = append(in, interp.FromInts(a.t, a.ints))
		}
	}
	out := c.build(b, xs)
	w := b.Param("w", out.Type, nil)
	u := b.Param("u", out.Type, nil)
	in = append(in, randFloats(r, out.Type, nil), randFloats(r, out.Type, nil))
	sq := b.Binary(ir.OpMul, b.Binary(ir.OpMul, u, out), out)
	half := b.Constant(out.Type, 0.5)
	terms := b.Binary(ir.OpAdd, b.Binary(ir.OpMul, w, out), b.Binary(ir.OpMul, half, sq))
	loss := b.Reduce(ir.OpReduceSum, terms, allAxes(out.Type.Rank()))
	if err := b.Err(); err != nil {
		t.Fatalf("%s: build: %v", c.name, err)
	}
	return b.F, loss, diff, in
}

func randFloats(r *rand.Rand, t ir.Type, gen func(*rand.Rand) float64) *interp.Tensor {
	if gen == nil {
		gen = uniformIn(-1, 1)
	}
	v := make([]float64, t.Shape.NumElements())
	for i := range v {
		v[i] = gen(r)
	}
	return interp.FromFloats(t, v)
}

// runScalar evaluates y on in.
func runScalar(t *testing.T, f *ir.Func, y *ir.Value, in []*interp.Tensor) float64 {
	t.Helper()
	saved := f.Results
	f.Results = []*ir.Value{y}
	res, err := interp.Run(f, in)
	f.Results = saved
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Scalar()
}

// checkGrads compares Grad(y, wrt) on in with central differences of y.
func checkGrads(t *testing.T, name string, f *ir.Func, y *ir.Value, wrt []*ir.Value, in []*interp.Tensor, step, tol float64) []*ir.Value {
	t.Helper()
	grads, err := Grad(f, y, wrt)
	if err != nil {
		t.Fatalf("%s: Grad: %v", name, err)
	}
	f.Results, f.ResultNames = grads, nil
	got, err := interp.Run(f, in)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, f)
	}
	pidx := map[*ir.Value]int{}
	for i, p := range f.Params {
		pidx[p] = i
	}
	for k, w := range wrt {
		x := in[pidx[w]]
		for i := range x.F {
			old := x.F[i]
			x.F[i] = old + step
			hi := runScalar(t, f, y, in)
			x.F[i] = old - step
			lo := runScalar(t, f, y, in)
			x.F[i] = old
			fd, g := (hi-lo)/(2*step), got[k].F[i]
			if math.IsNaN(g) || math.Abs(g-fd) > tol*(1+math.Abs(fd)) {
				t.Errorf("%s: d/d%s[%d] = %.10g, finite differences %.10g", name, w.Ref(), i, g, fd)
				return grads
			}
		}
	}
	return grads
}

// checkCase runs c's first- and second-order checks: Grad of the loss, then
// Grad of loss2 = Σ reduce_sum(grad·v) for fixed random v.
func checkCase(t *testing.T, c fdCase, seed uint64) {
	t.Helper()
	step, tol := c.step, c.tol
	if step == 0 {
		step = fdStep
	}
	if tol == 0 {
		tol = fdTol
	}
	r := rand.New(rand.NewPCG(seed, 1))
	f, loss, wrt, in := fdSetup(t, c, r)
	grads := checkGrads(t, c.name, f, loss, wrt, in, step, tol)
	b := &ir.Builder{F: f}
	var loss2 *ir.Value
	for _, g := range grads {
		v := b.Param(fmt.Sprintf("v%d", len(f.Params)), g.Type, nil)
		in = append(in, randFloats(r, g.Type, nil))
		s := b.Reduce(ir.OpReduceSum, b.Binary(ir.OpMul, g, v), allAxes(g.Type.Rank()))
		if loss2 == nil {
			loss2 = s
		} else {
			loss2 = b.Binary(ir.OpAdd, loss2, s)
		}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	checkGrads(t, c.name+" (second order)", f, loss2, wrt, in, step, tol)
	if err := f.Verify(); err != nil {
		t.Errorf("%s: %v", c.name, err)
	}
}

// TestGradComposite checks a layer norm followed by a linear layer and a
// softmax cross entropy (max-subtracted, one-hot by iota) against finite
// differences, first and second order, for every parameter and the input.
func TestGradComposite(t *testing.T) {
	const N, D, C = 4, 6, 5
	labels := []int64{1, 4, 0, 4}
	c := fdCase{
		name: "layer norm + softmax cross entropy",
		args: []fdArg{
			{t: f64(N, D)}, {t: f64(D), gen: uniformIn(0.5, 1.5)}, {t: f64(D)}, {t: f64(D, C)},
			{t: ir.T(ir.I32, N), ints: labels},
		},
		build: func(b *ir.Builder, xs []*ir.Value) *ir.Value {
			x, gamma, beta, w, lab := xs[0], xs[1], xs[2], xs[3], xs[4]
			nd := ir.Shape{N, D}
			k := func(v float64, s ...int) *ir.Value { return b.Constant(f64(s...), v) }
			rows := func(v *ir.Value, s ir.Shape) *ir.Value { return b.Broadcast(v, s, []int{0}) }
			mean := b.Binary(ir.OpDiv, b.Reduce(ir.OpReduceSum, x, []int{1}), k(D, N))
			xc := b.Binary(ir.OpSub, x, rows(mean, nd))
			v := b.Binary(ir.OpDiv, b.Reduce(ir.OpReduceSum, b.Binary(ir.OpMul, xc, xc), []int{1}), k(D, N))
			rs := b.Unary(ir.OpRsqrt, b.Binary(ir.OpAdd, v, k(1e-5, N)))
			h := b.Binary(ir.OpMul, xc, rows(rs, nd))
			h = b.Binary(ir.OpMul, h, b.Broadcast(gamma, nd, []int{1}))
			h = b.Binary(ir.OpAdd, h, b.Broadcast(beta, nd, []int{1}))
			logits := b.Dot(h, w, nil, nil, []int{1}, []int{0})
			nc := ir.Shape{N, C}
			z := b.Binary(ir.OpSub, logits, rows(b.Reduce(ir.OpReduceMax, logits, []int{1}), nc))
			lse := b.Unary(ir.OpLog, b.Reduce(ir.OpReduceSum, b.Unary(ir.OpExp, z), []int{1}))
			onehot := b.Binary(ir.OpEq, b.Iota(ir.T(ir.I32, N, C), 1), rows(lab, nc))
			picked := b.Reduce(ir.OpReduceSum, b.Select(onehot, z, k(0, N, C)), []int{1})
			nll := b.Reduce(ir.OpReduceSum, b.Binary(ir.OpSub, lse, picked), []int{0})
			return b.Binary(ir.OpDiv, nll, k(N))
		},
	}
	checkCase(t, c, 11)
}

// f64Program compiles a model and retypes it to f64, so that its gradients
// can be checked against finite differences at full precision.
func f64Program(t *testing.T, path string, defines []parser.Define) *ir.Func {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parser.Compile(path, src, defines)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ir.ParseFunc(strings.ReplaceAll(p.Func.String(), "f32[", "f64["))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestGradMLPModel checks the gradient of models/mlp.xl's loss with respect
// to every parameter (and the input features) against finite differences,
// first and second order.
func TestGradMLPModel(t *testing.T) {
	defs := []parser.Define{{Key: "batch", Value: "3"}, {Key: "features", Value: "4"}, {Key: "hidden", Value: "5"}, {Key: "classes", Value: "3"}}
	f := f64Program(t, "../models/mlp.xl", defs)
	loss := f.Result("loss")
	if loss == nil {
		t.Fatal("mlp has no loss result")
	}
	r := rand.New(rand.NewPCG(5, 6))
	var wrt []*ir.Value
	var in []*interp.Tensor
	for _, p := range f.Params {
		if p.Type.DType.IsFloat() {
			wrt = append(wrt, p)
			in = append(in, randFloats(r, p.Type, nil))
			continue
		}
		v := make([]int64, p.Type.Shape.NumElements())
		for i := range v {
			v[i] = int64(r.IntN(3))
		}
		in = append(in, interp.FromInts(p.Type, v))
	}
	if len(wrt) < 5 {
		t.Fatalf("mlp: %d float parameters, want the input and two per layer", len(wrt))
	}
	grads := checkGrads(t, "mlp", f, loss, wrt, in, fdStep, fdTol)
	b := &ir.Builder{F: f}
	var loss2 *ir.Value
	for _, g := range grads {
		s := b.Reduce(ir.OpReduceSum, b.Binary(ir.OpMul, g, g), allAxes(g.Type.Rank()))
		if loss2 == nil {
			loss2 = s
		} else {
			loss2 = b.Binary(ir.OpAdd, loss2, s)
		}
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	// The parameter-gradient penalty ‖∇θ L‖² (ARCHITECTURE.md, the train step).
	checkGrads(t, "mlp gradient penalty", f, loss2, wrt, in, fdStep, fdTol)
}

// TestGradIntermediate checks the gradient with respect to an instruction:
// the partial derivative holding everything upstream of it fixed, even when
// the loss also depends on that upstream directly.
func TestGradIntermediate(t *testing.T) {
	post := func(b *ir.Builder, e, x, w2, w3 *ir.Value) *ir.Value {
		s := b.Unary(ir.OpSin, b.Dot(e, w2, nil, nil, []int{1}, []int{0}))
		return b.Reduce(ir.OpReduceSum, b.Binary(ir.OpMul, s, b.Dot(x, w3, nil, nil, []int{1}, []int{0})), []int{0, 1})
	}
	b := ir.NewBuilder("full")
	x, w1 := b.Param("x", f64(2, 3), nil), b.Param("w1", f64(3, 4), nil)
	w2, w3 := b.Param("w2", f64(4, 5), nil), b.Param("w3", f64(3, 5), nil)
	e := b.Unary(ir.OpTanh, b.Dot(x, w1, nil, nil, []int{1}, []int{0}))
	loss := post(b, e, x, w2, w3)
	f := b.F
	r := rand.New(rand.NewPCG(9, 9))
	in := []*interp.Tensor{randFloats(r, x.Type, nil), randFloats(r, w1.Type, nil), randFloats(r, w2.Type, nil), randFloats(r, w3.Type, nil)}
	f.Results = []*ir.Value{e}
	ev, err := interp.Run(f, in)
	if err != nil {
		t.Fatal(err)
	}

	// Total derivatives of the full function.
	grads := checkGrads(t, "total", f, loss, []*ir.Value{x, w1, w2}, in, fdStep, fdTol)
	if len(grads) != 3 {
		t.Fatal(len(grads))
	}
	ge, err := Grad(f, loss, []*ir.Value{e})
	if err != nil {
		t.Fatal(err)
	}
	f.Results = ge
	got, err := interp.Run(f, in)
	if err != nil {
		t.Fatal(err)
	}

	// The same loss with e as a parameter: its gradient is the partial.
	b2 := ir.NewBuilder("partial")
	x2, ep := b2.Param("x", x.Type, nil), b2.Param("e", e.Type, nil)
	w22, w32 := b2.Param("w2", w2.Type, nil), b2.Param("w3", w3.Type, nil)
	loss2 := post(b2, ep, x2, w22, w32)
	in2 := []*interp.Tensor{in[0], ev[0], in[2], in[3]}
	want := checkGrads(t, "partial", b2.F, loss2, []*ir.Value{ep}, in2, fdStep, fdTol)
	b2.F.Results = want
	res, err := interp.Run(b2.F, in2)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res[0].F {
		if math.Abs(v-got[0].F[i]) > 1e-12*(1+math.Abs(v)) {
			t.Fatalf("d loss/d e[%d] = %v, want %v", i, got[0].F[i], v)
		}
	}
}

// TestGradVerifiesAndSimplifies runs the pipeline with verification on a
// gradient function and checks that its values survive.
func TestGradVerifiesAndSimplifies(t *testing.T) {
	f := f64Program(t, "../models/mlp.xl", []parser.Define{{Key: "batch", Value: "4"}})
	var wrt []*ir.Value
	for _, p := range f.Params {
		if p.Role() == "param" {
			wrt = append(wrt, p)
		}
	}
	loss := f.Result("loss")
	grads, err := Grad(f, loss, wrt)
	if err != nil {
		t.Fatal(err)
	}
	f.Results = append([]*ir.Value{loss}, grads...)
	f.ResultNames = nil
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var in []*interp.Tensor
	for _, p := range f.Params {
		if p.Type.DType.IsFloat() {
			in = append(in, randFloats(r, p.Type, nil))
		} else {
			in = append(in, interp.FromInts(p.Type, make([]int64, p.Type.Shape.NumElements())))
		}
	}
	before, err := interp.Run(f, in)
	if err != nil {
		t.Fatal(err)
	}
	n := len(f.Body)
	if err := passes.Run(f, passes.Options{Verify: true, Check: true}); err != nil {
		t.Fatal(err)
	}
	after, err := interp.Run(f, in)
	if err != nil {
		t.Fatal(err)
	}
	for k := range before {
		for i, v := range before[k].F {
			if w := after[k].F[i]; math.Abs(v-w) > 1e-12*(1+math.Abs(v)) {
				t.Fatalf("result %d[%d]: %v before simplify, %v after", k, i, v, w)
			}
		}
	}
	t.Logf("%d instructions, %d after the pipeline", n, len(f.Body))
}

// deepGradChain is a chain of residual blocks, x ← x + tanh((x − mean(x))·w1)·w2
// with x f32[8,16], its scalar loss and every parameter.
func deepGradChain(blocks int) (*ir.Func, *ir.Value, []*ir.Value) {
	const B, D, H = 8, 16, 32
	b := ir.NewBuilder("deep")
	x := b.Param("x", ir.T(ir.F32, B, D), nil)
	wrt := []*ir.Value{x}
	for i := range blocks {
		w1 := b.Param(fmt.Sprintf("w1_%d", i), ir.T(ir.F32, D, H), nil)
		w2 := b.Param(fmt.Sprintf("w2_%d", i), ir.T(ir.F32, H, D), nil)
		sum := b.Reduce(ir.OpReduceSum, x, []int{1})
		mean := b.Binary(ir.OpMul, sum, b.Constant(ir.T(ir.F32, B), 1.0/D))
		xc := b.Binary(ir.OpSub, x, b.Broadcast(mean, ir.Shape{B, D}, []int{0}))
		h := b.Unary(ir.OpTanh, b.Dot(xc, w1, nil, nil, []int{1}, []int{0}))
		x = b.Binary(ir.OpAdd, x, b.Dot(h, w2, nil, nil, []int{1}, []int{0}))
		wrt = append(wrt, w1, w2)
	}
	loss := b.Reduce(ir.OpReduceSum, x, []int{0, 1})
	if err := b.Err(); err != nil {
		panic(err)
	}
	return b.F, loss, wrt
}

// gradCost runs Grad on a chain of blocks and returns the instructions it
// appended and the heap allocations it made.
func gradCost(t *testing.T, blocks int) (instrs int, allocs uint64) {
	f, loss, wrt := deepGradChain(blocks)
	n := len(f.Body)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	grads, err := Grad(f, loss, wrt)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(grads) != len(wrt) {
		t.Fatalf("%d gradients for %d values", len(grads), len(wrt))
	}
	f.Results, f.ResultNames = grads, nil
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	return len(f.Body) - n, after.Mallocs - before.Mallocs
}

// TestGradDeepChainLinear checks that Grad's work is linear in the size of
// the function: ten times the blocks append ten times the instructions, and
// make at most eleven times the allocations.
func TestGradDeepChainLinear(t *testing.T) {
	i1, a1 := gradCost(t, 100)
	i10, a10 := gradCost(t, 1000)
	t.Logf("100 blocks: %d instructions, %d allocations; 1000 blocks: %d, %d", i1, a1, i10, a10)
	if i10 > 10*i1 {
		t.Errorf("Grad appended %d instructions for 1000 blocks, more than 10 × %d for 100", i10, i1)
	}
	if a10 > 11*a1 {
		t.Errorf("Grad made %d allocations for 1000 blocks, more than 11 × %d for 100", a10, a1)
	}
}

func BenchmarkGradDeepChain(b *testing.B) {
	var n int
	for b.Loop() {
		b.StopTimer()
		f, loss, wrt := deepGradChain(1000)
		n = len(f.Body)
		b.StartTimer()
		if _, err := Grad(f, loss, wrt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "instrs")
}

// TestGradErrors checks that bad calls give errors, not panics, and leave
// the function as it was.
func TestGradErrors(t *testing.T) {
	b := ir.NewBuilder("f")
	x := b.Param("x", f64(3), nil)
	i := b.Param("i", ir.T(ir.I32), nil)
	s := b.Reduce(ir.OpReduceSum, x, []int{0})
	v := b.Unary(ir.OpExp, x)
	other := ir.NewBuilder("g").Param("x", f64(3), nil)
	stray := &ir.Value{Op: ir.OpNeg, Args: []*ir.Value{x}, Type: f64(3), ID: 0}
	tests := []struct {
		name string
		y    *ir.Value
		wrt  []*ir.Value
		want string
	}{
		{"non-scalar y", v, []*ir.Value{x}, "want a float scalar"},
		{"integer y", i, []*ir.Value{x}, "want a float scalar"},
		{"nil y", nil, []*ir.Value{x}, "nil"},
		{"foreign wrt", s, []*ir.Value{x, other}, "wrt[1] (%x f64[3]) is not a value of the function"},
		{"stray wrt", s, []*ir.Value{stray}, "wrt[0] (%0 f64[3]) is not a value of the function"},
		{"nil wrt", s, []*ir.Value{nil}, "wrt[0] is nil"},
		{"foreign y", other, []*ir.Value{x}, "not a value of the function"},
	}
	for _, tc := range tests {
		n := len(b.F.Body)
		_, err := Grad(b.F, tc.y, tc.wrt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if len(b.F.Body) != n {
			t.Errorf("%s: the function grew from %d to %d instructions", tc.name, n, len(b.F.Body))
		}
	}
}
