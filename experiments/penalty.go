package experiments

import (
	"fmt"
	"math"
	"strings"

	"xlc/runtime"
	"xlc/runtime/interp"
)

// The penalty experiment trains an MLP and a small GPT with input- and
// parameter-gradient penalties, checks on the MLP that the parameter
// gradient bounds the input gradient layer by layer, and compares
// full-batch gradient descent with gradient flow on the loss its step
// implicitly minimises.

const (
	penaltyMLP = "penalty/mlp.xl"
	penaltyGPT = "penalty/gpt.xl"
	// boundSlack: the inequality is checked as lhs ≤ rhs exactly.
	boundSlack = 1.0
	// gdRatioMax: at the last time, ‖θ_GD − θ_mod‖ must be at most this
	// fraction of ‖θ_GD − θ_flow‖.
	gdRatioMax = 0.5
	// regGain: the best penalised MLP's validation loss must be this far
	// below the unpenalised one (a relative reduction).
	regGain = 0.02
)

// penaltyStrengths are the strengths of each penalty (the GPT runs the
// first three); the baseline has none.
func (r *Run) penaltyStrengths() []float64 {
	if r.Quick {
		return []float64{1e-1}
	}
	return []float64{1e-3, 1e-2, 1e-1, 1, 10}
}

// gptDefines is the small GPT: 2 layers, d = 64 (quick: 1 layer, d = 16).
func (r *Run) gptDefines(steps int) []string {
	d := []string{"layers=2", "d=64", "heads=4", "seq=64", "batch=16"}
	if r.Quick {
		d = []string{"layers=1", "d=16", "heads=2", "seq=16", "batch=4"}
	}
	return append(d, fmt.Sprintf("steps=%d", steps))
}

// penaltyDefines are the settings of one penalty on the tap named on.
func penaltyDefines(kind string, s float64, on string) []string {
	switch kind {
	case "input":
		return []string{fmt.Sprintf("input_penalty=%g", s), "input_penalty_on=" + on}
	case "param":
		return []string{fmt.Sprintf("param_penalty=%g", s)}
	}
	return nil
}

func init() {
	register(&Experiment{
		Name:  "penalty",
		Title: "Gradient penalties: input and parameter gradients, and the implicit one of gradient descent",
		Question: "How do input- and parameter-gradient penalties change the final train and validation " +
			"losses of an MLP and a small GPT; does the parameter gradient bound the input gradient as the " +
			"layer-wise inequality says, along training; and does full-batch gradient descent with step γ " +
			"follow gradient flow on L + (γ/4)‖∇_θ L‖² more closely than gradient flow on L?",
		Background: penaltyBackground,
		Claims: []Claim{
			{Text: "The inequality ‖∇_x f‖² · Σ_t (1 + ‖h_t‖²)/(‖W_t‖²·‖∇_x h_t‖²) ≤ ‖∇_θ f‖² holds at every " +
				"evaluated step for every evaluated example of the unpenalised MLP (threshold: left/right ≤ 1, " +
				"no tolerance)", Check: checkBound},
			{Text: fmt.Sprintf("Full-batch GD with step γ tracks small-step GD on the modified loss L + (γ/4)‖∇_θ L‖² "+
				"more closely than small-step GD on L: at every evaluated time t > 0 the parameter distance "+
				"‖θ_GD(t) − θ_mod(t)‖ is below ‖θ_GD(t) − θ_flow(t)‖, and at the last time it is at most %g× it",
				gdRatioMax), Check: checkGD},
			{Text: fmt.Sprintf("Some gradient penalty regularises the MLP: the best penalised run's final validation "+
				"loss is at least %g%% below the unpenalised run's", 100*regGain), Check: checkReg},
		},
		Run:      runPenalty,
		Conclude: concludePenalty,
	})
}

const penaltyBackground = `
**Penalties.** xlc's train step can add two penalties to a loss L, both computed by double
backward (reverse mode applied to its own output). The input-gradient penalty adds
(ε/2)·‖∇_x L‖² for a tapped value x (Drucker & LeCun 1992, "Improving generalization
performance using double backpropagation"; Ross & Doshi-Velez 2018, "Improving the adversarial
robustness and interpretability of deep neural networks by regularizing their input gradients").
The parameter-gradient penalty adds (λ/2)·‖∇_θ L‖² over all parameters θ.

**Parameter gradients bound input gradients.** Take an MLP h_{t+1} = g_t(W_t h_t + b_t),
t = 1..T, with h_1 = x, and a scalar f of its output (here the squared error of one example).
With δ_t = ∂f/∂(W_t h_t + b_t), the chain rule gives ∇_{W_t} f = δ_t h_tᵀ and ∇_{b_t} f = δ_t, so
layer t contributes ‖δ_t‖²(1 + ‖h_t‖²) to ‖∇_θ f‖², and ∇_x f = (∇_x h_t)ᵀ W_tᵀ δ_t gives
‖∇_x f‖ ≤ ‖∇_x h_t‖·‖W_t‖·‖δ_t‖ (operator norms). Summing over the layers:

‖∇_x f‖² · Σ_t (1 + ‖h_t‖²) / (‖W_t‖²·‖∇_x h_t‖²) ≤ ‖∇_θ f‖²,

so a parameter penalty largely contains an input penalty. Here ‖W_t‖ and ‖∇_x h_t‖ (the
Jacobian of the layer input with respect to x; the identity for t = 1) are spectral norms, the
other norms Euclidean; all gradients and Jacobians come from xlc's reverse mode
(trainstep.Grad) run on the interpreter with the trainer's parameters.

**Implicit gradient regularisation.** Barrett & Dherin 2021 ("Implicit Gradient
Regularization") show by backward error analysis that gradient descent θ ← θ − γ∇L follows, to
O(γ²) per unit time, the gradient flow of the modified loss L + (γ/4)‖∇_θ L‖² rather than that of
L; Smith, Dherin, Barrett & De 2021 ("On the Origin of Implicit Regularization in Stochastic
Gradient Descent") extend this to SGD. In xlc's settings the modified loss is param_penalty
λ = γ/2. We test the claim with full-batch GD: step γ on L (GD), step γ/r on the modified loss
(mod) and step γ/r on L (flow, the control), r times as many steps, compared at equal times
t = γ·steps by the Euclidean distance between the parameter vectors (and, reported, the
difference of the losses L).
`

// runPenalty runs the three parts: the penalty table (with the inequality
// probed along the unpenalised MLP run), the GPT rows, and the GD study.
func runPenalty(r *Run) error {
	r.Table("final", "Final losses with gradient penalties (MLP: full batch, the last step's train and validation losses; "+
		"GPT: train = mean of the last steps' batch losses, val = mean over fixed validation batches)",
		"model", "penalty", "strength", "steps", "train_loss", "val_loss")
	r.Table("bound", "The inequality along the unpenalised MLP run: both sides averaged over the evaluated "+
		"training examples, the largest left/right ratio, and how many examples satisfy it",
		"step", "examples", "lhs_mean", "rhs_mean", "max_ratio", "holding")
	r.Table("gd", "Full-batch GD with step γ against step γ/r on the modified loss (mod) and on L (flow), at "+
		"equal times: the loss L of each and the parameter distances from GD",
		"time", "loss_gd", "loss_mod", "loss_flow", "dist_mod", "dist_flow", "ratio")
	if err := mlpPenalties(r); err != nil {
		return err
	}
	if err := gptPenalties(r); err != nil {
		return err
	}
	return implicitGD(r)
}

// mlpPenalties trains penalty/mlp.xl unpenalised (probing the inequality)
// and with each penalty, recording the final losses.
func mlpPenalties(r *Run) error {
	steps := r.Pick(1500, 30)
	every := r.Pick(150, 10)
	examples := r.Pick(16, 3)
	r.Setup("MLP: `%s` (4 features, hidden layers of 32 with GELU, one output; a fixed set of 64 training "+
		"and 256 validation points with noisy targets, mean squared error), %d full-batch SGD steps with "+
		"lr 0.2, no momentum, clipping or weight decay; penalties add `-D input_penalty=ε -D input_penalty_on=x` "+
		"or `-D param_penalty=λ`", Command(penaltyMLP), steps)
	r.Setup("Inequality: on the unpenalised MLP run, every %d steps, for training examples 0..%d, each "+
		"compiled alone (`-D first=k -D n=1 -D nval=1`) so that f is that example's squared error", every, examples-1)
	probes := make([]*boundProbe, examples)
	for k := range probes {
		var err error
		if probes[k], err = newBoundProbe(k); err != nil {
			return err
		}
	}
	var lhsPts, rhsPts [][2]float64
	for _, kind := range []string{"none", "input", "param"} {
		strengths := r.penaltyStrengths()
		if kind == "none" {
			strengths = []float64{0}
		}
		for _, s := range strengths {
			defs := penaltyDefines(kind, s, "x")
			tr, err := r.Trainer(penaltyMLP, 1, defs...)
			if err != nil {
				return err
			}
			row := map[string]any{"model": "mlp", "penalty": kind, "strength": s, "steps": steps}
			for i := 0; i < steps; i++ {
				if kind == "none" && i%every == 0 {
					st, err := tr.State()
					if err != nil {
						tr.Close()
						return err
					}
					lhs, rhs, err := probeBound(r, probes, st, i)
					if err != nil {
						tr.Close()
						return err
					}
					lhsPts = append(lhsPts, [2]float64{float64(i), lhs})
					rhsPts = append(rhsPts, [2]float64{float64(i), rhs})
				}
				m, err := tr.Step()
				if err != nil {
					tr.Close()
					return err
				}
				if bad(m["loss"]) || bad(m["val"]) {
					row["train_loss"] = fmt.Sprintf("diverged at step %d", i)
					row["val_loss"] = row["train_loss"]
					break
				}
				row["train_loss"], row["val_loss"] = m["loss"], m["val"]
			}
			tr.Close()
			r.Record("final", row)
			r.Logf("mlp %s %g: train %v val %v", kind, s, row["train_loss"], row["val_loss"])
		}
	}
	return r.Plot(Plot{File: "bound.png", Chart: runtime.Chart{Title: "inequality on the MLP (mean over examples)",
		X: "step", Y: "squared gradient norm", LogY: true},
		Series: map[string][][2]float64{"left: ‖grad_x f‖² Σ_t (1+‖h_t‖²)/(‖W_t‖²‖grad_x h_t‖²)": lhsPts,
			"right: ‖grad_θ f‖²": rhsPts}})
}

// probeBound evaluates the inequality on each probe and records the row.
func probeBound(r *Run, probes []*boundProbe, st map[string]*interp.Tensor, step int) (float64, float64, error) {
	var lhs, rhs, maxRatio float64
	holding := 0
	for _, p := range probes {
		s, err := p.eval(st)
		if err != nil {
			return 0, 0, err
		}
		lhs += s.lhs / float64(len(probes))
		rhs += s.rhs / float64(len(probes))
		ratio := s.lhs / s.rhs
		if s.rhs == 0 {
			ratio = 0
			if s.lhs > 0 {
				ratio = math.Inf(1)
			}
		}
		maxRatio = math.Max(maxRatio, ratio)
		if s.lhs <= boundSlack*s.rhs {
			holding++
		}
	}
	if bad(maxRatio) || bad(lhs) || bad(rhs) {
		return 0, 0, fmt.Errorf("inequality at step %d: not finite (lhs %g, rhs %g, ratio %g)", step, lhs, rhs, maxRatio)
	}
	r.Record("bound", map[string]any{"step": step, "examples": len(probes), "lhs_mean": lhs, "rhs_mean": rhs,
		"max_ratio": maxRatio, "holding": holding})
	return lhs, rhs, nil
}

// gptPenalties trains the small GPT with each penalty on the text.
func gptPenalties(r *Run) error {
	steps := r.Pick(300, 4)
	last := r.Pick(20, 2)
	batches := r.Pick(8, 1)
	base := r.gptDefines(steps)
	r.Setup("GPT: `%s` (AdamW, lr 3e-3, cosine schedule with 10 warmup steps), %d steps, the input penalty "+
		"on the token embeddings (`-D input_penalty_on=emb`, a tap added to a copy of models/gpt.xl); val "+
		"loss over %d validation batches, train loss the mean of the last %d steps' losses",
		Command(penaltyGPT, base...), steps, batches, last)
	for _, kind := range []string{"none", "input", "param"} {
		strengths := r.penaltyStrengths()
		if kind == "none" {
			strengths = []float64{0}
		} else if !r.Quick {
			strengths = strengths[:3]
		}
		for _, s := range strengths {
			tr, err := r.Trainer(penaltyGPT, 1, append(append([]string{}, base...), penaltyDefines(kind, s, "emb")...)...)
			if err != nil {
				return err
			}
			row := map[string]any{"model": "gpt", "penalty": kind, "strength": s, "steps": steps}
			sum := 0.0
			for i := 0; i < steps; i++ {
				m, err := tr.Step()
				if err != nil {
					tr.Close()
					return err
				}
				if bad(m["loss"]) {
					row["train_loss"] = fmt.Sprintf("diverged at step %d", i)
					break
				}
				if i >= steps-last {
					sum += m["loss"] / float64(last)
				}
			}
			if _, diverged := row["train_loss"]; diverged {
				row["val_loss"] = row["train_loss"]
			} else {
				ev, err := tr.Eval(batches)
				if err != nil {
					tr.Close()
					return err
				}
				row["train_loss"], row["val_loss"] = sum, ev["val_loss"]
				if bad(ev["val_loss"]) {
					row["val_loss"] = "diverged (validation loss not finite)"
				}
			}
			tr.Close()
			r.Record("final", row)
			r.Logf("gpt %s %g: train %v val %v", kind, s, row["train_loss"], row["val_loss"])
		}
	}
	return nil
}

func bad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// checkBound: every example holds at every evaluated step.
func checkBound(rs Results) Verdict {
	rows := rs.Rows("bound", nil)
	worst, fails, steps := 0.0, 0, 0
	for _, row := range rows {
		ratio, ok1 := row.Float("max_ratio")
		hold, ok2 := row.Float("holding")
		n, ok3 := row.Float("examples")
		if !ok1 || !ok2 || !ok3 {
			return Verdict{false, "a bound row lacks a number"}
		}
		worst = math.Max(worst, ratio)
		if hold < n || ratio > boundSlack {
			fails++
		}
		steps++
	}
	return Verdict{steps > 0 && fails == 0, fmt.Sprintf("%d evaluated steps, %d with a violation; largest left/right ratio %.4g",
		steps, fails, worst)}
}

// checkGD: the modified loss's trajectory is closer at every time, and at
// the last time by the ratio threshold.
func checkGD(rs Results) Verdict {
	rows := rs.Rows("gd", nil)
	closer, later := 0, 0
	var lastRatio, lastT, dm, df float64
	for _, row := range rows {
		t, _ := row.Float("time")
		m, ok1 := row.Float("dist_mod")
		f, ok2 := row.Float("dist_flow")
		if !ok1 || !ok2 {
			return Verdict{false, fmt.Sprintf("at time %g a distance is missing (diverged?)", t)}
		}
		if t == 0 {
			continue
		}
		later++
		if m < f {
			closer++
		}
		if t >= lastT {
			lastT, dm, df = t, m, f
			lastRatio = m / f
		}
	}
	ok := later > 0 && closer == later && lastRatio <= gdRatioMax
	return Verdict{ok, fmt.Sprintf("closer at %d of %d times t > 0; at t = %.4g, ‖θ_GD − θ_mod‖ = %.4g, ‖θ_GD − θ_flow‖ = %.4g, ratio %.3g",
		closer, later, lastT, dm, df, lastRatio)}
}

// checkReg: the best penalised MLP validation loss against the baseline.
func checkReg(rs Results) Verdict {
	base, ok := rs.Float("final", map[string]any{"model": "mlp", "penalty": "none"}, "val_loss")
	if !ok {
		return Verdict{false, "no unpenalised MLP validation loss"}
	}
	best, which := math.Inf(1), ""
	for _, row := range rs.Rows("final", map[string]any{"model": "mlp"}) {
		v, ok := row.Float("val_loss")
		if !ok || row.Values["penalty"] == "none" {
			continue
		}
		if v < best {
			best, which = v, fmt.Sprintf("%v %v", row.Values["penalty"], cell(row.Values["strength"]))
		}
	}
	if which == "" {
		return Verdict{false, fmt.Sprintf("unpenalised %.4g; no penalised run finished", base)}
	}
	gain := (base - best) / base
	return Verdict{gain >= regGain, fmt.Sprintf("unpenalised %.4g, best penalised %.4g (%s): %.1f%% lower",
		base, best, which, 100*gain)}
}

// concludePenalty summarises the table's extremes from the results.
func concludePenalty(rs Results) string {
	var b strings.Builder
	for _, model := range []string{"mlp", "gpt"} {
		base, ok := rs.Float("final", map[string]any{"model": model, "penalty": "none"}, "val_loss")
		if !ok {
			continue
		}
		for _, kind := range []string{"input", "param"} {
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, row := range rs.Rows("final", map[string]any{"model": model, "penalty": kind}) {
				if v, ok := row.Float("val_loss"); ok {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
			if lo <= hi {
				fmt.Fprintf(&b, "%s, %s penalty: validation loss %.4g to %.4g across strengths (unpenalised %.4g). ",
					strings.ToUpper(model), kind, lo, hi, base)
			}
		}
	}
	b.WriteString(concludeGD(rs))
	return b.String()
}

// concludeGD says until when the GD trajectory stayed within gdRatioMax of
// the modified loss's (relative to the control's distance), and compares
// the loss curves by their mean absolute difference at the times t > 0.
func concludeGD(rs Results) string {
	var within, n, lossMod, lossFlow float64
	broke := math.Inf(1)
	for _, row := range rs.Rows("gd", nil) {
		t, _ := row.Float("time")
		ratio, ok1 := row.Float("ratio")
		lg, ok2 := row.Float("loss_gd")
		lm, ok3 := row.Float("loss_mod")
		lf, ok4 := row.Float("loss_flow")
		if t == 0 || !ok1 || !ok2 || !ok3 || !ok4 {
			continue
		}
		n++
		lossMod += math.Abs(lg - lm)
		lossFlow += math.Abs(lg - lf)
		if ratio > gdRatioMax && t < broke {
			broke = t
		} else if t < broke {
			within = t
		}
	}
	if n == 0 {
		return ""
	}
	s := fmt.Sprintf("\n\nGD against the modified loss: the distance ratio ‖θ_GD − θ_mod‖/‖θ_GD − θ_flow‖ is at most %g "+
		"up to time %g", gdRatioMax, within)
	if !math.IsInf(broke, 1) {
		s += fmt.Sprintf(" and first exceeds it at time %g", broke)
	}
	return s + fmt.Sprintf(". Mean |L_GD − L_mod| over the times t > 0 is %.4g, mean |L_GD − L_flow| %.4g.",
		lossMod/n, lossFlow/n)
}
