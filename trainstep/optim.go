package trainstep

import (
	"fmt"
	"regexp"

	"xlc/ir"
)

// optGraph emits the f32 arithmetic the optimizers, the schedules and the
// clipping are written in. Scalars are f32[] values; bc broadcasts one to a
// tensor's shape.
type optGraph struct{ b *ir.Builder }

var scalarF32 = ir.T(ir.F32)

// c is the f32[] constant v.
func (g optGraph) c(v float64) *ir.Value { return g.b.Constant(scalarF32, v) }

// full is an f32 tensor of shape s filled with v.
func (g optGraph) full(s ir.Shape, v float64) *ir.Value {
	return g.b.Constant(ir.Type{DType: ir.F32, Shape: s}, v)
}

// bc broadcasts the scalar x to shape s (x itself when s is a scalar shape).
func (g optGraph) bc(x *ir.Value, s ir.Shape) *ir.Value {
	if len(s) == 0 {
		return x
	}
	return g.b.Broadcast(x, s, []int{})
}

func (g optGraph) add(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpAdd, x, y) }
func (g optGraph) sub(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpSub, x, y) }
func (g optGraph) mul(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpMul, x, y) }
func (g optGraph) div(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpDiv, x, y) }
func (g optGraph) max(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpMax, x, y) }
func (g optGraph) min(x, y *ir.Value) *ir.Value { return g.b.Binary(ir.OpMin, x, y) }
func (g optGraph) exp(x *ir.Value) *ir.Value    { return g.b.Unary(ir.OpExp, x) }
func (g optGraph) sqrt(x *ir.Value) *ir.Value   { return g.b.Unary(ir.OpSqrt, x) }
func (g optGraph) neg(x *ir.Value) *ir.Value    { return g.b.Unary(ir.OpNeg, x) }

// smul is the scalar s times the tensor x.
func (g optGraph) smul(s, x *ir.Value) *ir.Value { return g.mul(g.bc(s, x.Type.Shape), x) }

// sum reduces x over all its axes to a scalar.
func (g optGraph) sum(x *ir.Value) *ir.Value {
	if x.Type.Rank() == 0 {
		return x
	}
	return g.b.Reduce(ir.OpReduceSum, x, allAxes(x.Type.Rank()))
}

// sel is select(pred, x, y) with the bool[] scalar pred broadcast to x.
func (g optGraph) sel(pred, x, y *ir.Value) *ir.Value {
	return g.b.Select(g.bc(pred, x.Type.Shape), x, y)
}

// f32 converts x to f32 unless it already is.
func (g optGraph) f32(x *ir.Value) *ir.Value {
	if x.Type.DType == ir.F32 {
		return x
	}
	return g.b.Convert(x, ir.F32)
}

// to converts x to dtype d unless it already is.
func (g optGraph) to(x *ir.Value, d ir.DType) *ir.Value {
	if x.Type.DType == d {
		return x
	}
	return g.b.Convert(x, d)
}

// counter declares the f32[] step counter name (zeros), sets it to t+1, and
// returns its old value and whether this is the first update (old t == 0).
func (g optGraph) counter(st *StateSet, name string) (t, first *ir.Value) {
	t = st.Get(name, scalarF32, "zeros", 0)
	st.Set(name, g.add(t, g.c(1)))
	return t, g.b.Binary(ir.OpEq, t, g.c(0))
}

// stateLike declares the f32 state "<prefix>.<param name>" shaped like p.
func stateLike(st *StateSet, prefix string, p *ir.Value, init string) *ir.Value {
	return st.Get(prefix+"."+p.Name, ir.Type{DType: ir.F32, Shape: p.Type.Shape}, init, 0)
}

// decays reports whether decoupled weight decay applies to p: a non-zero
// WeightDecay and p of rank >= 2, or any p when DecayAll.
func decays(cfg *Config, p *ir.Value) bool {
	return cfg.WeightDecay != 0 && (cfg.DecayAll || p.Type.Rank() >= 2)
}

// OptimizerUpdate appends one update of cfg.Optimizer (sgd, adamw, eg,
// eg_adaptive or eg_adam: buildSGD and the others state each) and returns
// the new parameter values in params' order and types; grads[i] is
// params[i]'s gradient and lr the f32[] learning rate (LearningRate). It
// computes in f32 whatever the parameters' dtype. State goes in st as f32
// role=state parameters named "<opt>.<kind>.<param>" (adamw.m.wte) and
// scalars such as "<opt>.t", each one set as well as read; the parameters
// are neither tracked nor set, so the caller decides where their new
// values go. Decoupled weight decay applies to parameters of rank >= 2 (all
// with cfg.DecayAll) in sgd, adamw and eg_adam. Bad arguments or settings
// are errors.
func OptimizerUpdate(b *ir.Builder, st *StateSet, cfg *Config, lr *ir.Value, params, grads []*ir.Value) ([]*ir.Value, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	if len(params) != len(grads) {
		return nil, fmt.Errorf("optimizer: %d parameters but %d gradients", len(params), len(grads))
	}
	if !lr.Type.Equal(scalarF32) {
		return nil, fmt.Errorf("optimizer: learning rate must be f32[], have %v", lr.Type)
	}
	for i, p := range params {
		if !p.Type.DType.IsFloat() || !grads[i].Type.DType.IsFloat() || !p.Type.Shape.Equal(grads[i].Type.Shape) {
			return nil, fmt.Errorf("optimizer: parameter %%%s: %v with gradient %v", p.Name, p.Type, grads[i].Type)
		}
	}
	g := optGraph{b}
	ps := make([]*ir.Value, len(params))
	gs := make([]*ir.Value, len(grads))
	for i := range params {
		ps[i], gs[i] = g.f32(params[i]), g.f32(grads[i])
	}
	var (
		out []*ir.Value
		err error
	)
	switch cfg.Optimizer {
	case "sgd":
		out = buildSGD(g, st, cfg, lr, params, ps, gs)
	case "adamw":
		out = buildAdamW(g, st, cfg, lr, params, ps, gs)
	case "eg":
		out, err = buildEG(g, st, cfg, lr, params, ps, gs)
	case "eg_adaptive":
		out = buildEGAdaptive(g, st, cfg, lr, params, ps, gs)
	case "eg_adam":
		out = buildEGAdam(g, st, cfg, lr, params, ps, gs)
	default:
		return nil, fmt.Errorf("optimizer: unknown optimizer %q (known: sgd, adamw, eg, eg_adaptive, eg_adam)", cfg.Optimizer)
	}
	if err != nil {
		return nil, err
	}
	for i, p := range params {
		out[i] = g.to(out[i], p.Type.DType)
	}
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("optimizer %s: %v", cfg.Optimizer, err)
	}
	return out, nil
}

// buildSGD is SGD with momentum μ = cfg.Momentum: when μ ≠ 0, state
// "sgd.v.<p>" (zeros) holds v ← μ·v + g, and the update is g + μ·v with
// cfg.Nesterov, v otherwise (plain g when μ = 0); then
// p ← p − lr·(update + wd·p), wd for decayed parameters only. This is
// PyTorch's SGD with dampening 0 except that the decay is decoupled.
func buildSGD(g optGraph, st *StateSet, cfg *Config, lr *ir.Value, params, ps, gs []*ir.Value) []*ir.Value {
	out := make([]*ir.Value, len(ps))
	mu := cfg.Momentum
	for i, p := range ps {
		upd := gs[i]
		if mu != 0 {
			name := "sgd.v." + params[i].Name
			v := stateLike(st, "sgd.v", params[i], "zeros")
			v = g.add(g.smul(g.c(mu), v), gs[i])
			st.Set(name, v)
			upd = v
			if cfg.Nesterov {
				upd = g.add(gs[i], g.smul(g.c(mu), v))
			}
		}
		if decays(cfg, params[i]) {
			upd = g.add(upd, g.smul(g.c(cfg.WeightDecay), p))
		}
		out[i] = g.sub(p, g.smul(lr, upd))
	}
	return out
}

// adamState is one Adam moment update: the new moments and the bias
// corrections of the new step count.
type adamState struct {
	m, v      []*ir.Value
	bc1, sbc2 *ir.Value // 1 − β1^t and √(1 − β2^t)
	first     *ir.Value // bool[]: the old step count is 0
	eps       float64
}

// adamMoments updates "<prefix>.t" (t ← t+1), "<prefix>.m.<p>" and
// "<prefix>.v.<p>" (zeros): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g².
func adamMoments(g optGraph, st *StateSet, cfg *Config, prefix string, params, gs []*ir.Value) adamState {
	t, first := g.counter(st, prefix+".t")
	a := adamState{first: first, eps: cfg.Eps}
	// The bias corrections are computed in f64 and rounded once, as PyTorch
	// computes them in Python floats: in f32, 1 − β2^t would lose about
	// five digits to cancellation (β2 = 0.999 is not an f32).
	f64 := ir.T(ir.F64)
	t1 := g.b.Convert(g.add(t, g.c(1)), ir.F64)
	one := g.b.Constant(f64, 1)
	corr := func(beta float64) *ir.Value {
		return g.sub(one, g.b.Binary(ir.OpPow, g.b.Constant(f64, beta), t1))
	}
	a.bc1 = g.b.Convert(corr(cfg.Beta1), ir.F32)
	a.sbc2 = g.b.Convert(g.sqrt(corr(cfg.Beta2)), ir.F32)
	b1, b2 := g.c(cfg.Beta1), g.c(cfg.Beta2)
	for i, p := range params {
		m := stateLike(st, prefix+".m", p, "zeros")
		v := stateLike(st, prefix+".v", p, "zeros")
		gi := gs[i]
		m = g.add(g.smul(b1, m), g.smul(g.c(1-cfg.Beta1), gi))
		v = g.add(g.smul(b2, v), g.smul(g.c(1-cfg.Beta2), g.mul(gi, gi)))
		st.Set(prefix+".m."+p.Name, m)
		st.Set(prefix+".v."+p.Name, v)
		a.m = append(a.m, m)
		a.v = append(a.v, v)
	}
	return a
}

// denom is √v/√(1−β2^t) + ε, PyTorch's Adam denominator, for moment i.
func (a adamState) denom(g optGraph, i int) *ir.Value {
	v := a.v[i]
	return g.add(g.div(g.sqrt(v), g.bc(a.sbc2, v.Type.Shape)), g.full(v.Type.Shape, a.eps))
}

// buildAdamW is torch.optim.AdamW (amsgrad off, maximize off) in its order
// of operations: t ← t+1 (state "adamw.t"); p ← p·(1 − lr·wd) for decayed
// parameters; m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g² (states
// "adamw.m.<p>", "adamw.v.<p>", zeros); p ← p − (lr/(1−β1^t)) ·
// m/(√v/√(1−β2^t) + ε), which is p − lr·m̂/(√v̂ + ε). The bias corrections
// 1−β1^t and √(1−β2^t) are computed in f64 and rounded to f32 once, as
// PyTorch computes them in Python floats; everything else is f32. Defaults:
// β1 = 0.9, β2 = 0.999, ε = 1e-8, weight decay 0.01.
func buildAdamW(g optGraph, st *StateSet, cfg *Config, lr *ir.Value, params, ps, gs []*ir.Value) []*ir.Value {
	a := adamMoments(g, st, cfg, "adamw", params, gs)
	stepSize := g.div(lr, a.bc1)
	out := make([]*ir.Value, len(ps))
	for i, p := range ps {
		if decays(cfg, params[i]) {
			p = g.smul(g.sub(g.c(1), g.mul(lr, g.c(cfg.WeightDecay))), p)
		}
		out[i] = g.sub(p, g.smul(stepSize, g.div(a.m[i], a.denom(g, i))))
	}
	return out
}

// compileNonneg compiles cfg.EGNonneg; the empty pattern matches nothing.
func compileNonneg(cfg *Config) (*regexp.Regexp, error) {
	if cfg.EGNonneg == "" {
		return nil, nil
	}
	re, err := regexp.Compile(cfg.EGNonneg)
	if err != nil {
		return nil, fmt.Errorf("optimizer eg: eg_nonneg: %v", err)
	}
	return re, nil
}
