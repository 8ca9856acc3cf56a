package experiments

import (
	"fmt"
	"math"
	"strings"
)

// The multitask experiment trains BERT's two losses under each of xlc's
// gradient combiners, and checks numerically that the normalising ones
// ignore a rescaled loss and that main_aux never hurts the main task to
// first order.
func init() {
	register(&Experiment{
		Name:  "multitask",
		Title: "Multi-task gradient combination on BERT's two losses",
		Question: "Where do xlc's six combiners (sum, initial, realtime, gradnorm, minnorm, main_aux) land in the plane of " +
			"BERT's two task losses, do the two losses actually conflict, are the normalising combiners invariant " +
			"to rescaling one loss, and does main_aux keep the main task from getting worse to first order?",
		Background: mtBackground,
		Claims:     mtClaims,
		Run:        mtRun,
		Conclude:   mtConclude,
	})
}

const mtBackground = `
Two tasks share one encoder: masked-language modelling (L_0 = mlm_loss, the main task) and classification
of the first position (L_1 = cls_loss). With g_i = ∇_θ L_i, each combiner gives one direction d that
the optimizer (AdamW here) then uses:

- sum: d = g_0 + g_1.
- initial: d = Σ g_i / L_i(θ_0), the losses at the first step.
- realtime: d = Σ g_i / sg(L_i), the gradient of Σ log L_i (the geometric mean's direction).
- gradnorm: d = Σ g_i / ‖g_i‖, each task's gradient normalised to unit length — the balanced fixed point
  that GradNorm (Chen, Badrinarayanan, Lee and Rabinovich 2018, "GradNorm: Gradient Normalization for
  Adaptive Loss Balancing in Deep Multitask Networks") reaches by learning its weights; xlc computes it
  directly, with no weight learning.
- minnorm: MGDA (Sener and Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization"):
  d = γ g_0 + (1−γ) g_1 with γ = clip(⟨g_1 − g_0, g_1⟩ / ‖g_0 − g_1‖², 0, 1), the least-norm point of the
  segment, a Pareto-stationary direction.
- main_aux: d = g_0 + λ g_1 with λ ≥ 0 minimising ‖g_0 + λ g_1‖², so λ = relu(−⟨g_0, g_1⟩)/‖g_1‖². This is
  xlc's form of weighting an auxiliary task by its gradient's agreement with the main one (Du, Czarnecki,
  Jayakumar, Farajtabar, Pascanu and Lakshminarayanan 2018, "Adapting Auxiliary Losses Using Gradient
  Similarity"): where the two agree, λ = 0 and d = g_0; where they conflict, d is g_0 with its component
  along g_1 removed.

Conflict is measured by cos(g_0, g_1) on the step's batch, from a gradient probe compiled apart from the
train step (the forward pass and both backward passes over all parameters).

Invariance to rescaling a loss. Replacing L_1 by c·L_1 replaces g_1 by c·g_1. Then gradnorm's
c·g_1/‖c·g_1‖, initial's and realtime's c·g_1/(c·L_1) and main_aux's (λ/c)·(c·g_1) are unchanged: these
directions are invariant (gradnorm also to adding a constant to a loss). sum's g_0 + c·g_1 and minnorm's γ
are not. From the same parameters, optimizer state and batch (c = 10; the stored L_1(θ_0) of initial is
multiplied by c too), V = ‖d_c − d_1‖ / ‖d_1‖ compares the combiners' weights: d_1 = b_0 g_0 + b_1 g_1 with
the c = 1 step's weights b, d_c = a_0 g_0 + a_1·(c·g_1) with the c step's weights a applied to exactly c times
g_1, both norms from the probe's Gram matrix. U = ‖Δθ_c − Δθ_1‖ / ‖Δθ_1‖ compares the AdamW updates, which
also carry the c step's own f32 gradient of c·L_1 and which rounding can flip where a coordinate's gradient
is near zero (AdamW's first step is about lr·sign); D =
‖θ_c(t) − θ_1(t)‖ / ‖θ_1(t) − θ_0‖ compares two whole runs, where f32 rounding differences can grow.

First order for the main task. With ⟨g_0, g_1⟩ < 0, ⟨d, g_0⟩ = ‖g_0‖² − ⟨g_0, g_1⟩²/‖g_1‖² ≥ 0 by
Cauchy–Schwarz, and ⟨d, g_0⟩ = ‖g_0‖² otherwise: a step along −d never increases L_0 to first order. The
experiment measures r = ⟨d, g_0⟩ / ‖g_0‖² at every step, with the λ the train step reported and the probe's
Gram matrix (so r = 1 − cos² where the tasks conflict). AdamW's update is not −η·d, so the guarantee is
about d; how often AdamW's actual update Δθ raised L_0 to first order (⟨Δθ, g_0⟩ > 0) is reported beside it.
`

// Thresholds, fixed before the full run.
const (
	mtConflictFrac = 0.25 // the share of probes with cos(g_0, g_1) < 0 that counts as a conflict
	mtMaxV         = 1e-3 // an invariant combiner's direction difference V
	mtMaxU         = 1e-2 // gradnorm's AdamW update difference U
	mtSumMean      = 0.1  // sum's mean V and U: the measures can tell a combiner that is not invariant
	mtMaxD         = 0.05 // gradnorm's whole-run divergence D at the end
	mtMinR         = -1e-3
)

var mtClaims = []Claim{
	{Text: fmt.Sprintf("The two losses conflict: cos(g_mlm, g_cls) < 0 at ≥ %.0f%% of all gradient probes (every combiner's c = 1 run)", 100*mtConflictFrac),
		Check: func(rs Results) Verdict {
			var n, neg int
			var sum float64
			for _, row := range rs.Rows("probe", nil) {
				c, ok := row.Float("cos")
				if !ok {
					continue
				}
				n++
				sum += c
				if c < 0 {
					neg++
				}
			}
			if n == 0 {
				return Verdict{false, "no probes"}
			}
			frac := float64(neg) / float64(n)
			return Verdict{frac >= mtConflictFrac, fmt.Sprintf("%d of %d probes negative (%.0f%%), mean cos %.3f", neg, n, 100*frac, sum/float64(n))}
		}},
	{Text: fmt.Sprintf("gradnorm's combined direction is invariant to rescaling cls_loss by %g: V ≤ %g at every compared step", mtScale, mtMaxV),
		Check: func(rs Results) Verdict { return mtCheckMax(rs, "V", mtMaxV, []string{"gradnorm"}) }},
	{Text: fmt.Sprintf("So is its AdamW update: U ≤ %g at every compared step", mtMaxU),
		Check: func(rs Results) Verdict { return mtCheckMax(rs, "U", mtMaxU, []string{"gradnorm"}) }},
	{Text: fmt.Sprintf("The directions of initial, realtime and main_aux (cls_loss being its auxiliary task) are invariant too: V ≤ %g at every compared step of each", mtMaxV),
		Check: func(rs Results) Verdict {
			return mtCheckMax(rs, "V", mtMaxV, []string{"initial", "realtime", "main_aux"})
		}},
	{Text: fmt.Sprintf("The measures can tell: sum, which is not invariant, has a mean V and a mean U ≥ %g", mtSumMean),
		Check: func(rs Results) Verdict {
			v, ok1 := rs.Float("invariance", map[string]any{"combiner": "sum"}, "mean_V")
			u, ok2 := rs.Float("invariance", map[string]any{"combiner": "sum"}, "mean_U")
			return Verdict{ok1 && ok2 && v >= mtSumMean && u >= mtSumMean, fmt.Sprintf("sum's mean V %.3g, mean U %.3g", v, u)}
		}},
	{Text: fmt.Sprintf("gradnorm's whole runs with c = 1 and c = %g stay together: D ≤ %g at the last step", mtScale, mtMaxD),
		Check: func(rs Results) Verdict {
			d, ok := rs.Float("invariance", map[string]any{"combiner": "gradnorm"}, "final_D")
			s, _ := rs.Float("invariance", map[string]any{"combiner": "sum"}, "final_D")
			return Verdict{ok && d <= mtMaxD, fmt.Sprintf("gradnorm's D %.3g (sum's %.3g)", d, s)}
		}},
	{Text: fmt.Sprintf("main_aux never makes the main task (mlm) worse to first order: r = ⟨d, g_mlm⟩/‖g_mlm‖² ≥ %g at every step", mtMinR),
		Check: func(rs Results) Verdict {
			rows := rs.Rows("probe", map[string]any{"combiner": "main_aux"})
			minR, n, conflict := math.Inf(1), 0, 0
			for _, row := range rows {
				r, ok := row.Float("r")
				if !ok || math.IsNaN(r) {
					return Verdict{false, "a step without a finite r"}
				}
				minR = math.Min(minR, r)
				n++
				if lam, _ := row.Float("lambda"); lam > 0 {
					conflict++
				}
			}
			return Verdict{n > 0 && minR >= mtMinR, fmt.Sprintf("min r %.4g over %d steps, %d of them with λ > 0", minR, n, conflict)}
		}},
}

// mtCheckMax checks that the probe rows' key is at most limit at every
// compared step of each combiner.
func mtCheckMax(rs Results, key string, limit float64, combs []string) Verdict {
	ok := true
	var parts []string
	for _, c := range combs {
		worst, n := 0.0, 0
		for _, row := range rs.Rows("probe", map[string]any{"combiner": c}) {
			if _, has := row.Values[key]; !has {
				continue
			}
			x, isNum := row.Float(key)
			if !isNum || math.IsNaN(x) {
				x = math.Inf(1)
			}
			worst = math.Max(worst, x)
			n++
		}
		ok = ok && n > 0 && worst <= limit
		parts = append(parts, fmt.Sprintf("%s max %s %.3g over %d steps", c, key, worst, n))
	}
	return Verdict{ok, strings.Join(parts, "; ")}
}

// mtConclude names the combiners no other one beats on both validation
// losses, and each loss's best combiner.
func mtConclude(rs Results) string {
	type pt struct {
		name   string
		mlm, c float64
	}
	var pts []pt
	for _, row := range rs.Rows("final", nil) {
		m, ok1 := row.Float("val_mlm_loss")
		c, ok2 := row.Float("val_cls_loss")
		if ok1 && ok2 && !math.IsNaN(m+c) {
			pts = append(pts, pt{fmt.Sprint(row.Values["combiner"]), m, c})
		}
	}
	if len(pts) == 0 {
		return "No combiner finished with finite validation losses."
	}
	var front []string
	bestM, bestC := pts[0], pts[0]
	for _, p := range pts {
		dominated := false
		for _, q := range pts {
			if q.mlm <= p.mlm && q.c <= p.c && (q.mlm < p.mlm || q.c < p.c) {
				dominated = true
			}
		}
		if !dominated {
			front = append(front, p.name)
		}
		if p.mlm < bestM.mlm {
			bestM = p
		}
		if p.c < bestC.c {
			bestC = p
		}
	}
	out := fmt.Sprintf("On validation, no combiner beats %s on both losses (the Pareto front of this run). "+
		"The lowest mlm loss is %s's (%.4g), the lowest cls loss %s's (%.3g).",
		strings.Join(front, ", "), bestM.name, bestM.mlm, bestC.name, bestC.c)
	var n int
	var sumAbs, minCos float64
	for _, row := range rs.Rows("probe", nil) {
		if c, ok := row.Float("cos"); ok {
			n++
			sumAbs += math.Abs(c)
			minCos = math.Min(minCos, c)
		}
	}
	if n > 0 {
		strength := "only on mild conflicts (every cos > −0.3)"
		if minCos <= -0.3 {
			strength = "on strong conflicts too (a cos ≤ −0.3)"
		}
		out += fmt.Sprintf("\n\nThe gradients' mean |cos| over the %d probes is %.3g and the most negative cosine %.3g: "+
			"where the tasks conflict, main_aux's projection removes cos² ≤ %.3g of ‖g_mlm‖², so its first-order "+
			"guarantee was tested %s.", n, sumAbs/float64(n), minCos, minCos*minCos, strength)
	}
	// Does c·L_cls have c times L_cls's gradient in f32, by how saturated
	// the cls loss is?
	var offHigh, offLow float64
	var nHigh, nLow int
	for _, row := range rs.Rows("probe", nil) {
		q, ok1 := row.Float("cls_norm_ratio")
		l, ok2 := row.Float("cls_loss")
		if !ok1 || !ok2 || math.IsNaN(q) {
			continue
		}
		switch {
		case l >= 1e-3:
			offHigh, nHigh = math.Max(offHigh, math.Abs(q-1)), nHigh+1
		case l < 1e-4:
			offLow, nLow = math.Max(offLow, math.Abs(q-1)), nLow+1
		}
	}
	if nHigh > 0 && nLow > 0 {
		verdict := "in both regimes the f32 gradient scaled with the loss."
		if offLow > 0.01 && offLow > 10*offHigh {
			verdict = "the saturated task's f32 gradient does not scale with its loss, which is where a normalising " +
				"combiner's invariance can fail in practice."
		}
		out += fmt.Sprintf("\n\nOn the same parameters and batch, ‖∇(c·L_cls)‖ / (c·‖∇L_cls‖) from the two probes was within "+
			"%.2g of 1 at the %d probes where the cls loss was ≥ 1e-3, and off by up to %.2g at the %d where it was "+
			"below 1e-4 (and not 0): %s", offHigh, nHigh, offLow, nLow, verdict)
	}
	steps, ok1 := rs.Float("main_aux", nil, "steps")
	inc, ok2 := rs.Float("main_aux", nil, "adamw_increase_steps")
	if ok1 && ok2 {
		out += fmt.Sprintf(" AdamW's actual update under main_aux raised the mlm loss to first order at %.0f of %.0f steps "+
			"(the guarantee is for the direction d, not for what the optimizer makes of it).", inc, steps)
	}
	return out
}
