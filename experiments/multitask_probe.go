package experiments

import (
	"fmt"
	"math"

	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
	"xlc/trainstep"
)

// A gradProbe is a model's forward pass extended, outside any train step,
// with both tasks' gradients and their Gram matrix: an independent
// measurement of what a combiner sees on one batch.
type gradProbe struct {
	f      *ir.Func
	exe    runtime.Executable
	params []string // the parameters, in the order of the main task's gradient results
}

// probeGrads is one probe: the two task losses, the Gram entries
// G_ij = ⟨g_i, g_j⟩ over all parameters, and the main task's gradient g_0.
type probeGrads struct {
	loss          [2]float64
	g00, g01, g11 float64
	main          map[string]*interp.Tensor
}

// cos is the cosine between the two tasks' gradients (0 when one is zero).
func (p *probeGrads) cos() float64 {
	if p.g00 <= 0 || p.g11 <= 0 {
		return 0
	}
	return p.g01 / math.Sqrt(p.g00*p.g11)
}

// newGradProbe compiles the probe of the embedded model file with defines
// for r's backend; tasks names the two loss outputs, main task first.
func (r *Run) newGradProbe(file string, tasks [2]string, defines ...string) (*gradProbe, error) {
	src, defs, err := modelInput(file, defines)
	if err != nil {
		return nil, err
	}
	prog, err := parser.Compile(modelPath(file), src, defs, trainstep.ConfigKeys()...)
	if err != nil {
		return nil, err
	}
	f := prog.Func
	var params []*ir.Value
	p := &gradProbe{f: f}
	for _, v := range f.Params {
		if v.Role() == "param" {
			params = append(params, v)
			p.params = append(p.params, v.Name)
		}
	}
	var losses [2]*ir.Value
	var grads [2][]*ir.Value
	for i, name := range tasks {
		if losses[i] = f.Result(name); losses[i] == nil {
			return nil, fmt.Errorf("%s has no output %s", file, name)
		}
		if grads[i], err = trainstep.Grad(f, losses[i], params); err != nil {
			return nil, err
		}
	}
	b := &ir.Builder{F: f}
	inner := func(x, y []*ir.Value) *ir.Value {
		var total *ir.Value
		for j := range x {
			axes := make([]int, x[j].Type.Rank())
			for a := range axes {
				axes[a] = a
			}
			t := b.Binary(ir.OpMul, x[j], y[j])
			if len(axes) > 0 {
				t = b.Reduce(ir.OpReduceSum, t, axes)
			}
			if total == nil {
				total = t
			} else {
				total = b.Binary(ir.OpAdd, total, t)
			}
		}
		return total
	}
	f.Results = []*ir.Value{losses[0], losses[1], inner(grads[0], grads[0]), inner(grads[0], grads[1]), inner(grads[1], grads[1])}
	f.ResultNames = []string{tasks[0], tasks[1], "g00", "g01", "g11"}
	for j, g := range grads[0] {
		f.Results = append(f.Results, g)
		f.ResultNames = append(f.ResultNames, "grad."+p.params[j])
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("gradient probe: %v", err)
	}
	var be runtime.Backend = runtime.Interp{}
	opt := passes.Options{}
	if r.Backend == "cpu" {
		be = cpu.Backend{}
		opt.Fuse, opt.FusionFuel = true, passes.UnlimitedFuel
	}
	if err := passes.Run(f, opt); err != nil {
		return nil, fmt.Errorf("gradient probe: %v", err)
	}
	if p.exe, err = be.Load(f); err != nil {
		return nil, err
	}
	return p, nil
}

// run probes t's current parameters on the batch of train step step.
func (p *gradProbe) run(t *Trainer, step int64) (*probeGrads, error) {
	state, err := t.State()
	if err != nil {
		return nil, err
	}
	named, err := runtime.BindInputs(p.f, t.data, "train", t.Seed, step)
	if err != nil {
		return nil, err
	}
	out, err := runWith(p.exe, p.f, named, state)
	if err != nil {
		return nil, fmt.Errorf("gradient probe: %v", err)
	}
	g := &probeGrads{main: map[string]*interp.Tensor{}}
	g.loss[0], g.loss[1] = out[0].Scalar(), out[1].Scalar()
	g.g00, g.g01, g.g11 = out[2].Scalar(), out[3].Scalar(), out[4].Scalar()
	for j, name := range p.params {
		g.main[name] = out[5+j]
	}
	return g, nil
}

// Close releases the compiled probe.
func (p *gradProbe) Close() {
	if c, ok := p.exe.(interface{ Close() error }); ok {
		c.Close()
	}
}

// paramNames lists t's trained parameters.
func paramNames(t *Trainer) []string {
	var names []string
	for _, p := range t.Model.Step.Params {
		if p.Role() == "param" {
			names = append(names, p.Name)
		}
	}
	return names
}

// cloneState deep-copies a state map.
func cloneState(s map[string]*interp.Tensor) map[string]*interp.Tensor {
	c := make(map[string]*interp.Tensor, len(s))
	for k, v := range s {
		c[k] = v.Clone()
	}
	return c
}

// paramDot is Σ over names of ⟨a−a0, b−b0⟩, where a nil a0 or b0 counts
// as zero: inner products and squared distances of parameter vectors.
func paramDot(names []string, a, a0, b, b0 map[string]*interp.Tensor) float64 {
	var s float64
	for _, n := range names {
		x, y := a[n].F, b[n].F
		for i := range x {
			u, v := x[i], y[i]
			if a0 != nil {
				u -= a0[n].F[i]
			}
			if b0 != nil {
				v -= b0[n].F[i]
			}
			s += u * v
		}
	}
	return s
}

// relDist is ‖a−b‖ / ‖b−ref‖ over the parameters names.
func relDist(names []string, a, b, ref map[string]*interp.Tensor) float64 {
	var num, den float64
	for _, n := range names {
		x, y, r := a[n].F, b[n].F, ref[n].F
		for i := range x {
			num += (x[i] - y[i]) * (x[i] - y[i])
			den += (y[i] - r[i]) * (y[i] - r[i])
		}
	}
	if den == 0 {
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}
