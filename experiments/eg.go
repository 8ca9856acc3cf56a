package experiments

import (
	"fmt"
	"math"
	"strings"
)

// The eg experiment compares SGD, Adam, exponentiated gradient (EG, EG±)
// and the two step-size adaptations by EG (eg_adaptive, eg_adam) on a
// sparse nonnegative regression and on a small GPT: a log-spaced lr grid
// for each fixed-lr optimizer, one run at a default lr for each adaptive
// one. Runs are in eg_run.go.

// egWithin is the claims' tolerance: an adaptive optimizer's final loss
// may be at most this factor times its base optimizer's best.
const egWithin = 1.05

// egOptimizers are the optimizers in report order, by the names the
// tables use; egBase maps each adaptive one to the fixed-lr optimizer it
// adapts the step sizes of.
var (
	egOptimizers = []string{"sgd", "adam", "eg", "eg_adaptive", "eg_adam"}
	egBase       = map[string]string{"eg_adaptive": "sgd", "eg_adam": "adam"}
)

func init() {
	register(&Experiment{
		Name:  "eg",
		Title: "Exponentiated gradient and step-size adaptation",
		Question: "Does exponentiated gradient beat SGD and Adam on a sparse nonnegative problem, and do the " +
			"step-size adaptations by EG (eg_adaptive, eg_adam) reach the loss of their base optimizer's " +
			"best tuned learning rate without tuning it, on that problem and on a small GPT?",
		Background: egBackground,
		Claims: []Claim{
			egAdaptClaim("sparse", "eg_adaptive"),
			egAdaptClaim("sparse", "eg_adam"),
			egAdaptClaim("gpt", "eg_adaptive"),
			egAdaptClaim("gpt", "eg_adam"),
			{
				Text: "on the sparse problem, EG at its best lr reaches a lower final loss (mean over seeds) " +
					"than both SGD and Adam at their best lr",
				Check: func(rs Results) Verdict {
					eg, lrEG, ok1 := egBest(rs, "sparse", "eg")
					sgd, lrSGD, ok2 := egBest(rs, "sparse", "sgd")
					adam, lrAdam, ok3 := egBest(rs, "sparse", "adam")
					if !ok1 || !ok2 || !ok3 {
						return Verdict{false, "a best run is missing (every run of an optimizer diverged)"}
					}
					return Verdict{eg < sgd && eg < adam, fmt.Sprintf("EG %s (lr %s), SGD %s (lr %s), Adam %s (lr %s)",
						cell(eg), cell(lrEG), cell(sgd), cell(lrSGD), cell(adam), cell(lrAdam))}
				},
			},
		},
		Run:      runEG,
		Conclude: concludeEG,
	})
}

// egAdaptClaim is the claim that opt, run once at its default lr on the
// problem, ends within egWithin of its base optimizer's best lr.
func egAdaptClaim(problem, opt string) Claim {
	base := egBase[opt]
	return Claim{
		Text: fmt.Sprintf("on %s, %s at its default lr (%s) reaches a final loss at most %.2f× that of %s at "+
			"its best lr from the grid", egProblemName(problem), opt, cell(egAdaptiveLR[opt]), egWithin, base),
		Check: func(rs Results) Verdict {
			best, lr, ok := egBest(rs, problem, base)
			got, _, ok2 := egBest(rs, problem, opt)
			if !ok || !ok2 {
				return Verdict{false, fmt.Sprintf("no finite final loss for %s or %s", opt, base)}
			}
			return Verdict{got <= egWithin*best, fmt.Sprintf("%s %s, %s best %s (lr %s): ratio %.3f",
				opt, cell(got), base, cell(best), cell(lr), got/best)}
		},
	}
}

// egProblemName is how the claims name a problem.
func egProblemName(problem string) string {
	if problem == "gpt" {
		return "the small GPT"
	}
	return "the sparse problem"
}

// egBest returns the lowest final loss of opt on problem over its lr grid
// and that lr; diverged runs (recorded as text) do not count.
func egBest(rs Results, problem, opt string) (loss, lr float64, ok bool) {
	loss = math.Inf(1)
	for _, row := range rs.Rows(problem, map[string]any{"optimizer": opt}) {
		l, ok1 := row.Float("loss")
		x, ok2 := row.Float("lr")
		if ok1 && ok2 && l < loss {
			loss, lr, ok = l, x, true
		}
	}
	return loss, lr, ok
}

// concludeEG summarises, per problem, each optimizer's best final loss
// relative to the best of all, how far the adaptive ones' step sizes
// moved, and how each adaptive run compares with its base optimizer at
// the same fixed lr: a step size that barely moved leaves the base
// optimizer at the default lr.
func concludeEG(rs Results) string {
	var b strings.Builder
	for _, problem := range []string{"sparse", "gpt"} {
		overall, ok := math.Inf(1), false
		best := map[string]float64{}
		for _, opt := range egOptimizers {
			if l, _, ok1 := egBest(rs, problem, opt); ok1 {
				best[opt], ok = l, true
				overall = min(overall, l)
			}
		}
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "On %s the final losses relative to the lowest (%s) are:", egProblemName(problem), cell(overall))
		for i, opt := range egOptimizers {
			sep := ","
			if i == 0 {
				sep = ""
			}
			if l, ok := best[opt]; ok {
				fmt.Fprintf(&b, "%s %s %.3f", sep, opt, l/overall)
			} else {
				fmt.Fprintf(&b, "%s %s diverged", sep, opt)
			}
		}
		b.WriteString(".")
		for _, opt := range []string{"eg_adaptive", "eg_adam"} {
			b.WriteString(egConcludeAdaptive(rs, problem, opt))
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

// egStepQuantity is the step size concludeEG follows for each adaptive
// optimizer.
var egStepQuantity = map[string]string{"eg_adaptive": egQNu, "eg_adam": egQS}

// egConcludeAdaptive is concludeEG's sentences on one adaptive optimizer.
func egConcludeAdaptive(rs Results, problem, opt string) string {
	q := egStepQuantity[opt]
	start, ok1 := rs.Float("stepsize_end", map[string]any{"problem": problem, "optimizer": opt, "quantity": q}, "start")
	end, ok2 := rs.Float("stepsize_end", map[string]any{"problem": problem, "optimizer": opt, "quantity": q}, "end")
	got, lr, ok3 := egBest(rs, problem, opt)
	if !ok1 || !ok2 || !ok3 || start <= 0 {
		return fmt.Sprintf(" %s: no finite run to describe.", opt)
	}
	s := fmt.Sprintf(" %s's step-size factor %s went from %s to %s (×%.3g), its step lr·%s from %s to %s",
		opt, q, cell(start), cell(end), end/start, q, cell(lr*start), cell(lr*end))
	base := egBase[opt]
	if same, ok := rs.Float(problem, map[string]any{"optimizer": base, "lr": lr}, "loss"); ok {
		s += fmt.Sprintf("; it ended at %s against %s for %s at the same fixed lr %s (ratio %.3f)", cell(got), cell(same), base, cell(lr), got/same)
	}
	s += "."
	if qmax, ok := rs.Float("stepsize_end", map[string]any{"problem": problem, "optimizer": opt, "quantity": egQGainMax}, "end"); ok {
		s += fmt.Sprintf(" Its per-coordinate gains q (mean 1) reached a maximum of %s.", cell(qmax))
	}
	if math.Abs(math.Log(end/start)) < math.Log(1.25) {
		s += " Its overall step size moved by less than 25%: the run stayed near its default lr, so its verdict " +
			"says more about how close that lr is to the tuned one than about adapting the step size."
	}
	return s
}
