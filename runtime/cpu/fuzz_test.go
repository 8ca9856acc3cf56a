package cpu

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"xlc/ir"
	"xlc/passes"
)

// graphGen grows one random f32 graph of elementwise, shape, reduce and dot
// ops in a builder shared with other graphs.
type graphGen struct {
	r      *rand.Rand
	b      *ir.Builder
	name   string
	vals   []*ir.Value
	params int
}

func (g *graphGen) shape() ir.Shape {
	s := make(ir.Shape, g.r.Intn(4))
	for i := range s {
		s[i] = 1 + g.r.Intn(5)
	}
	return s
}

func (g *graphGen) param(s ir.Shape) *ir.Value {
	g.params++
	v := g.b.Param(fmt.Sprintf("%s_p%d", g.name, g.params), ir.Type{DType: ir.F32, Shape: s}, nil)
	g.vals = append(g.vals, v)
	return v
}

func (g *graphGen) pick() *ir.Value { return g.vals[g.r.Intn(len(g.vals))] }

// partner returns a value of x's shape: an existing one, a broadcast of a
// smaller one, a new parameter or a constant.
func (g *graphGen) partner(x *ir.Value) *ir.Value {
	var same []*ir.Value
	for _, v := range g.vals {
		if v.Type.Equal(x.Type) && v != x {
			same = append(same, v)
		}
	}
	switch k := g.r.Intn(6); {
	case k < 2 && len(same) > 0:
		return same[g.r.Intn(len(same))]
	case k < 3 && x.Type.Rank() > 0:
		// Broadcast a parameter holding a subset of x's dims.
		var dims []int
		var s ir.Shape
		for i, n := range x.Type.Shape {
			if g.r.Intn(2) == 0 {
				dims = append(dims, i)
				s = append(s, n)
			}
		}
		if s == nil {
			s = ir.Shape{}
		}
		g.params++
		p := g.b.Param(fmt.Sprintf("%s_p%d", g.name, g.params), ir.Type{DType: ir.F32, Shape: s}, nil)
		return g.b.Broadcast(p, x.Type.Shape, dims)
	case k < 4:
		return g.b.Constant(x.Type, float64(g.r.Intn(7)-3)/2)
	}
	g.params++
	return g.b.Param(fmt.Sprintf("%s_p%d", g.name, g.params), x.Type, nil)
}

var (
	fuzzUnary  = []ir.Op{ir.OpNeg, ir.OpAbs, ir.OpTanh, ir.OpSin, ir.OpCos, ir.OpErf, ir.OpExp, ir.OpLog, ir.OpSqrt, ir.OpRsqrt, ir.OpRecip, ir.OpSign}
	fuzzBinary = []ir.Op{ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpMax, ir.OpMin, ir.OpDiv, ir.OpPow}
)

// step appends one random instruction.
func (g *graphGen) step() {
	b, r := g.b, g.r
	x := g.pick()
	s := x.Type.Shape
	var v *ir.Value
	switch k := r.Intn(16); {
	case k < 3:
		op := fuzzUnary[r.Intn(len(fuzzUnary))]
		if r.Intn(3) > 0 {
			op = fuzzUnary[r.Intn(6)] // mostly bounded ones
		}
		v = b.Unary(op, x)
	case k < 6:
		op := fuzzBinary[r.Intn(len(fuzzBinary))]
		if r.Intn(3) > 0 {
			op = fuzzBinary[r.Intn(5)]
		}
		v = b.Binary(op, x, g.partner(x))
	case k == 6:
		y := g.partner(x)
		v = b.Select(b.Binary(ir.OpGt, x, y), x, y)
	case k == 7 && len(s) < 4:
		at := r.Intn(len(s) + 1)
		ns := append(append(append(ir.Shape{}, s[:at]...), 1+r.Intn(4)), s[at:]...)
		var dims []int
		for i := range s {
			if i < at {
				dims = append(dims, i)
			} else {
				dims = append(dims, i+1)
			}
		}
		v = b.Broadcast(x, ns, dims)
	case k == 8 && len(s) > 1:
		v = b.Transpose(x, r.Perm(len(s)))
	case k == 9:
		n := s.NumElements()
		var ns ir.Shape
		for _, f := range []int{2, 3, 5} {
			if n%f == 0 && r.Intn(2) == 0 {
				ns = append(ns, f)
				n /= f
			}
		}
		ns = append(ns, n)
		v = b.Reshape(x, ns)
	case k == 10 && len(s) > 0:
		start, limit, stride := make([]int, len(s)), make([]int, len(s)), make([]int, len(s))
		for i, n := range s {
			start[i] = r.Intn(n)
			limit[i] = start[i] + 1 + r.Intn(n-start[i])
			stride[i] = 1 + r.Intn(2)
		}
		v = b.Slice(x, start, limit, stride)
	case k == 11 && len(s) > 0:
		lo, hi, in := make([]int, len(s)), make([]int, len(s)), make([]int, len(s))
		for i := range s {
			lo[i], hi[i], in[i] = r.Intn(2), r.Intn(2), r.Intn(2)
		}
		v = b.Pad(x, lo, hi, in)
	case k == 12 && len(s) > 0:
		v = b.Concat(r.Intn(len(s)), x, g.partner(x))
	case k == 13 && len(s) > 0:
		var axes []int
		for i := range s {
			if r.Intn(2) == 0 {
				axes = append(axes, i)
			}
		}
		if axes == nil {
			axes = []int{r.Intn(len(s))}
		}
		sort.Ints(axes)
		op := ir.OpReduceSum
		if r.Intn(2) == 0 {
			op = ir.OpReduceMax
		}
		v = b.Reduce(op, x, axes)
	case k == 14 && len(s) > 0:
		// Contract x's last dim with a new [k, n] parameter, or batched.
		kd := s[len(s)-1]
		if len(s) == 3 && r.Intn(2) == 0 {
			y := g.param(ir.Shape{s[0], kd, 1 + r.Intn(4)})
			v = b.Dot(x, y, []int{0}, []int{0}, []int{2}, []int{1})
		} else {
			y := g.param(ir.Shape{kd, 1 + r.Intn(4)})
			v = b.Dot(x, y, nil, nil, []int{len(s) - 1}, []int{0})
		}
	case k == 15:
		d := []ir.DType{ir.F16, ir.BF16, ir.F64}[r.Intn(3)]
		w := b.Convert(x, d)
		if r.Intn(2) == 0 {
			w = b.Binary(ir.OpMul, w, w)
		}
		v = b.Convert(w, ir.F32)
	default:
		return
	}
	if v.Type.Shape.NumElements() <= 400 {
		g.vals = append(g.vals, v)
	}
}

// TestRandomGraphs compares the cpu backend with the interpreter on 200
// seeded random graphs (built 25 to a function, to keep the number of
// shared objects small).
func TestRandomGraphs(t *testing.T) {
	needLLVM(t)
	const graphs, perFunc = 200, 25
	for fn := 0; fn < graphs/perFunc; fn++ {
		b := ir.NewBuilder(fmt.Sprintf("random%d", fn))
		var results []*ir.Value
		var names []string
		var firsts []int
		for k := 0; k < perFunc; k++ {
			seed := int64(fn*perFunc + k)
			g := &graphGen{r: rand.New(rand.NewSource(seed)), b: b, name: fmt.Sprintf("g%d", seed)}
			g.param(g.shape())
			g.param(g.shape())
			steps := 3 + g.r.Intn(10)
			for range steps {
				g.step()
			}
			firsts = append(firsts, len(results))
			for _, v := range []*ir.Value{g.vals[len(g.vals)-1], g.pick()} {
				if !v.IsParam() {
					results = append(results, v)
					names = append(names, fmt.Sprintf("g%d_r%d", seed, len(results)))
				}
			}
		}
		b.Return(names, results...)
		if err := b.Err(); err != nil {
			t.Fatal(err)
		}
		f := b.F
		args := randomArgs(f, int64(fn), 0, 0)
		want, got := runBoth(t, f, args)
		for i := range f.Results {
			if msg := diff(got[i], want[i], 1e-5); msg != "" {
				t.Errorf("%s: %s\n%s", f.ResultNames[i], msg, f)
			}
		}
		// The same graphs fused (multi-output kernels included) run on the
		// cpu as the unfused ones on the interpreter.
		g, err := ir.ParseFunc(f.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := passes.Run(g, passes.Options{Verify: true, Passes: []string{"fusion"}, FusionFuel: passes.UnlimitedFuel}); err != nil {
			t.Fatal(err)
		}
		fusedGot, err := load(t, g).Run(args)
		if err != nil {
			t.Fatalf("cpu, fused: %v", err)
		}
		for i := range g.Results {
			if msg := diff(fusedGot[i], want[i], 1e-5); msg != "" {
				t.Errorf("fused: %s: %s\n%s", g.ResultNames[i], msg, g)
			}
		}
	}
}
