package experiments

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"xlc/runtime"
)

const egBackground = `
Four update rules on parameters θ with gradient g_t and learning rate η:

- **SGD**: θ ← θ − η·g_t.
- **Adam** (Kingma and Ba 2015, "Adam: A Method for Stochastic Optimization"; xlc's adamw with weight decay 0):
  θ ← θ − η·m̂/(√v̂ + ε) with bias-corrected moving averages of g and g² (β = 0.9, 0.999, ε = 1e-8).
- **EG** (Kivinen and Warmuth 1997, "Exponentiated Gradient versus Gradient Descent for Linear Predictors";
  the unnormalised form, EGU): θ ← θ ⊙ exp(−η·g_t), gradient descent on log θ, for positive weights
  (xlc: ` + "`eg_nonneg`" + ` names them). Signed weights take **EG±**: θ = θ⁺ − θ⁻ with θ⁺ ← θ⁺ ⊙ exp(−η·g_t),
  θ⁻ ← θ⁻ ⊙ exp(+η·g_t), started at θ⁺ = relu(θ) + c, θ⁻ = relu(−θ) + c, c = 10⁻³. For a linear predictor
  with target weights u, EG's loss bounds scale with ‖u‖₁²·max‖x‖∞²·ln n, gradient descent's with
  ‖u‖₂²·max‖x‖₂², so EG should win when few of many features matter and the weights are nonnegative.
- **Step-size adaptation by EG** (Amid, Anil, Fifty and Warmuth 2022, "Step-size Adaptation Using
  Exponentiated Gradient Updates"). Simplified form (` + "`eg_adaptive`" + `): per-coordinate step sizes ν, ν₀ = 1,
  ν ← ν ⊙ exp(γ·g_{t−1} ⊙ g_t), then θ ← θ − η·ν ⊙ g_t: gradients that keep their sign grow a
  coordinate's step, alternating ones shrink it. The paper's form on Adam (` + "`eg_adam`" + `): with Adam's
  direction u_t = m̂/(√v̂ + ε), a global scale s and per-coordinate gains q (mean 1),
  q ← q ⊙ exp(γ_q·η·g_t ⊙ u_{t−1}), s ← s·exp(γ_s·η·⟨g_t, u_{t−1}⟩), θ ← θ − η·s·q ⊙ u_t, u_{t−1} ← q ⊙ u_t.
  The meta rates γ are xlc's automatic ones (` + "`eg_gamma = 0`" + `): measured on the first gradient so that the
  exponents start near 0.01 (γ = 0.01/‖g₁‖² for eg_adaptive; 0.01/(η·max|g₁|) and 0.01/(η·‖g₁‖₁) for eg_adam).

The paper's claim tested here: step-size adaptation reaches the loss of a tuned learning rate without
tuning it. Each adaptive optimizer runs once at a default lr chosen before any run (0.01 for eg_adaptive,
the customary SGD default; 10⁻³ for eg_adam, Adam's published default) and must end within 5% of the
final loss of its base optimizer (SGD, Adam) at the best lr of a 5-point log-spaced grid. Kivinen and
Warmuth's claim tested here: on a sparse nonnegative target EG, tuned like the others, beats SGD and Adam.
`

// runEG runs every optimizer on both problems and records tables, curves
// and step-size traces.
func runEG(r *Run) error {
	q := 0
	if r.Quick {
		q = 1
	}
	r.Table("sparse", "Sparse nonnegative regression: final numbers per optimizer and lr (mean over seeds; loss is the expected loss (‖w−w*‖²+σ²)/2)",
		"optimizer", "lr", "loss", "loss_sd", "rel_error", "support", "val_loss", "train_loss")
	r.Table("gpt", "Small GPT on the text: final validation loss and mean training loss over the last tenth of the steps",
		"optimizer", "lr", "loss", "train_loss")
	r.Table("stepsize_end", "Learned step-size factors of the adaptive optimizers (first seed; the step is lr × factor): before the first update and at the end",
		"problem", "optimizer", "lr", "quantity", "start", "end")
	for _, p := range egProblems {
		defs := p.defines
		if r.Quick && p.quickDefines != nil {
			defs = p.quickDefines
		}
		data := ""
		if p.name == "gpt" {
			data = " --data DATA"
		}
		seeds := "S = 1"
		if p.seeds[q] > 1 {
			seeds = fmt.Sprintf("S = 1–%d", p.seeds[q])
		}
		r.Setup("%s: `%s -D optimizer=OPT -D lr=LR --steps %d --seed S --eval-batches %d%s` for %s "+
			"(OPT adamw is Adam: weight decay 0)", p.name, Command(p.file, defs...), p.steps[q], p.evalBatches[q], data, seeds)
		for _, opt := range []string{"sgd", "adam", "eg"} {
			r.Setup("%s, %s: lr ∈ {%s}", p.name, opt, egJoin(egGrid(p, opt, r.Quick)))
		}
		if err := r.egSolve(p, q); err != nil {
			return err
		}
	}
	r.Setup("sparse: w* has %d nonzero weights (j+1)·2/(k(k+1)) at coordinates j·n/k of n = %d, x ~ N(0, I) fresh each step, "+
		"label noise σ = %g, batch %d; w starts at 1/n; EG is plain EG on w (`eg_nonneg = \"^w$\"`), no clipping. "+
		"rel_error is ‖w−w*‖/‖w*‖; support the fraction of w's %d largest weights on w*'s support; "+
		"val_loss the sampled loss on the held-out batches", egK, egN, egNoise, egBatch, egK)
	r.Setup("gpt: loss is the validation loss on the fixed held-out batches; DATA is the data file named above; gradient clipping at 1 (the default)")
	r.Setup("adaptive optimizers: one run each at lr %s (eg_adaptive) and %s (eg_adam), eg_gamma = 0 (automatic)",
		cell(egAdaptiveLR["eg_adaptive"]), cell(egAdaptiveLR["eg_adam"]))
	r.Setup("a run diverged when its training loss is not finite or above %d× its first loss; it then counts for no best lr", egDiverge)
	return nil
}

// egGrid is opt's lrs on p: the grid, its middle value under --quick, or
// the adaptive optimizer's default.
func egGrid(p egProblem, opt string, quick bool) []float64 {
	g, ok := p.grid[opt]
	if !ok {
		return []float64{egAdaptiveLR[opt]}
	}
	if quick {
		return g[len(g)/2 : len(g)/2+1]
	}
	return g
}

// egJoin lists lrs as the tables print them.
func egJoin(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = cell(x)
	}
	return strings.Join(s, ", ")
}

// egSolve trains every optimizer and lr on p, records its table rows,
// curves and traces, and draws its plots.
func (r *Run) egSolve(p egProblem, q int) error {
	grid := map[string][][2]float64{}   // optimizer → (log10 lr, final loss)
	curves := map[string][][2]float64{} // optimizer → training curve at its best lr
	bestLoss := map[string]float64{}
	bestLR := map[string]float64{}
	traces := map[string][][2]float64{}
	for _, opt := range egOptimizers {
		for _, lr := range egGrid(p, opt, r.Quick) {
			var runs []egRunResult
			for seed := 1; seed <= p.seeds[q]; seed++ {
				res, err := r.egTrain(p, opt, lr, uint64(seed))
				if err != nil {
					return fmt.Errorf("%s, %s, lr %g, seed %d: %v", p.name, opt, lr, seed, err)
				}
				runs = append(runs, res)
			}
			row, loss, ok := egRow(p.name, opt, lr, runs)
			r.Record(p.name, row)
			r.Logf("%s %s lr %g: loss %s", p.name, opt, lr, cell(row["loss"]))
			first := runs[0]
			for _, pt := range first.curve {
				r.Record("curve", map[string]any{"problem": p.name, "optimizer": opt, "lr": lr, "step": pt[0], "loss": egRound(pt[1])})
			}
			if !ok {
				continue
			}
			grid[opt] = append(grid[opt], [2]float64{math.Log10(lr), loss})
			if _, seen := bestLoss[opt]; !seen || loss < bestLoss[opt] {
				bestLoss[opt], bestLR[opt], curves[opt] = loss, lr, first.curve
			}
			for _, k := range slices.Sorted(maps.Keys(first.trace)) {
				pts := first.trace[k]
				for _, pt := range pts {
					r.Record("stepsize", map[string]any{"problem": p.name, "optimizer": opt, "quantity": k, "step": pt[0], "value": egRound(pt[1])})
				}
				r.Record("stepsize_end", map[string]any{"problem": p.name, "optimizer": opt, "lr": lr, "quantity": k,
					"start": pts[0][1], "end": pts[len(pts)-1][1]})
				traces[opt+": "+k] = pts
			}
		}
	}
	steps := float64(p.steps[q])
	for _, opt := range []string{"eg_adaptive", "eg_adam"} {
		base := egBase[opt]
		if lr, ok := bestLR[base]; ok {
			f := lr / egAdaptiveLR[opt]
			traces[fmt.Sprintf("%s's best lr ÷ %s's lr", base, opt)] = [][2]float64{{0, f}, {steps, f}}
		}
	}
	// The sparse losses span decades; the GPT's lie within one, where a
	// log axis would have no labelled tick.
	logY := p.name == "sparse"
	named := map[string][][2]float64{}
	for opt, c := range curves {
		named[fmt.Sprintf("%s (lr %s)", opt, cell(bestLR[opt]))] = c
	}
	for _, pl := range []Plot{
		{File: p.name + "_grid.png", Chart: runtime.Chart{Title: p.name + ": final loss by lr", X: "log10 lr", Y: "final loss", LogY: logY}, Series: grid},
		{File: p.name + "_loss.png", Chart: runtime.Chart{Title: p.name + ": training loss at each optimizer's best lr (first seed)", X: "step", Y: "training loss", LogY: logY}, Series: named},
		{File: p.name + "_stepsize.png", Chart: runtime.Chart{Title: p.name + ": learned step-size factors (first seed; the step is lr × factor)", X: "step", Y: "factor", LogY: true}, Series: traces},
	} {
		if len(pl.Series) == 0 {
			return fmt.Errorf("%s: nothing to plot in %s (every run diverged)", p.name, pl.File)
		}
		if err := r.Plot(pl); err != nil {
			return err
		}
	}
	return nil
}

// egRow is the table row of opt at lr over its seeds' runs, and the mean
// final loss unless a run diverged.
func egRow(problem, opt string, lr float64, runs []egRunResult) (map[string]any, float64, bool) {
	row := map[string]any{"optimizer": opt, "lr": lr}
	cols := []string{"loss", "train_loss"}
	if problem == "sparse" {
		cols = []string{"loss", "loss_sd", "rel_error", "support", "val_loss", "train_loss"}
	}
	for i, res := range runs {
		if res.diverged >= 0 {
			for _, c := range cols {
				row[c] = "—"
			}
			row["loss"] = fmt.Sprintf("diverged at step %d (seed %d)", res.diverged, i+1)
			return row, 0, false
		}
	}
	mean := func(f func(egRunResult) float64) float64 {
		s := 0.0
		for _, res := range runs {
			s += f(res)
		}
		return s / float64(len(runs))
	}
	loss := mean(func(x egRunResult) float64 { return x.loss })
	row["loss"] = loss
	row["train_loss"] = mean(func(x egRunResult) float64 { return x.trainTail })
	if problem == "sparse" {
		sd := 0.0
		if len(runs) > 1 {
			sd = math.Sqrt(mean(func(x egRunResult) float64 { return (x.loss - loss) * (x.loss - loss) }) * float64(len(runs)) / float64(len(runs)-1))
		}
		row["loss_sd"] = sd
		row["rel_error"] = mean(func(x egRunResult) float64 { return x.relErr })
		row["support"] = mean(func(x egRunResult) float64 { return x.support })
		row["val_loss"] = mean(func(x egRunResult) float64 { return x.val })
	}
	return row, loss, true
}

// egRound keeps 4 significant digits of a curve's point, which keeps
// results.jsonl small; the tables' numbers are recorded in full.
func egRound(x float64) float64 {
	y, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	if err != nil {
		return x
	}
	return y
}
