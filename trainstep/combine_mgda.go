package trainstep

import "xlc/ir"

// combGram returns the Gram matrix G_ij = ⟨g_i, g_j⟩ of the tasks' global
// gradients as f32[] values, each inner product computed once (G[j][i] is
// G[i][j]).
func combGram(b *ir.Builder, grads [][]*ir.Value) [][]*ir.Value {
	n := len(grads)
	g := make([][]*ir.Value, n)
	for i := range g {
		g[i] = make([]*ir.Value, n)
	}
	for i := range n {
		for j := i; j < n; j++ {
			g[i][j] = combInner(b, grads[i], grads[j])
			g[j][i] = g[i][j]
		}
	}
	return g
}

// combMinNorm returns the MGDA weights α (on the simplex, minimising
// ‖Σ α_i g_i‖²) from the Gram matrix g. One task gets 1. Two tasks use the
// closed form γ* = clip(⟨b−a, b⟩ / ‖a−b‖², 0, 1) for u = γa + (1−γ)b with
// a = g_0 and b = g_1, so α = (γ*, 1−γ*); γ = 1/2 when ‖a−b‖² ≤ 0. More
// tasks run iters unrolled Frank–Wolfe iterations from the uniform α (see
// combFrankWolfe).
func combMinNorm(b *ir.Builder, g [][]*ir.Value, iters int) []*ir.Value {
	switch len(g) {
	case 1:
		return []*ir.Value{combConst(b, 1)}
	case 2:
		num := b.Binary(ir.OpSub, g[1][1], g[0][1])
		den := b.Binary(ir.OpAdd, num, b.Binary(ir.OpSub, g[0][0], g[0][1]))
		pos := b.Binary(ir.OpGt, den, combConst(b, 0))
		safe := b.Select(pos, den, combConst(b, 1))
		gamma := b.Select(pos, combClip01(b, b.Binary(ir.OpDiv, num, safe)), combConst(b, 0.5))
		return []*ir.Value{gamma, b.Binary(ir.OpSub, combConst(b, 1), gamma)}
	}
	return combFrankWolfe(b, g, iters)
}

// combFrankWolfe runs iters Frank–Wolfe iterations for min ‖Σ α_i g_i‖² on
// the simplex, on the n×n Gram matrix as one f32[n,n] tensor. From
// α = 1/n, each iteration takes τ = argmin_i (Gα)_i (the first index on
// ties, as a one-hot e_τ built with compares and selects), the two-task step
// γ between a = g_τ and b = u = Σ α_i g_i, all from G: ⟨u,u⟩ = αᵀGα,
// ⟨u,g_τ⟩ = (Gα)_τ, ‖g_τ‖² = G_ττ, so γ = clip((⟨u,u⟩ − ⟨u,g_τ⟩) /
// (⟨u,u⟩ − 2⟨u,g_τ⟩ + G_ττ), 0, 1), or 0 when that denominator is ≤ 0, and
// updates α ← (1−γ)α + γe_τ. It returns the α_i as f32[] values.
func combFrankWolfe(b *ir.Builder, g [][]*ir.Value, iters int) []*ir.Value {
	n := len(g)
	vec := ir.T(ir.F32, n)
	ivec := ir.T(ir.I32, n)
	one := ir.Shape{1}
	var cells, diag []*ir.Value
	for i := range n {
		for j := range n {
			cells = append(cells, b.Reshape(g[i][j], one))
		}
		diag = append(diag, b.Reshape(g[i][i], one))
	}
	gm := b.Reshape(b.Concat(0, cells...), ir.Shape{n, n})
	d := b.Concat(0, diag...)
	// rev numbers the tasks n, n−1, …, 1, so the largest rev among the
	// minimisers is the first index.
	rev := b.Binary(ir.OpSub, b.Constant(ivec, float64(n)), b.Iota(ivec, 0))
	zerosI := b.Constant(ivec, 0)
	onesF, zerosF := b.Constant(vec, 1), b.Constant(vec, 0)
	bc := func(s *ir.Value) *ir.Value { return b.Broadcast(s, ir.Shape{n}, []int{}) }
	sum := func(x *ir.Value) *ir.Value { return b.Reduce(ir.OpReduceSum, x, []int{0}) }
	alpha := b.Constant(vec, 1/float64(n))
	for range iters {
		ga := b.Dot(gm, alpha, nil, nil, []int{1}, []int{0}) // Gα
		uu := sum(b.Binary(ir.OpMul, alpha, ga))
		neg := b.Unary(ir.OpNeg, ga)
		isMin := b.Binary(ir.OpEq, neg, bc(b.Reduce(ir.OpReduceMax, neg, []int{0})))
		k := b.Reduce(ir.OpReduceMax, b.Select(isMin, rev, zerosI), []int{0})
		e := b.Select(b.Binary(ir.OpEq, rev, bc(k)), onesF, zerosF)
		ut := sum(b.Binary(ir.OpMul, ga, e))
		tt := sum(b.Binary(ir.OpMul, d, e))
		num := b.Binary(ir.OpSub, uu, ut)
		den := b.Binary(ir.OpAdd, num, b.Binary(ir.OpSub, tt, ut))
		pos := b.Binary(ir.OpGt, den, combConst(b, 0))
		safe := b.Select(pos, den, combConst(b, 1))
		gamma := b.Select(pos, combClip01(b, b.Binary(ir.OpDiv, num, safe)), combConst(b, 0))
		keep := b.Binary(ir.OpSub, combConst(b, 1), gamma)
		alpha = b.Binary(ir.OpAdd, b.Binary(ir.OpMul, bc(keep), alpha), b.Binary(ir.OpMul, bc(gamma), e))
	}
	w := make([]*ir.Value, n)
	for i := range w {
		w[i] = b.Reshape(b.Slice(alpha, []int{i}, []int{i + 1}, []int{1}), ir.Shape{})
	}
	return w
}

// combMainAux returns the main/auxiliary weights (1, λ_1, …, λ_{n−1}) with
// λ ≥ 0 minimising ‖g_0 + Σ λ_i g_i‖², from the Gram matrix g. From λ = 0,
// it runs exact coordinate updates λ_τ ← relu(−⟨r, g_τ⟩)/‖g_τ‖² with
// r = g_0 + Σ_{i≠τ} λ_i g_i (so ⟨r, g_τ⟩ = G_0τ + Σ_{i≠τ} λ_i G_iτ), for
// τ = 1…n−1 in order: one sweep for one auxiliary task (the closed form
// λ = relu(−⟨g_0, g_1⟩)/‖g_1‖²), iters sweeps for more. A zero ‖g_τ‖ gives
// λ_τ = 0.
func combMainAux(b *ir.Builder, g [][]*ir.Value, iters int) []*ir.Value {
	n := len(g)
	w := make([]*ir.Value, n)
	w[0] = combConst(b, 1)
	lam := make([]*ir.Value, n) // nil is a λ still known to be 0
	sweeps := iters
	if n == 2 {
		sweeps = 1
	}
	for range sweeps {
		for t := 1; t < n; t++ {
			acc := g[0][t]
			for i := 1; i < n; i++ {
				if i != t && lam[i] != nil {
					acc = b.Binary(ir.OpAdd, acc, b.Binary(ir.OpMul, lam[i], g[i][t]))
				}
			}
			relu := b.Binary(ir.OpMax, b.Unary(ir.OpNeg, acc), combConst(b, 0))
			lam[t] = combDivOrZero(b, relu, g[t][t])
		}
	}
	for t := 1; t < n; t++ {
		w[t] = lam[t]
		if w[t] == nil {
			w[t] = combConst(b, 0)
		}
	}
	return w
}
