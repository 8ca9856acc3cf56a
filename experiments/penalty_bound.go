package experiments

import (
	"fmt"
	"math"

	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime/interp"
	"xlc/trainstep"
)

// boundLayers are the MLP's layers t = 1..3: the tap holding the layer's
// input h_t ("" for h_1 = x, whose Jacobian is the identity) and its weight.
var boundLayers = []struct{ tap, weight string }{{"x", "l1.w"}, {"h2", "l2.w"}, {"h3", "l3.w"}}

// boundProbe evaluates, for one training example of penalty/mlp.xl, the loss
// f of that example alone and, by xlc's reverse mode (trainstep.Grad), ∇_x f,
// ∇_θ f and the Jacobians ∇_x h_t, one row per component of h_t.
type boundProbe struct {
	f      *ir.Func
	params []*ir.Value // θ: every parameter, in f.Params order
	nJac   []int       // rows of ∇_x h_t per layer (0 for t = 1)
}

// newBoundProbe builds the probe for training row k: the model compiled
// with first = k, n = 1 (and nval = 1), so that its loss is that example's
// squared error.
func newBoundProbe(k int) (*boundProbe, error) {
	src, err := modelSource(penaltyMLP)
	if err != nil {
		return nil, err
	}
	defs := []parser.Define{{Key: "first", Value: fmt.Sprint(k)}, {Key: "n", Value: "1"}, {Key: "nval", Value: "1"}}
	prog, err := parser.Compile(modelPath(penaltyMLP), src, defs, trainstep.ConfigKeys()...)
	if err != nil {
		return nil, err
	}
	f := prog.Func
	p := &boundProbe{f: f}
	for _, v := range f.Params {
		if v.Role() == "param" {
			p.params = append(p.params, v)
		}
	}
	loss, x := f.Result("loss"), prog.Taps["x"]
	if loss == nil || x == nil {
		return nil, fmt.Errorf("%s: want an output loss and a tap x", penaltyMLP)
	}
	g, err := trainstep.Grad(f, loss, append([]*ir.Value{x}, p.params...))
	if err != nil {
		return nil, err
	}
	results := append([]*ir.Value{loss}, g...)
	b := &ir.Builder{F: f}
	for _, l := range boundLayers {
		h := prog.Taps[l.tap]
		if h == nil {
			return nil, fmt.Errorf("%s: no tap %s", penaltyMLP, l.tap)
		}
		// The model's rows are the example and one validation point: h_t
		// is row 0 (the loss does not depend on row 1).
		if h.Type.Rank() != 2 {
			return nil, fmt.Errorf("tap %s: want [rows, d], have %v", l.tap, h.Type)
		}
		d := h.Type.Shape[1]
		results = append(results, b.Slice(h, []int{0, 0}, []int{1, d}, []int{1, 1}))
		if h == x {
			p.nJac = append(p.nJac, 0)
			continue
		}
		p.nJac = append(p.nJac, d)
		for c := range d {
			hc := b.Reshape(b.Slice(h, []int{0, c}, []int{1, c + 1}, []int{1, 1}), ir.Shape{})
			if err := b.Err(); err != nil {
				return nil, err
			}
			row, err := trainstep.Grad(f, hc, []*ir.Value{x})
			if err != nil {
				return nil, err
			}
			results = append(results, row[0])
		}
	}
	f.Results = results
	f.ResultNames = make([]string, len(results))
	for i := range results {
		f.ResultNames[i] = fmt.Sprintf("r%d", i)
	}
	if err := passes.Run(f, passes.Options{}); err != nil {
		return nil, err
	}
	return p, nil
}

// boundSides are the two sides of the inequality for one example.
type boundSides struct{ lhs, rhs float64 }

// eval computes both sides with the parameters in state:
// lhs = ‖∇_x f‖² · Σ_t (1 + ‖h_t‖²) / (‖W_t‖² · ‖∇_x h_t‖²), rhs = ‖∇_θ f‖²,
// with ‖W_t‖ and ‖∇_x h_t‖ spectral norms (operator norms, which make the
// inequality a theorem) and the others Euclidean.
func (p *boundProbe) eval(state map[string]*interp.Tensor) (boundSides, error) {
	args := make([]*interp.Tensor, len(p.f.Params))
	for i, v := range p.f.Params {
		t := state[v.Name]
		if t == nil {
			return boundSides{}, fmt.Errorf("bound probe: no state for %s", v.Name)
		}
		args[i] = t
	}
	res, err := interp.Run(p.f, args)
	if err != nil {
		return boundSides{}, err
	}
	gx := sumSq(res[1].Floats())
	rhs := 0.0
	for _, g := range res[2 : 2+len(p.params)] {
		rhs += sumSq(g.Floats())
	}
	k := 2 + len(p.params)
	sum := 0.0
	for t, l := range boundLayers {
		h := res[k].Floats()
		k++
		w := state[l.weight]
		if w == nil || w.Type.Rank() != 2 {
			return boundSides{}, fmt.Errorf("bound probe: no weight matrix %s", l.weight)
		}
		wn := spectralNorm(w.Floats(), w.Type.Shape[0], w.Type.Shape[1])
		jn := 1.0
		if d := p.nJac[t]; d > 0 {
			var jac []float64
			for _, row := range res[k : k+d] {
				jac = append(jac, row.Floats()...)
			}
			k += d
			jn = spectralNorm(jac, d, len(jac)/d)
		}
		sum += (1 + sumSq(h)) / (wn * wn * jn * jn)
	}
	return boundSides{lhs: gx * sum, rhs: rhs}, nil
}

func sumSq(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return s
}

// spectralNorm is the largest singular value of the rows×cols matrix a
// (row-major), by power iteration on AᵀA until the estimate settles.
func spectralNorm(a []float64, rows, cols int) float64 {
	v := make([]float64, cols)
	for i := range v {
		v[i] = 1 + 0.01*float64(i)
	}
	u := make([]float64, rows)
	est := 0.0
	for it := 0; it < 2000; it++ {
		for r := range rows {
			s := 0.0
			for c := range cols {
				s += a[r*cols+c] * v[c]
			}
			u[r] = s
		}
		for c := range cols {
			s := 0.0
			for r := range rows {
				s += a[r*cols+c] * u[r]
			}
			v[c] = s
		}
		n := math.Sqrt(sumSq(v))
		if n == 0 {
			return 0
		}
		for c := range v {
			v[c] /= n
		}
		// ‖AᵀA v‖ for the previous unit v estimates σ².
		prev := est
		est = math.Sqrt(n)
		if it > 10 && math.Abs(est-prev) <= 1e-13*est {
			break
		}
	}
	return est
}
