package trainstep

import "xlc/ir"

// egPairOffset is c in EG±'s first split p⁺ = relu(p) + c, p⁻ = relu(−p) + c.
const egPairOffset = 1e-3

// buildEG is exponentiated gradient (Kivinen and Warmuth 1997). Parameters
// whose name matches cfg.EGNonneg (unanchored; "" matches none) take plain
// EG, gradient descent on log p: p ← p ⊙ exp(−lr·g); they must stay
// positive. The others take EG±: p = p⁺ − p⁻ with two positive parts
// (states "eg.pos.<p>", "eg.neg.<p>"), p⁺ ← p⁺ ⊙ exp(−lr·g) and
// p⁻ ← p⁻ ⊙ exp(+lr·g). The parts are made in-graph at the first update
// (state "eg.t" is 0) as p⁺ = relu(p) + c, p⁻ = relu(−p) + c, c =
// egPairOffset, so p⁺ − p⁻ = p whatever p's initial value; their declared
// zeros are never used. No weight decay.
func buildEG(g optGraph, st *StateSet, cfg *Config, lr *ir.Value, params, ps, gs []*ir.Value) ([]*ir.Value, error) {
	re, err := compileNonneg(cfg)
	if err != nil {
		return nil, err
	}
	_, first := g.counter(st, "eg.t")
	out := make([]*ir.Value, len(ps))
	for i, p := range ps {
		s := p.Type.Shape
		down := g.exp(g.neg(g.smul(lr, gs[i]))) // exp(−lr·g)
		if re != nil && re.MatchString(params[i].Name) {
			out[i] = g.mul(p, down)
			continue
		}
		pos := stateLike(st, "eg.pos", params[i], "zeros")
		neg := stateLike(st, "eg.neg", params[i], "zeros")
		zero, c := g.full(s, 0), g.full(s, egPairOffset)
		pos = g.sel(first, g.add(g.max(p, zero), c), pos)
		neg = g.sel(first, g.add(g.max(g.neg(p), zero), c), neg)
		pos = g.mul(pos, down)
		neg = g.mul(neg, g.exp(g.smul(lr, gs[i])))
		st.Set("eg.pos."+params[i].Name, pos)
		st.Set("eg.neg."+params[i].Name, neg)
		out[i] = g.sub(pos, neg)
	}
	return out, nil
}

// egAutoGammaScale is the numerator of the automatic meta learning rates.
const (
	egAutoGammaScale = 0.01
	egAutoGammaTiny  = 1e-30
)

// metaRate returns a meta learning rate as an f32[] value: cfg.EGGamma when
// it is non-zero; otherwise (the default, "auto") 0.01 / (denom + 1e-30)
// with denom measured at the first update (first is true), kept in the
// scalar state name and frozen from then on. Each caller picks denom so
// that its EG exponents start near 0.01 (see buildEGAdaptive and
// buildEGAdam): Amid et al. (2022) give no default for the simplified
// form; the exponents start around 1e-2 of 1/‖g‖² scale.
func metaRate(g optGraph, st *StateSet, cfg *Config, name string, first, denom *ir.Value) *ir.Value {
	if cfg.EGGamma != 0 {
		return g.c(cfg.EGGamma)
	}
	old := st.Get(name, scalarF32, "zeros", 0)
	gamma := g.sel(first, g.div(g.c(egAutoGammaScale), g.add(denom, g.c(egAutoGammaTiny))), old)
	st.Set(name, gamma)
	return gamma
}

// maxAbs is the largest |g| over every coordinate of gs.
func maxAbs(g optGraph, gs []*ir.Value) *ir.Value {
	m := g.c(0)
	for _, gi := range gs {
		x := g.b.Unary(ir.OpAbs, g.f32(gi))
		if r := x.Type.Rank(); r > 0 {
			x = g.b.Reduce(ir.OpReduceMax, x, allAxes(r))
		}
		m = g.max(m, x)
	}
	return m
}

// gradSums returns Σ g² and Σ |g| over every coordinate of gs, and their count.
func gradSums(g optGraph, gs []*ir.Value) (sq, abs *ir.Value, n int) {
	sq = totalSum(g.b, len(gs), ir.F32, func(j int) *ir.Value { return g.mul(gs[j], gs[j]) })
	abs = totalSum(g.b, len(gs), ir.F32, func(j int) *ir.Value { return g.b.Unary(ir.OpAbs, gs[j]) })
	for _, gi := range gs {
		n += gi.Type.Shape.NumElements()
	}
	return sq, abs, n
}

// buildEGAdaptive is the step-size adaptation by EG of Amid, Anil, Fifty
// and Warmuth (2022), "Step-size Adaptation Using Exponentiated Gradient
// Updates", simplified form, exactly: per-coordinate step sizes ν (state
// "eg_adaptive.nu.<p>", ones) and the previous gradient g_prev (state
// "eg_adaptive.gprev.<p>", zeros); ν ← ν ⊙ exp(γ·g_prev ⊙ g),
// p ← p − lr·ν ⊙ g, g_prev ← g. Consistent gradient signs grow a
// coordinate's step, alternating ones shrink it; the first update is SGD.
// γ is cfg.EGGamma, or by default 0.01/‖g‖² of the first update's gradient
// (metaRate; states "eg_adaptive.t", "eg_adaptive.gamma"), so that every
// exponent starts at most about 0.01. No weight decay.
func buildEGAdaptive(g optGraph, st *StateSet, cfg *Config, lr *ir.Value, params, ps, gs []*ir.Value) []*ir.Value {
	var first *ir.Value
	if cfg.EGGamma == 0 {
		_, first = g.counter(st, "eg_adaptive.t")
	}
	// The automatic γ divides by the global ‖g‖², not per coordinate by
	// mean(g²): that made the exponents of coordinates with large gradients
	// ≫ 1 (bench/NOTES.md). With the default clip of 1 adaptation is then
	// slow; eg_gamma sets a faster rate.
	sq, _, _ := gradSums(g, gs)
	gamma := metaRate(g, st, cfg, "eg_adaptive.gamma", first, sq)
	out := make([]*ir.Value, len(ps))
	for i, p := range ps {
		nu := stateLike(st, "eg_adaptive.nu", params[i], "ones")
		prev := stateLike(st, "eg_adaptive.gprev", params[i], "zeros")
		nu = g.mul(nu, g.exp(g.smul(gamma, g.mul(prev, gs[i]))))
		st.Set("eg_adaptive.nu."+params[i].Name, nu)
		st.Set("eg_adaptive.gprev."+params[i].Name, gs[i])
		out[i] = g.sub(p, g.smul(lr, g.mul(nu, gs[i])))
	}
	return out
}

// buildEGAdam is the step-size adaptation of Amid et al. (2022) on top of
// Adam: a global scale s (state "eg_adam.s", one) and per-coordinate gains
// q ("eg_adam.q.<p>", ones) updated by EG from the gradient's alignment
// with the previous direction u_prev ("eg_adam.u.<p>", zeros). With Adam's
// u = m̂/(√v̂ + ε) (adamw's moments, under the prefix eg_adam), one update
// is
//
//	q ← q ⊙ exp(γ_q·lr · g ⊙ u_prev), then q ← q / mean(q)
//	s ← s · exp(γ_s·lr · Σ_params ⟨g, u_prev⟩)
//	p ← p·(1 − lr·wd) − lr·s · q ⊙ u
//	u_prev ← q ⊙ u
//
// so the first is AdamW's. γ_q and γ_s are cfg.EGGamma, or by default
// 0.01/(LR·max|g|) and 0.01/(LR·‖g‖₁) of the first gradient (metaRate).
func buildEGAdam(g optGraph, st *StateSet, cfg *Config, lr *ir.Value, params, ps, gs []*ir.Value) []*ir.Value {
	// The signs: the previous step moved θ_t = θ_{t−1} − lr·s·u_prev, so
	// dL(θ_t)/ds = −lr·⟨g_t, u_prev⟩ and EG on s is
	// s ← s·exp(−γ·dL/ds) = s·exp(+γ·lr·⟨g_t, u_prev⟩): a gradient that
	// still points along the previous step (the loss keeps falling along
	// −u_prev) grows the scale, one that points back shrinks it. Per
	// coordinate, dL(θ_t)/dq_i = −lr·s·g_i·u_{t−1,i}; the gains take EG
	// with the gradient relative to the gain, q_i·dL/dq_i, without the
	// factor s (adapted on its own, which keeps the gains' effective meta
	// rate independent of the scale): the same sign rule as s.
	// Renormalising q to mean 1 leaves the overall step size to s. lr is
	// the current step's rate, the previous one's but at schedule changes.
	// Each of s and q has its own automatic γ, both starting their
	// exponents at most about 0.01 given |u| ≈ 1 (bench/NOTES.md).
	a := adamMoments(g, st, cfg, "eg_adam", params, gs)
	_, abs, _ := gradSums(g, gs)
	peak := g.c(cfg.LR)
	gammaQ := metaRate(g, st, cfg, "eg_adam.gamma", a.first, g.mul(peak, maxAbs(g, gs)))
	gammaS := metaRate(g, st, cfg, "eg_adam.gamma_s", a.first, g.mul(peak, abs))
	rateQ, rateS := g.mul(gammaQ, lr), g.mul(gammaS, lr)
	prevs := make([]*ir.Value, len(ps))
	var align *ir.Value
	for i := range ps {
		prevs[i] = stateLike(st, "eg_adam.u", params[i], "zeros")
		d := g.sum(g.mul(gs[i], prevs[i]))
		if align == nil {
			align = d
		} else {
			align = g.add(align, d)
		}
	}
	if align == nil {
		align = g.c(0)
	}
	s := st.Get("eg_adam.s", scalarF32, "ones", 0)
	s = g.mul(s, g.exp(g.mul(rateS, align)))
	st.Set("eg_adam.s", s)
	step := g.mul(lr, s)
	out := make([]*ir.Value, len(ps))
	for i, p := range ps {
		shape := p.Type.Shape
		q := stateLike(st, "eg_adam.q", params[i], "ones")
		q = g.mul(q, g.exp(g.smul(rateQ, g.mul(gs[i], prevs[i]))))
		mean := g.div(g.sum(q), g.c(float64(max(shape.NumElements(), 1))))
		q = g.div(q, g.bc(mean, shape))
		st.Set("eg_adam.q."+params[i].Name, q)
		u := g.div(g.div(a.m[i], g.bc(a.bc1, shape)), a.denom(g, i))
		dir := g.mul(q, u)
		st.Set("eg_adam.u."+params[i].Name, dir)
		if decays(cfg, params[i]) {
			p = g.smul(g.sub(g.c(1), g.mul(lr, g.c(cfg.WeightDecay))), p)
		}
		out[i] = g.sub(p, g.smul(step, dir))
	}
	return out
}
