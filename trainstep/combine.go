package trainstep

import (
	"fmt"

	"xlc/ir"
)

// Combine appends the combination of per-task gradients into one update
// direction and returns it per parameter (in grads[0][j]'s type) with the
// task weights applied (f32[] each, for metrics). grads[i][j] is task i's
// gradient of parameter j, losses[i] its f32[] loss, step the i64[] step
// counter. cfg.Combiner is
//   - sum (or ""): Σ w_i·g_i, w = cfg.Weights (one per task, default 1);
//   - initial: Σ g_i/L_i(init), the first losses kept in st;
//   - realtime: Σ g_i/sg(L_i);
//   - gradnorm: Σ g_i/‖g_i‖;
//   - minnorm: MGDA (Sener and Koltun 2018), the least-norm Σ α_i·g_i, α
//     on the simplex;
//   - main_aux: the least-norm g_0 + Σ λ_i·g_i, λ ≥ 0.
//
// It computes in f32; a division by zero gives weight 0, never NaN.
func Combine(b *ir.Builder, st *StateSet, cfg *Config, step *ir.Value, losses []*ir.Value, grads [][]*ir.Value) (combined []*ir.Value, weights []*ir.Value, err error) {
	if err := b.Err(); err != nil {
		return nil, nil, err
	}
	if err := combineCheck(cfg, step, losses, grads); err != nil {
		return nil, nil, err
	}
	// Divisions by zero are guarded with selects: a zero loss (realtime,
	// initial) or gradient (gradnorm) gives its task weight 0, a zero ‖g_τ‖
	// gives λ_τ = 0 in main_aux, and ‖a−b‖ = 0 in the two-task minnorm step
	// gives γ = 1/2 (any γ gives the same u there). With one task every
	// combiner returns the task's gradient but the scaling ones: gradnorm
	// g/‖g‖, initial g/L(init), realtime g/L. A negative loss flips its
	// gradient, as the formulas say.
	n := len(grads)
	switch cfg.Combiner {
	case "", "sum":
		ws := cfg.Weights
		if len(ws) == 0 {
			ws = make([]float64, n)
			for i := range ws {
				ws[i] = 1
			}
		}
		if len(ws) != n {
			return nil, nil, fmt.Errorf("combine: sum has %d weights for %d tasks", len(ws), n)
		}
		for _, w := range ws {
			weights = append(weights, combConst(b, w))
		}
		combined = combApply(b, weights, ws, grads)
	case "initial":
		// L_i(init), the f32[] state "combine.initial.<i>", is set to
		// sg(L_i) while it is still 0, then frozen. Keying on the stored
		// value rather than on step == 0 keeps it right when dynamic loss
		// scaling skips the first steps (a skipped step leaves it at 0).
		if st == nil {
			return nil, nil, fmt.Errorf("combine: initial needs a state set for the initial losses")
		}
		for i, l := range losses {
			name := fmt.Sprintf("combine.initial.%d", i)
			old := st.Get(name, ir.T(ir.F32), "zeros", 0)
			unset := b.Binary(ir.OpEq, old, combConst(b, 0))
			init := b.Select(unset, b.Unary(ir.OpStopGradient, combF32(b, l)), old)
			st.Set(name, init)
			weights = append(weights, combDivOrZero(b, combConst(b, 1), init))
		}
		combined = combApply(b, weights, nil, grads)
	case "realtime":
		for _, l := range losses {
			weights = append(weights, combDivOrZero(b, combConst(b, 1), b.Unary(ir.OpStopGradient, combF32(b, l))))
		}
		combined = combApply(b, weights, nil, grads)
	case "gradnorm":
		for _, g := range grads {
			sq := combInner(b, g, g)
			pos := b.Binary(ir.OpGt, sq, combConst(b, 0))
			safe := b.Select(pos, sq, combConst(b, 1))
			weights = append(weights, b.Select(pos, b.Unary(ir.OpRsqrt, safe), combConst(b, 0)))
		}
		combined = combApply(b, weights, nil, grads)
	case "minnorm":
		// From the Gram matrix G_ij = ⟨g_i, g_j⟩, computed once: the closed
		// form for two tasks, cfg.FWIters Frank–Wolfe iterations for more.
		if n > 2 && cfg.FWIters < 1 {
			return nil, nil, fmt.Errorf("combine: minnorm with %d tasks needs fw_iters >= 1", n)
		}
		weights = combMinNorm(b, combGram(b, grads), cfg.FWIters)
		combined = combApply(b, weights, nil, grads)
	case "main_aux":
		// Task 0 (the first of cfg.Losses) is the main one: the closed form
		// for one auxiliary task, cfg.FWIters sweeps of exact coordinate
		// updates for more. The weights reported are 1 and the λ_i.
		if n > 2 && cfg.FWIters < 1 {
			return nil, nil, fmt.Errorf("combine: main_aux with %d auxiliary tasks needs fw_iters >= 1", n-1)
		}
		weights = combMainAux(b, combGram(b, grads), cfg.FWIters)
		ws := make([]float64, n)
		ws[0] = 1 // the main task's weight is exactly 1: add g_0 as it is
		combined = combApply(b, weights, ws, grads)
	default:
		return nil, nil, fmt.Errorf("combine: unknown combiner %q (known: sum, initial, realtime, gradnorm, minnorm, main_aux)", cfg.Combiner)
	}
	if err := b.Err(); err != nil {
		return nil, nil, fmt.Errorf("combine: %s: %v", cfg.Combiner, err)
	}
	return combined, weights, nil
}

// combineCheck validates Combine's operands.
func combineCheck(cfg *Config, step *ir.Value, losses []*ir.Value, grads [][]*ir.Value) error {
	if cfg == nil {
		return fmt.Errorf("combine: nil train config")
	}
	n := len(grads)
	if n == 0 {
		return fmt.Errorf("combine: no tasks")
	}
	if len(losses) != n {
		return fmt.Errorf("combine: %d losses for %d tasks", len(losses), n)
	}
	if step == nil || step.Type.Rank() != 0 || !step.Type.DType.IsInt() {
		return fmt.Errorf("combine: want an integer scalar step counter")
	}
	for i, l := range losses {
		if l == nil || l.Type.Rank() != 0 || !l.Type.DType.IsFloat() {
			return fmt.Errorf("combine: loss %d: want a float scalar", i)
		}
	}
	if len(grads[0]) == 0 {
		return fmt.Errorf("combine: no parameters")
	}
	for i, g := range grads {
		if len(g) != len(grads[0]) {
			return fmt.Errorf("combine: task %d has %d gradients, task 0 has %d", i, len(g), len(grads[0]))
		}
		for j, v := range g {
			if v == nil || !v.Type.DType.IsFloat() {
				return fmt.Errorf("combine: task %d gradient %d: want a float tensor", i, j)
			}
			if !v.Type.Equal(grads[0][j].Type) {
				return fmt.Errorf("combine: task %d gradient %d is %v, task 0's is %v", i, j, v.Type, grads[0][j].Type)
			}
		}
	}
	return nil
}

// combConst is the f32[] constant v.
func combConst(b *ir.Builder, v float64) *ir.Value { return b.Constant(ir.T(ir.F32), v) }

// combF32 converts x to f32 unless it is f32 already.
func combF32(b *ir.Builder, x *ir.Value) *ir.Value {
	if x.Type.DType == ir.F32 {
		return x
	}
	return b.Convert(x, ir.F32)
}

// combInner is the global inner product Σ_j reduce_sum(x_j·y_j) in f32.
func combInner(b *ir.Builder, xs, ys []*ir.Value) *ir.Value {
	return totalSum(b, len(xs), ir.F32, func(j int) *ir.Value {
		x := combF32(b, xs[j])
		if xs[j] == ys[j] {
			return b.Binary(ir.OpMul, x, x)
		}
		return b.Binary(ir.OpMul, x, combF32(b, ys[j]))
	})
}

// combDivOrZero is num/den where den != 0 and 0 elsewhere, without ever
// dividing by zero.
func combDivOrZero(b *ir.Builder, num, den *ir.Value) *ir.Value {
	zero := b.Constant(den.Type, 0)
	ok := b.Binary(ir.OpNe, den, zero)
	safe := b.Select(ok, den, b.Constant(den.Type, 1))
	return b.Select(ok, b.Binary(ir.OpDiv, num, safe), zero)
}

// combClip01 clamps x to [0, 1].
func combClip01(b *ir.Builder, x *ir.Value) *ir.Value {
	return b.Binary(ir.OpMax, b.Binary(ir.OpMin, x, combConst(b, 1)), combConst(b, 0))
}

// combApply returns Σ_i w_i g_i per parameter. When known is not nil, a
// task whose known[i] is 1 is added without a multiply.
func combApply(b *ir.Builder, w []*ir.Value, known []float64, grads [][]*ir.Value) []*ir.Value {
	out := make([]*ir.Value, len(grads[0]))
	for j := range out {
		var acc *ir.Value
		for i := range grads {
			g := grads[i][j]
			term := g
			if known == nil || known[i] != 1 {
				wi := w[i]
				if g.Type.DType != ir.F32 {
					wi = b.Convert(wi, g.Type.DType)
				}
				if g.Type.Rank() > 0 {
					wi = b.Broadcast(wi, g.Type.Shape, []int{})
				}
				term = b.Binary(ir.OpMul, wi, g)
			}
			if acc == nil {
				acc = term
			} else {
				acc = b.Binary(ir.OpAdd, acc, term)
			}
		}
		out[j] = acc
	}
	return out
}
