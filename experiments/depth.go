package experiments

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"xlc/runtime"
)

// The depth study: Post-LN, Pre-LN and DeepNorm (two α/β tables) trained
// at growing depth with one learning rate, with and without warmup, plus
// one very deep run; it records divergence, final validation loss and the
// size of the model's early updates.
func init() {
	register(&Experiment{
		Name:  "depth",
		Title: "Depth: Pre-LN, Post-LN and DeepNorm",
		Question: `Where does the layer norm go in a deep transformer? At one Adam learning rate, with and
without warmup, which of Post-LN, Pre-LN and DeepNorm train at 6, 24 and 96 layers and at
500, how far do they get, and how large is the model's update in the first steps?`,
		Background: depthBackground,
		Claims:     depthClaims,
		Run:        runDepth,
		Conclude:   concludeDepth,
	})
}

const depthBackground = `Each of the N layers has two sublayers F (attention, then the MLP). The residual placements:

- **Post-LN** (Vaswani et al., 2017, "Attention Is All You Need"): x ← LN(x + F(x)).
- **Pre-LN**: x ← x + F(LN(x)), with a final LN before the output projection. Xiong et al. (2020),
  "On Layer Normalization in the Transformer Architecture", show that at initialisation Post-LN's
  gradients near the output are large, which is why it needs a learning-rate warmup, while
  Pre-LN's are well behaved and it trains without one. Unrolled, Pre-LN's x_L = x_0 + Σ_l F_l(LN(x_l))
  grows with depth, so late layers change it little.
- **DeepNorm** (Wang et al., 2022, "DeepNet: Scaling Transformers to 1,000 Layers"):
  x ← LN(α·x + F(x)), with the MLP weights and the attention's value and output projections
  initialised xavier_normal with gain β (queries and keys with gain 1). For a decoder-only model
  of N layers the paper's table gives α = (2N)^(1/4), β = (8N)^(−1/4) ("paper" here). DeepNet
  argues that Post-LN fails at depth because its early updates explode: the model's change
  ‖F(x; θ_t) − F(x; θ_0)‖ after the first steps grows with N, the inputs of the layer norms grow, and
  the gradients through them vanish; DeepNorm bounds that update by O(1) independently of N.
- **DeepNorm, Adam-derived table** ("deepnorm-adam"): Su (2022, "What makes training a
  1000-layer Transformer hard?", kexue.fm/archives/8978) redoes DeepNet's analysis from the
  increment of the loss, ΔL ≈ ⟨∇_θ L, Δθ⟩, which grows like η·N unless each parameter's gradient
  is O(1/√N); for Adam, whose step does not shrink with the gradient, that gives α = (2N)^(1/2)
  and an initialisation gain β = 1/α = (2N)^(−1/2): a stronger down-weighting of each sublayer
  than the paper's table. (Liu et al., 2020, "Understanding the Difficulty of Training
  Transformers", first traced Post-LN's trouble to this amplification of small updates.)

The update size measured here is DeepNet's: f(x; θ) is the model's logits on one fixed validation
batch, and u_t = ‖f(x; θ_t) − f(x; θ_0)‖ after t Adam steps, taken per token (the Frobenius norm
over the batch divided by √(batch·seq)), for t = 1..k.

The claims below follow the papers: Post-LN without warmup fails at depth (Xiong et al. 2020;
Wang et al. 2022), warmup rescues it (Xiong et al. 2020), DeepNorm trains at every depth with a
smaller early update than Post-LN's (Wang et al. 2022).`

// depthPlan is the runs of one execution.
type depthPlan struct {
	sweep []depthCase // by depth, then variant, then warmup 0, W
	deep  []depthCase
}

// newDepthPlan sizes the study: the full run fits in ten minutes on two
// cores, --quick in seconds.
func newDepthPlan(r *Run) depthPlan {
	var p depthPlan
	depths := []int{6, 24, 96}
	steps := []int{300, 150, 40}
	d, heads, seq, batch, k := 64, 4, 64, 8, 10
	deepLayers, deepD, deepBatch, deepSteps := 500, 32, 4, 20
	if r.Quick {
		depths, steps = []int{1, 2}, []int{12, 12}
		d, heads, seq, batch, k = 16, 2, 16, 4, 3
		deepLayers, deepD, deepBatch, deepSteps = 3, 16, 4, 12
	}
	for i, n := range depths {
		for _, v := range depthVariants {
			for _, w := range []int{0, steps[i] / 4} {
				p.sweep = append(p.sweep, depthCase{v: v, layers: n, d: d, heads: heads, seq: seq,
					batch: batch, steps: steps[i], warmup: w, k: k})
			}
		}
	}
	for _, v := range []depthVariant{depthVariants[0], depthVariants[2]} {
		p.deep = append(p.deep, depthCase{v: v, layers: deepLayers, d: deepD, heads: heads, seq: seq,
			batch: deepBatch, steps: deepSteps, k: k})
	}
	return p
}

func runDepth(r *Run) error {
	p := newDepthPlan(r)
	s0, dp := p.sweep[0], p.deep[0]
	r.Setup("Model `models/gpt.xl` (byte-level decoder), d=%d, %d heads, seq %d, batch %d, AdamW at lr %g "+
		"(β=(0.9, 0.999), weight decay 0.01, gradient clipping at norm 1), constant schedule after a linear "+
		"warmup of 0 or steps/4 steps; seed %d for every run (same initial draws where shapes agree, same batches).",
		s0.d, s0.heads, s0.seq, s0.batch, depthLR, depthSeed)
	for i := 0; i < len(p.sweep); i += 2 * len(depthVariants) {
		c := p.sweep[i]
		r.Setup("Depth %d, %d steps: `%s`; the other runs of this depth replace `-D norm=post` with `-D norm=pre`, "+
			"`-D norm=deepnorm -D deepnorm_table=paper` or `-D norm=deepnorm -D deepnorm_table=adam-derived`, "+
			"each also with `-D warmup=%d`.", c.layers, c.steps, Command("gpt.xl", c.defines()...), c.steps/4)
	}
	r.Setup("Very deep run, %d layers, d=%d, batch %d, %d steps, no warmup: `%s`, and the same with "+
		"`-D norm=deepnorm -D deepnorm_table=paper`. Measured before the full run, the 500-layer d=32 model took "+
		"about 20 s to compile on the cpu backend with an empty kernel cache (`xlc build --fuse`: 36,021 "+
		"kernels in the train step, 6,004 in the forward pass, 469 KiB of native code) and about 6 s per step "+
		"at batch 8 on this shared machine, so this run uses d=%d, batch %d and %d steps; compile_s below is the "+
		"compile time within this run (identical layers share kernels, and kernels already in the cache are "+
		"not rebuilt).", dp.layers, dp.d, dp.batch, dp.steps, Command("gpt.xl", dp.defines()...), dp.d, dp.batch, dp.steps)
	r.Setup("Divergence: the first step whose train loss is not finite or above %g × the first step's loss; "+
		"a diverged run stops there. Final validation loss: `Trainer.Eval` over %d fixed validation batches "+
		"after the last step. Update size: u_t for t = 1..%d on one fixed validation batch, via the tap "+
		"\"logits\" (`driver.Tapped`) run with the trainer's state.", depthBound, depthEvalBatches, s0.k)

	r.Table("runs", "Every run: divergence, final validation loss and early update size u_t",
		"run", "depth", "d", "variant", "warmup", "steps", "compile_s", "step_s", "first_loss",
		"diverged", "val_loss", "u_1", "u_k", "u_max")
	curves := map[string][][2]float64{}
	deepCurves := map[string][][2]float64{}
	updates := map[string][][2]float64{}
	deepest := p.sweep[len(p.sweep)-1].layers
	all := append(slices.Clone(p.sweep), p.deep...)
	for i, c := range all {
		kind := "sweep"
		if i >= len(p.sweep) {
			kind = "deep"
		}
		o, err := runDepthCase(r, c)
		if err != nil {
			return fmt.Errorf("%s at depth %d, warmup %d: %v", c.v.name, c.layers, c.warmup, err)
		}
		label := c.v.name
		if c.warmup > 0 {
			label += "+warmup"
		}
		r.Logf("%-5s depth %3d %-22s compile %5.1fs, %6.3fs/step, %s", kind, c.layers, label,
			o.compile.Seconds(), o.stepTime.Seconds(), depthStatus(o))
		recordDepthRun(r, kind, c, o)
		if kind == "deep" || c.layers == deepest {
			for s, l := range o.losses {
				pt := [2]float64{float64(s), l}
				if kind == "deep" {
					deepCurves[label] = append(deepCurves[label], pt)
				} else {
					curves[label] = append(curves[label], pt)
				}
				r.Record("curve", map[string]any{"run": kind, "depth": c.layers, "variant": c.v.name,
					"warmup": c.warmup, "step": s, "loss": finiteOr(l, "non-finite")})
			}
			if c.warmup == 0 {
				name := fmt.Sprintf("%s, %d layers", c.v.name, c.layers)
				for t, u := range o.updates {
					updates[name] = append(updates[name], [2]float64{float64(t + 1), u})
				}
			}
		}
	}
	if err := r.Plot(Plot{File: "loss_deepest.png", Chart: runtime.Chart{
		Title: fmt.Sprintf("Train loss at %d layers (d=%d, lr %g)", deepest, s0.d, depthLR), X: "step", Y: "train loss"},
		Series: curves}); err != nil {
		return err
	}
	if err := r.Plot(Plot{File: "loss_verydeep.png", Chart: runtime.Chart{
		Title: fmt.Sprintf("Train loss at %d layers (d=%d, no warmup)", dp.layers, dp.d), X: "step", Y: "train loss"},
		Series: deepCurves}); err != nil {
		return err
	}
	return r.Plot(Plot{File: "update.png", Chart: runtime.Chart{
		Title: "Early update size u_t = ‖f(x;θ_t) − f(x;θ_0)‖ per token, no warmup", X: "step t", Y: "u_t", LogY: true},
		Series: updates})
}

// recordDepthRun adds c's row to the runs table and its u_t to update.
func recordDepthRun(r *Run, kind string, c depthCase, o *depthOutcome) {
	row := map[string]any{"run": kind, "depth": c.layers, "d": c.d, "variant": c.v.name, "warmup": c.warmup,
		"steps": o.stepCount, "compile_s": round3(o.compile.Seconds()), "step_s": round3(o.stepTime.Seconds()),
		"first_loss": finiteOr(o.losses[0], "non-finite"), "diverged": "no", "val_loss": finiteOr(o.val, "—")}
	if o.diverged >= 0 {
		row["diverged"] = o.diverged
		row["val_loss"] = fmt.Sprintf("diverged at step %d", o.diverged)
	}
	row["u_1"], row["u_k"], row["u_max"] = "—", "—", "—"
	uMax := 0.0
	for t, u := range o.updates {
		r.Record("update", map[string]any{"run": kind, "depth": c.layers, "variant": c.v.name,
			"warmup": c.warmup, "t": t + 1, "u": finiteOr(u, "non-finite")})
		if !(u <= uMax) { // NaN too
			uMax = u
		}
	}
	if n := len(o.updates); n > 0 {
		row["u_1"] = finiteOr(o.updates[0], "non-finite")
		if n == c.k {
			row["u_k"] = finiteOr(o.updates[n-1], "non-finite")
		}
		row["u_max"] = finiteOr(uMax, "non-finite")
	}
	r.Record("runs", row)
}

// depthStatus is a progress line's outcome.
func depthStatus(o *depthOutcome) string {
	if o.diverged >= 0 {
		return fmt.Sprintf("diverged at step %d", o.diverged)
	}
	return fmt.Sprintf("val loss %.4f", o.val)
}

// finiteOr is x, or text when x is not finite.
func finiteOr(x float64, text string) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return text
	}
	return x
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// concludeDepth summarises, per depth, which runs diverged and which
// variant ended lowest.
func concludeDepth(rs Results) string {
	var b strings.Builder
	for _, n := range depthsOf(rs, "sweep") {
		var div []string
		best, bestVal := "", math.Inf(1)
		for _, row := range rs.Rows("runs", map[string]any{"run": "sweep", "depth": n}) {
			name := depthLabel(row)
			if s, ok := row.Float("diverged"); ok {
				div = append(div, fmt.Sprintf("%s (step %.0f)", name, s))
			} else if v, ok := row.Float("val_loss"); ok && v < bestVal {
				best, bestVal = name, v
			}
		}
		fmt.Fprintf(&b, "At %d layers ", n)
		if len(div) == 0 {
			b.WriteString("no run diverged")
		} else {
			fmt.Fprintf(&b, "%s diverged", strings.Join(div, ", "))
		}
		if best != "" {
			fmt.Fprintf(&b, "; the lowest final validation loss was %s's, %.4f", best, bestVal)
		}
		b.WriteString(". ")
	}
	for _, row := range rs.Rows("runs", map[string]any{"run": "deep"}) {
		fmt.Fprintf(&b, "At %s layers %s ", cell(row.Values["depth"]), depthLabel(row))
		if s, ok := row.Float("diverged"); ok {
			fmt.Fprintf(&b, "diverged at step %.0f", s)
		} else {
			fmt.Fprintf(&b, "trained %s steps to a validation loss of %s", cell(row.Values["steps"]), cell(row.Values["val_loss"]))
		}
		fmt.Fprintf(&b, " (largest early update u_max %s). ", cell(row.Values["u_max"]))
	}
	return b.String()
}

// depthLabel names a runs row's variant, with "+warmup" where it had one.
func depthLabel(row Row) string {
	name := fmt.Sprint(row.Values["variant"])
	if w, _ := row.Float("warmup"); w > 0 {
		name += "+warmup"
	}
	return name
}

// depthsOf lists the depths of the runs of kind, ascending.
func depthsOf(rs Results, kind string) []int {
	var ns []int
	for _, row := range rs.Rows("runs", map[string]any{"run": kind}) {
		if n, ok := row.Float("depth"); ok && !slices.Contains(ns, int(n)) {
			ns = append(ns, int(n))
		}
	}
	slices.Sort(ns)
	return ns
}
