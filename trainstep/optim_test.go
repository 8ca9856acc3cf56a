package trainstep

import (
	"math"
	"regexp"
	"slices"
	"testing"

	"xlc/ir"
	"xlc/passes"
	"xlc/runtime/interp"
)

// optParam is one parameter of an optimizer test: its name, shape and
// initial values.
type optParam struct {
	name  string
	shape []int
	init  []float64
}

// optLRs are the learning rates of the three test steps.
var optLRs = []float64{0.1, 0.05, 0.2}

// f32r rounds x to f32, as the state is stored.
func f32r(x float64) float64 { return float64(float32(x)) }

// optRef is a direct Go statement of one optimizer's update in float64;
// state is keyed by the same names the graph uses, and every value is
// rounded to f32 after each step, as it is stored.
type optRef struct {
	cfg    Config
	params []optParam
	p      map[string][]float64
	st     map[string][]float64
}

func newOptRef(cfg Config, params []optParam) *optRef {
	r := &optRef{cfg: cfg, params: params, p: map[string][]float64{}, st: map[string][]float64{}}
	for _, p := range params {
		r.p[p.name] = slices.Clone(p.init)
	}
	return r
}

// vec returns the state name, creating it filled with v.
func (r *optRef) vec(name string, n int, v float64) []float64 {
	if x, ok := r.st[name]; ok {
		return x
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = v
	}
	r.st[name] = x
	return x
}

func (r *optRef) scalar(name string, v float64) float64 { return r.vec(name, 1, v)[0] }

func (r *optRef) decays(p optParam) bool {
	return r.cfg.WeightDecay != 0 && (r.cfg.DecayAll || len(p.shape) >= 2)
}

// gammaAuto is 0.01 / (‖g‖² + 1e-30) over all coordinates of grads.
func gammaAuto(grads [][]float64) float64 {
	sum := 0.0
	for _, g := range grads {
		for _, x := range g {
			sum += x * x
		}
	}
	return 0.01 / (sum + 1e-30)
}

// adam updates the moments under prefix and returns the directions
// m̂/(√v̂ + ε) and the old step count.
func (r *optRef) adam(prefix string, grads [][]float64) ([][]float64, float64) {
	c := r.cfg
	t := r.scalar(prefix+".t", 0)
	r.st[prefix+".t"] = []float64{t + 1}
	bc1 := 1 - math.Pow(c.Beta1, t+1)
	bc2 := 1 - math.Pow(c.Beta2, t+1)
	var dirs [][]float64
	for i, p := range r.params {
		m := r.vec(prefix+".m."+p.name, len(p.init), 0)
		v := r.vec(prefix+".v."+p.name, len(p.init), 0)
		d := make([]float64, len(m))
		for j, g := range grads[i] {
			m[j] = c.Beta1*m[j] + (1-c.Beta1)*g
			v[j] = c.Beta2*v[j] + (1-c.Beta2)*g*g
			d[j] = (m[j] / bc1) / (math.Sqrt(v[j]/bc2) + c.Eps)
		}
		dirs = append(dirs, d)
	}
	return dirs, t
}

// step applies one update with learning rate lr.
func (r *optRef) step(grads [][]float64, lr float64) {
	c := r.cfg
	switch c.Optimizer {
	case "sgd":
		for i, p := range r.params {
			w := r.p[p.name]
			for j, g := range grads[i] {
				upd := g
				if c.Momentum != 0 {
					v := r.vec("sgd.v."+p.name, len(w), 0)
					v[j] = c.Momentum*v[j] + g
					upd = v[j]
					if c.Nesterov {
						upd = g + c.Momentum*v[j]
					}
				}
				if r.decays(p) {
					upd += c.WeightDecay * w[j]
				}
				w[j] -= lr * upd
			}
		}
	case "adamw":
		dirs, _ := r.adam("adamw", grads)
		for i, p := range r.params {
			w := r.p[p.name]
			for j := range w {
				if r.decays(p) {
					w[j] *= 1 - lr*c.WeightDecay
				}
				w[j] -= lr * dirs[i][j]
			}
		}
	case "eg":
		re := regexp.MustCompile("$^")
		if c.EGNonneg != "" {
			re = regexp.MustCompile(c.EGNonneg)
		}
		t := r.scalar("eg.t", 0)
		r.st["eg.t"] = []float64{t + 1}
		for i, p := range r.params {
			w := r.p[p.name]
			if re.MatchString(p.name) {
				for j, g := range grads[i] {
					w[j] *= math.Exp(-lr * g)
				}
				continue
			}
			pos := r.vec("eg.pos."+p.name, len(w), 0)
			neg := r.vec("eg.neg."+p.name, len(w), 0)
			for j, g := range grads[i] {
				if t == 0 {
					pos[j] = math.Max(w[j], 0) + 1e-3
					neg[j] = math.Max(-w[j], 0) + 1e-3
				}
				pos[j] *= math.Exp(-lr * g)
				neg[j] *= math.Exp(lr * g)
				w[j] = pos[j] - neg[j]
			}
		}
	case "eg_adaptive":
		gamma := c.EGGamma
		if gamma == 0 {
			t := r.scalar("eg_adaptive.t", 0)
			r.st["eg_adaptive.t"] = []float64{t + 1}
			if t == 0 {
				r.st["eg_adaptive.gamma"] = []float64{gammaAuto(grads)}
			}
			gamma = r.st["eg_adaptive.gamma"][0]
		}
		for i, p := range r.params {
			w := r.p[p.name]
			nu := r.vec("eg_adaptive.nu."+p.name, len(w), 1)
			prev := r.vec("eg_adaptive.gprev."+p.name, len(w), 0)
			for j, g := range grads[i] {
				nu[j] *= math.Exp(gamma * prev[j] * g)
				w[j] -= lr * nu[j] * g
				prev[j] = g
			}
		}
	case "eg_adam":
		dirs, t := r.adam("eg_adam", grads)
		gammaQ, gammaS := c.EGGamma, c.EGGamma
		if c.EGGamma == 0 {
			if t == 0 {
				abs, mx := 0.0, 0.0
				for _, g := range grads {
					for _, x := range g {
						abs += math.Abs(x)
						mx = math.Max(mx, math.Abs(x))
					}
				}
				r.st["eg_adam.gamma"] = []float64{0.01 / (c.LR*mx + 1e-30)}
				r.st["eg_adam.gamma_s"] = []float64{0.01 / (c.LR*abs + 1e-30)}
			}
			gammaQ, gammaS = r.st["eg_adam.gamma"][0], r.st["eg_adam.gamma_s"][0]
		}
		align := 0.0
		for i, p := range r.params {
			prev := r.vec("eg_adam.u."+p.name, len(p.init), 0)
			for j, g := range grads[i] {
				align += g * prev[j]
			}
		}
		s := r.scalar("eg_adam.s", 1) * math.Exp(gammaS*lr*align)
		r.st["eg_adam.s"] = []float64{s}
		for i, p := range r.params {
			w := r.p[p.name]
			q := r.vec("eg_adam.q."+p.name, len(w), 1)
			prev := r.st["eg_adam.u."+p.name]
			mean := 0.0
			for j, g := range grads[i] {
				q[j] *= math.Exp(gammaQ * lr * g * prev[j])
				mean += q[j]
			}
			mean /= float64(len(q))
			for j := range w {
				q[j] /= mean
				prev[j] = q[j] * dirs[i][j]
				if r.decays(p) {
					w[j] *= 1 - lr*c.WeightDecay
				}
				w[j] -= lr * s * prev[j]
			}
		}
	default:
		panic("optRef: " + c.Optimizer)
	}
	for _, m := range []map[string][]float64{r.p, r.st} {
		for _, x := range m {
			for j := range x {
				x[j] = f32r(x[j])
			}
		}
	}
}

// stateInit builds a state parameter's initial tensor from its init and
// scale attributes, as the trainer does.
func stateInit(t *testing.T, p *ir.Value) *interp.Tensor {
	v := 0.0
	switch init := p.Attrs.String("init"); init {
	case "zeros":
	case "ones":
		v = 1
	case "constant":
		v = p.Attrs.Float("scale")
	default:
		t.Fatalf("state %s: init %q", p.Name, init)
	}
	vals := make([]float64, p.Type.Shape.NumElements())
	for i := range vals {
		vals[i] = v
	}
	return interp.FromFloats(p.Type, vals)
}

// closeRel reports whether have is within 1e-6 relative of want.
func closeRel(have, want float64) bool {
	return math.Abs(have-want) <= 1e-6*math.Max(math.Abs(have), math.Abs(want))+1e-30
}

// runOptim builds one optimizer step over params, simplified by the pass
// pipeline when simplify is set, runs it three times with three gradients
// and learning rates, feeding every state result back, and compares every
// parameter and state with optRef after each step. It returns the state
// names the graph declared.
func runOptim(t *testing.T, cfg Config, params []optParam, grads [3][][]float64, simplify bool) []string {
	t.Helper()
	b := ir.NewBuilder("step")
	st := NewStateSet(b)
	var ps, gs []*ir.Value
	for _, p := range params {
		ps = append(ps, b.Param(p.name, ir.T(ir.F32, p.shape...), ir.Attrs{}.Set("role", "param").Set("init", "zeros")))
	}
	for _, p := range params {
		gs = append(gs, b.Param("grad."+p.name, ir.T(ir.F32, p.shape...), nil))
	}
	lr := b.Param("lr", ir.T(ir.F32), nil)
	newp, err := OptimizerUpdate(b, st, &cfg, lr, ps, gs)
	if err != nil {
		t.Fatal(err)
	}
	names, vals, err := st.Results()
	if err != nil {
		t.Fatal(err)
	}
	var resNames []string
	for _, p := range params {
		resNames = append(resNames, p.name)
	}
	b.Return(append(resNames, names...), append(newp, vals...)...)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	f := b.F
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	if simplify {
		if err := passes.Run(f, passes.Options{Verify: true, Check: true}); err != nil {
			t.Fatal(err)
		}
	}
	cur := map[string]*interp.Tensor{}
	for i, p := range params {
		cur[p.name] = interp.FromFloats(ps[i].Type, p.init)
	}
	for _, p := range f.Params {
		if p.Role() == "state" {
			cur[p.Name] = stateInit(t, p)
		}
	}
	ref := newOptRef(cfg, params)
	for k := range 3 {
		for i, p := range params {
			cur["grad."+p.name] = interp.FromFloats(gs[i].Type, grads[k][i])
		}
		cur["lr"] = interp.FromFloats(lr.Type, []float64{optLRs[k]})
		args := make([]*interp.Tensor, len(f.Params))
		for i, p := range f.Params {
			args[i] = cur[p.Name]
		}
		res, err := interp.Run(f, args)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range f.ResultNames {
			cur[n] = res[i]
		}
		ref.step(grads[k], f32r(optLRs[k]))
		for _, n := range f.ResultNames {
			want, ok := ref.p[n]
			if !ok {
				want, ok = ref.st[n]
			}
			if !ok {
				t.Fatalf("step %d: graph state %s has no reference", k+1, n)
			}
			have := cur[n].Floats()
			for j := range want {
				if !closeRel(have[j], want[j]) {
					t.Errorf("step %d: %s[%d] = %.9g, want %.9g (rel %.2g)", k+1, n, j, have[j], want[j], math.Abs(have[j]-want[j])/math.Abs(want[j]))
				}
			}
		}
		if len(f.ResultNames) != len(ref.p)+len(ref.st) {
			t.Fatalf("step %d: graph results %v; reference has %d params and %d states", k+1, f.ResultNames, len(ref.p), len(ref.st))
		}
	}
	return names
}

// optParams are a matrix, a vector (rank 1: not decayed by default) and a
// positive matrix (for plain EG).
var optParams = []optParam{
	{"layer0.fc.w", []int{2, 3}, []float64{0.837, -0.983, 1.171, -1.219, 0.864, 0.992}},
	{"layer0.fc.b", []int{3}, []float64{0.873, -0.941, 1.058}},
	{"layer0.gain", []int{2, 2}, []float64{1.037, 0.841, 2.113, 0.976}},
}

// optGrads are the gradients of the three test steps, per parameter. Every
// coordinate's gradient flips sign at step 2, and half of them flip back at
// step 3, so eg_adaptive sees both agreeing and alternating signs; the
// magnitudes are chosen so that no moment, momentum or parameter update
// cancels to nearly zero, where f32 rounding of the operands would make a
// 1e-6 relative comparison meaningless.
var optGrads = func() [3][][]float64 {
	var gs [3][][]float64
	k := 0
	for _, p := range optParams {
		var g1, g2, g3 []float64
		for range p.init {
			u := math.Mod(float64(k)*0.6180339887, 1)
			sgn := 1.0
			if k%3 == 1 {
				sgn = -1
			}
			g1 = append(g1, sgn*(0.08+0.07*u))
			g2 = append(g2, -sgn*(0.4+0.2*u))
			if k%2 == 0 {
				g3 = append(g3, sgn*(0.04+0.03*u))
			} else {
				g3 = append(g3, -sgn*(0.2+0.2*u))
			}
			k++
		}
		gs[0], gs[1], gs[2] = append(gs[0], g1), append(gs[1], g2), append(gs[2], g3)
	}
	return gs
}()

func TestOptimizers(t *testing.T) {
	def := DefaultConfig()
	with := func(f func(c *Config)) Config {
		c := def
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		cfg    Config
		states []string // expected state names (order-independent)
	}{
		{"sgd", with(func(c *Config) { c.Optimizer = "sgd" }), nil},
		{"sgd_momentum", with(func(c *Config) { c.Optimizer, c.Momentum, c.WeightDecay = "sgd", 0.9, 0.01 }),
			[]string{"sgd.v.layer0.fc.w", "sgd.v.layer0.fc.b", "sgd.v.layer0.gain"}},
		{"sgd_nesterov", with(func(c *Config) { c.Optimizer, c.Momentum, c.Nesterov = "sgd", 0.8, true }),
			[]string{"sgd.v.layer0.fc.w", "sgd.v.layer0.fc.b", "sgd.v.layer0.gain"}},
		{"adamw", with(func(c *Config) { c.Optimizer, c.WeightDecay = "adamw", 0.5 }),
			[]string{"adamw.t", "adamw.m.layer0.fc.w", "adamw.v.layer0.fc.w", "adamw.m.layer0.fc.b", "adamw.v.layer0.fc.b", "adamw.m.layer0.gain", "adamw.v.layer0.gain"}},
		{"adamw_decay_all", with(func(c *Config) { c.Optimizer, c.WeightDecay, c.DecayAll, c.Beta1 = "adamw", 0.3, true, 0.8 }),
			[]string{"adamw.t", "adamw.m.layer0.fc.w", "adamw.v.layer0.fc.w", "adamw.m.layer0.fc.b", "adamw.v.layer0.fc.b", "adamw.m.layer0.gain", "adamw.v.layer0.gain"}},
		{"eg", with(func(c *Config) { c.Optimizer, c.EGNonneg = "eg", `gain$` }),
			[]string{"eg.t", "eg.pos.layer0.fc.w", "eg.neg.layer0.fc.w", "eg.pos.layer0.fc.b", "eg.neg.layer0.fc.b"}},
		{"eg_adaptive", with(func(c *Config) { c.Optimizer, c.EGGamma = "eg_adaptive", 2.5 }),
			[]string{"eg_adaptive.nu.layer0.fc.w", "eg_adaptive.gprev.layer0.fc.w", "eg_adaptive.nu.layer0.fc.b", "eg_adaptive.gprev.layer0.fc.b", "eg_adaptive.nu.layer0.gain", "eg_adaptive.gprev.layer0.gain"}},
		{"eg_adaptive_auto", with(func(c *Config) { c.Optimizer = "eg_adaptive" }),
			[]string{"eg_adaptive.t", "eg_adaptive.gamma", "eg_adaptive.nu.layer0.fc.w", "eg_adaptive.gprev.layer0.fc.w", "eg_adaptive.nu.layer0.fc.b", "eg_adaptive.gprev.layer0.fc.b", "eg_adaptive.nu.layer0.gain", "eg_adaptive.gprev.layer0.gain"}},
		{"eg_adam", with(func(c *Config) { c.Optimizer, c.EGGamma, c.WeightDecay = "eg_adam", 3, 0.2 }),
			[]string{"eg_adam.t", "eg_adam.m.layer0.fc.w", "eg_adam.v.layer0.fc.w", "eg_adam.m.layer0.fc.b", "eg_adam.v.layer0.fc.b", "eg_adam.m.layer0.gain", "eg_adam.v.layer0.gain",
				"eg_adam.s", "eg_adam.u.layer0.fc.w", "eg_adam.u.layer0.fc.b", "eg_adam.u.layer0.gain", "eg_adam.q.layer0.fc.w", "eg_adam.q.layer0.fc.b", "eg_adam.q.layer0.gain"}},
		{"eg_adam_auto", with(func(c *Config) { c.Optimizer, c.LR = "eg_adam", 0.1 }),
			[]string{"eg_adam.t", "eg_adam.gamma", "eg_adam.gamma_s", "eg_adam.m.layer0.fc.w", "eg_adam.v.layer0.fc.w", "eg_adam.m.layer0.fc.b", "eg_adam.v.layer0.fc.b", "eg_adam.m.layer0.gain", "eg_adam.v.layer0.gain",
				"eg_adam.s", "eg_adam.u.layer0.fc.w", "eg_adam.u.layer0.fc.b", "eg_adam.u.layer0.gain", "eg_adam.q.layer0.fc.w", "eg_adam.q.layer0.fc.b", "eg_adam.q.layer0.gain"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, simplify := range []bool{false, true} {
				names := runOptim(t, tc.cfg, optParams, optGrads, simplify)
				got, want := slices.Sorted(slices.Values(names)), slices.Sorted(slices.Values(tc.states))
				if !slices.Equal(got, want) {
					t.Errorf("states %v, want %v", got, want)
				}
			}
		})
	}
}

// TestOptimRank1NotDecayed checks, independently of the reference, that
// AdamW's decay skips a rank-1 parameter: with zero gradients the Adam step
// is 0, so the vector stays put and the matrix shrinks by 1 − lr·wd.
func TestOptimRank1NotDecayed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightDecay = 0.5
	b := ir.NewBuilder("step")
	st := NewStateSet(b)
	w := b.Param("w", ir.T(ir.F32, 2, 2), nil)
	v := b.Param("v", ir.T(ir.F32, 2), nil)
	lr := b.Constant(ir.T(ir.F32), 0.1)
	out, err := OptimizerUpdate(b, st, &cfg, lr, []*ir.Value{w, v}, []*ir.Value{b.Constant(w.Type, 0), b.Constant(v.Type, 0)})
	if err != nil {
		t.Fatal(err)
	}
	_, sv, _ := st.Results()
	b.Return(nil, append(out, sv...)...)
	args := []*interp.Tensor{interp.FromFloats(w.Type, []float64{1, 2, 3, 4}), interp.FromFloats(v.Type, []float64{1, 2})}
	for _, p := range b.F.Params[2:] {
		args = append(args, stateInit(t, p))
	}
	res, err := interp.Run(b.F, args)
	if err != nil {
		t.Fatal(err)
	}
	if got := res[1].Floats(); got[0] != 1 || got[1] != 2 {
		t.Errorf("rank-1 parameter decayed: %v", got)
	}
	if got := res[0].Floats(); got[3] != f32r(4*f32r(1-f32r(0.1)*f32r(0.5))) {
		t.Errorf("matrix not decayed: %v", got)
	}
}

// TestOptimEGPositive checks that EG± reproduces p exactly at the first
// split and that plain EG keeps a parameter positive under large steps.
func TestOptimEGPositive(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Optimizer, cfg.EGNonneg = "eg", "^pos$"
	b := ir.NewBuilder("step")
	st := NewStateSet(b)
	pos := b.Param("pos", ir.T(ir.F32, 3), nil)
	lr := b.Constant(ir.T(ir.F32), 50)
	out, err := OptimizerUpdate(b, st, &cfg, lr, []*ir.Value{pos}, []*ir.Value{b.Constant(pos.Type, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b.Return(nil, out...)
	st.Results()
	args := []*interp.Tensor{interp.FromFloats(pos.Type, []float64{1, 2, 3})}
	for _, p := range b.F.Params[1:] {
		args = append(args, stateInit(t, p))
	}
	res, err := interp.Run(b.F, args)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res[0].Floats() {
		if !(x > 0) {
			t.Errorf("plain EG went non-positive: %v", res[0].Floats())
		}
	}
}

func TestOptimErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
	}{
		{"unknown", func(c *Config) { c.Optimizer = "lion" }},
		{"regexp", func(c *Config) { c.Optimizer, c.EGNonneg = "eg", "(" }},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		b := ir.NewBuilder("step")
		p := b.Param("p", ir.T(ir.F32, 2), nil)
		if _, err := OptimizerUpdate(b, NewStateSet(b), &cfg, b.Constant(ir.T(ir.F32), 1), []*ir.Value{p}, []*ir.Value{p}); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	cfg := DefaultConfig()
	b := ir.NewBuilder("step")
	p := b.Param("p", ir.T(ir.F32, 2), nil)
	if _, err := OptimizerUpdate(b, NewStateSet(b), &cfg, b.Constant(ir.T(ir.F32), 1), []*ir.Value{p}, nil); err == nil {
		t.Error("mismatched grads: no error")
	}
}

// refSchedule is LearningRate's formula in float64.
func refSchedule(c Config, step int) float64 {
	if step < c.Warmup {
		return c.LR * float64(step+1) / float64(c.Warmup)
	}
	lo := c.MinLRRatio * c.LR
	p := math.Min(math.Max(float64(step-c.Warmup)/float64(max(1, c.Steps-c.Warmup)), 0), 1)
	switch c.Schedule {
	case "cosine":
		return lo + (c.LR-lo)*(1+math.Cos(math.Pi*p))/2
	case "linear":
		return c.LR - (c.LR-lo)*p
	}
	return c.LR
}

func TestSchedule(t *testing.T) {
	steps := []int{0, 1, 4, 5, 6, 10, 50, 54, 55, 99, 100, 101, 150, 1000}
	for _, sched := range []string{"constant", "cosine", "linear"} {
		for _, warm := range []int{0, 5} {
			c := DefaultConfig()
			c.Schedule, c.Warmup, c.Steps, c.LR, c.MinLRRatio = sched, warm, 100, 0.01, 0.1
			b := ir.NewBuilder("lr")
			step := b.Param("step", ir.T(ir.I64), nil)
			b.Return([]string{"lr"}, LearningRate(b, &c, step))
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				res, err := interp.Run(b.F, []*interp.Tensor{interp.FromInts(step.Type, []int64{int64(s)})})
				if err != nil {
					t.Fatal(err)
				}
				have, want := res[0].Scalar(), f32r(refSchedule(c, s))
				// f32 arithmetic around cos: a few ulp of LR.
				if math.Abs(have-want) > 1e-6*c.LR {
					t.Errorf("%s warmup %d step %d: lr %.9g, want %.9g", sched, warm, s, have, want)
				}
			}
		}
	}
	// Spot values: the warmup ramp, the end of warmup and the floor.
	c := DefaultConfig()
	c.Schedule, c.Warmup, c.Steps, c.LR = "cosine", 4, 104, 1
	for s, want := range map[int]float64{0: 0.25, 3: 1, 4: 1, 54: 0.55, 104: 0.1, 500: 0.1} {
		if got := refSchedule(c, s); math.Abs(got-want) > 1e-12 {
			t.Errorf("refSchedule step %d = %v, want %v", s, got, want)
		}
	}
	b := ir.NewBuilder("lr")
	c.Schedule = "step"
	LearningRate(b, &c, b.Constant(ir.T(ir.I64), 0))
	if b.Err() == nil {
		t.Error("unknown schedule: no error")
	}
}

func TestClipGlobalNorm(t *testing.T) {
	g1 := []float64{3, -4, 1}
	g2 := []float64{2, 0.5, -1, 2}
	norm := math.Sqrt(9 + 16 + 1 + 4 + 0.25 + 1 + 4)
	for _, clip := range []float64{0, 1, 2.5, 100} {
		b := ir.NewBuilder("clip")
		a := b.Param("a", ir.T(ir.F32, 3), nil)
		c := b.Param("c", ir.T(ir.F32, 2, 2), nil)
		out, n := ClipGlobalNorm(b, []*ir.Value{a, c}, clip)
		b.Return(nil, out[0], out[1], n)
		if err := b.Err(); err != nil {
			t.Fatal(err)
		}
		res, err := interp.Run(b.F, []*interp.Tensor{interp.FromFloats(a.Type, g1), interp.FromFloats(c.Type, g2)})
		if err != nil {
			t.Fatal(err)
		}
		if !closeRel(res[2].Scalar(), f32r(norm)) {
			t.Errorf("clip %v: norm %v, want %v", clip, res[2].Scalar(), norm)
		}
		scale := 1.0
		if clip > 0 {
			scale = math.Min(1, clip/(norm+1e-6))
		}
		for k, g := range [][]float64{g1, g2} {
			for j, x := range g {
				if have, want := res[k].Floats()[j], f32r(x*scale); !closeRel(have, want) {
					t.Errorf("clip %v: grad %d[%d] = %v, want %v", clip, k, j, have, want)
				}
			}
		}
	}
	// A bf16 gradient stays bf16; no gradients give norm 0.
	b := ir.NewBuilder("clip")
	h := b.Param("h", ir.T(ir.BF16, 2), nil)
	out, n := ClipGlobalNorm(b, []*ir.Value{h}, 1)
	if out[0].Type.DType != ir.BF16 || !n.Type.Equal(ir.T(ir.F32)) || b.Err() != nil {
		t.Errorf("bf16 clip: %v, norm %v, err %v", out[0].Type, n.Type, b.Err())
	}
	if _, n := ClipGlobalNorm(b, nil, 1); n.Op != ir.OpConstant {
		t.Errorf("no grads: norm is %v", n.Op)
	}
}
