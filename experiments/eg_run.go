package experiments

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"xlc/runtime/interp"
)

// The sparse problem's size (eg/sparse.xl's config, set by defines): n
// features, k of them in the true mixture, label noise σ.
const (
	egN     = 2048
	egK     = 8
	egNoise = 0.1
	egBatch = 16
)

// egAdaptiveLR is each adaptive optimizer's default, untuned lr: 0.01 is
// the customary default of plain SGD (Keras), 1e-3 Adam's (Kingma and Ba
// 2015). Their meta rates stay automatic (eg_gamma = 0).
var egAdaptiveLR = map[string]float64{"eg_adaptive": 0.01, "eg_adam": 1e-3}

// egDiverge: a run has diverged when its training loss is not finite or
// exceeds this factor times its first loss.
const egDiverge = 100

// An egProblem is one of the two problems: a model, the defines shared by
// every run on it, and the lr grid of each fixed-lr optimizer.
type egProblem struct {
	name, file   string
	defines      []string
	quickDefines []string
	steps, seeds [2]int // full, quick
	evalBatches  [2]int
	grid         map[string][]float64
}

var egProblems = []egProblem{
	{
		name: "sparse", file: "eg/sparse.xl",
		defines: []string{fmt.Sprintf("n=%d", egN), fmt.Sprintf("k=%d", egK), fmt.Sprintf("noise=%g", egNoise),
			fmt.Sprintf("batch=%d", egBatch), "weight_decay=0"},
		steps: [2]int{400, 20}, seeds: [2]int{3, 1}, evalBatches: [2]int{10, 2},
		grid: map[string][]float64{
			"sgd":  {3e-4, 1e-3, 3e-3, 1e-2, 3e-2},
			"adam": {1e-4, 3e-4, 1e-3, 3e-3, 1e-2},
			"eg":   {0.1, 0.3, 1, 3, 10},
		},
	},
	{
		name: "gpt", file: "gpt.xl",
		defines:      []string{"layers=2", "d=64", "seq=64", "schedule=constant", "warmup=0", "weight_decay=0"},
		quickDefines: []string{"layers=1", "d=32", "seq=16", "batch=4", "schedule=constant", "warmup=0", "weight_decay=0"},
		steps:        [2]int{600, 8}, seeds: [2]int{1, 1}, evalBatches: [2]int{20, 1},
		grid: map[string][]float64{
			"sgd":  {0.03, 0.1, 0.3, 1, 3},
			"adam": {3e-4, 1e-3, 3e-3, 1e-2, 3e-2},
			"eg":   {0.1, 0.3, 1, 3, 10},
		},
	},
}

// egDefines are the defines of one run: the problem's, then the optimizer
// (adam is adamw without weight decay) and its lr.
func (p egProblem) egDefines(quick bool, opt string, lr float64) []string {
	d := p.defines
	if quick && p.quickDefines != nil {
		d = p.quickDefines
	}
	name := opt
	if opt == "adam" {
		name = "adamw"
	}
	return append(slices.Clone(d), "optimizer="+name, fmt.Sprintf("lr=%g", lr))
}

// egRunResult is one trained run: its final numbers, or the step it
// diverged at (-1 when it did not), its windowed training-loss curve and
// its step-size traces by quantity.
type egRunResult struct {
	diverged  int
	loss, val float64 // expected (sparse) or validation (gpt) loss; sampled validation loss
	relErr    float64 // sparse: |w - w*| / |w*|
	support   float64 // sparse: the fraction of w's k largest weights on w*'s support
	trainTail float64 // mean training loss over the last tenth of the steps
	curve     [][2]float64
	trace     map[string][][2]float64
}

// egStar is the sparse problem's true mixture, as eg/sparse.xl builds it:
// weight (j+1)·2/(k(k+1)) at coordinate j·n/k.
func egStar() []float64 {
	w := make([]float64, egN)
	for j := range egK {
		w[j*(egN/egK)] = float64(j+1) * 2 / float64(egK*(egK+1))
	}
	return w
}

// egTrain trains opt at lr on p with seed and measures it.
func (r *Run) egTrain(p egProblem, opt string, lr float64, seed uint64) (egRunResult, error) {
	q := 0
	if r.Quick {
		q = 1
	}
	steps := p.steps[q]
	res := egRunResult{diverged: -1, trace: map[string][][2]float64{}}
	tr, err := r.Trainer(p.file, seed, p.egDefines(r.Quick, opt, lr)...)
	if err != nil {
		return res, err
	}
	defer tr.Close()
	every := max(steps/25, 1)
	var first, window, tail float64
	var nwin, ntail int
	for s := range steps {
		if s%every == 0 && egBase[opt] != "" {
			st, err := tr.State()
			if err != nil {
				return res, err
			}
			for k, v := range egStepSizes(p.name, opt, st) {
				res.trace[k] = append(res.trace[k], [2]float64{float64(s), v})
			}
		}
		m, err := tr.Step()
		if err != nil {
			return res, err
		}
		l := m["loss"]
		if s == 0 {
			first = l
		}
		if math.IsNaN(l) || math.IsInf(l, 0) || l > egDiverge*first {
			res.diverged = s
			return res, nil
		}
		window += l
		nwin++
		if nwin == every || s == steps-1 {
			res.curve = append(res.curve, [2]float64{float64(s + 1), window / float64(nwin)})
			window, nwin = 0, 0
		}
		if s >= steps-max(steps/10, 1) {
			tail += l
			ntail++
		}
	}
	res.trainTail = tail / float64(ntail)
	st, err := tr.State()
	if err != nil {
		return res, err
	}
	if egBase[opt] != "" {
		for k, v := range egStepSizes(p.name, opt, st) {
			res.trace[k] = append(res.trace[k], [2]float64{float64(steps), v})
		}
	}
	ev, err := tr.Eval(p.evalBatches[q])
	if err != nil {
		return res, err
	}
	res.val, res.loss = ev["val_loss"], ev["val_loss"]
	if p.name == "sparse" {
		w, ok := st["w"]
		if !ok {
			return res, fmt.Errorf("eg: the sparse model has no parameter w")
		}
		res.loss, res.relErr, res.support = egRecovery(w.Floats())
	}
	if math.IsNaN(res.loss) || math.IsInf(res.loss, 0) || math.IsNaN(res.val) || math.IsInf(res.val, 0) {
		res.diverged = steps
	}
	return res, nil
}

// egRecovery measures learned weights w against the true mixture: the
// expected loss over fresh x ~ N(0, I), (|w - w*|² + σ²)/2, the relative
// error |w - w*|/|w*|, and the fraction of w's k largest weights that lie
// on w*'s support.
func egRecovery(w []float64) (loss, relErr, support float64) {
	star := egStar()
	var d2, s2 float64
	for i := range w {
		d2 += (w[i] - star[i]) * (w[i] - star[i])
		s2 += star[i] * star[i]
	}
	idx := make([]int, len(w))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case w[a] > w[b]:
			return -1
		case w[a] < w[b]:
			return 1
		}
		return 0
	})
	hits := 0
	for _, i := range idx[:egK] {
		if star[i] > 0 {
			hits++
		}
	}
	return (d2 + egNoise*egNoise) / 2, math.Sqrt(d2 / s2), float64(hits) / egK
}

// Step-size quantities of the adaptive optimizers, as the traces and the
// stepsize_end table name them: learned factors that multiply the lr.
const (
	egQNu        = "mean ν"
	egQNuSupport = "mean ν on w*'s support"
	egQNuOff     = "mean ν off w*'s support"
	egQNuMax     = "max ν"
	egQS         = "s"
	egQGainMax   = "max q"
	egQGainMin   = "min q"
)

// egStepSizes reads the learned step-size factors from the optimizer
// state: eg_adaptive's per-coordinate ν (states eg_adaptive.nu.<param>),
// its mean over every coordinate and its maximum (on the sparse problem,
// its means on and off the true support instead of the maximum);
// eg_adam's global scale s (eg_adam.s) and the extremes of its
// per-coordinate gains q (eg_adam.q.<param>). The step is lr times these.
func egStepSizes(problem, opt string, st map[string]*interp.Tensor) map[string]float64 {
	out := map[string]float64{}
	switch opt {
	case "eg_adaptive":
		var sum, big float64
		var n int
		for name, t := range st {
			if !strings.HasPrefix(name, "eg_adaptive.nu.") {
				continue
			}
			for _, v := range t.Floats() {
				sum += v
				big = max(big, v)
				n++
			}
		}
		out[egQNu] = sum / float64(max(n, 1))
		if problem != "sparse" {
			out[egQNuMax] = big
			break
		}
		if nu, ok := st["eg_adaptive.nu.w"]; ok {
			star := egStar()
			var on, off float64
			for i, v := range nu.Floats() {
				if star[i] > 0 {
					on += v
				} else {
					off += v
				}
			}
			out[egQNuSupport] = on / egK
			out[egQNuOff] = off / float64(egN-egK)
		}
	case "eg_adam":
		if s, ok := st["eg_adam.s"]; ok {
			out[egQS] = s.Scalar()
		}
		big, small := 0.0, math.Inf(1)
		for name, t := range st {
			if strings.HasPrefix(name, "eg_adam.q.") {
				big, small = max(big, slices.Max(t.Floats())), min(small, slices.Min(t.Floats()))
			}
		}
		out[egQGainMax], out[egQGainMin] = big, small
	}
	return out
}
