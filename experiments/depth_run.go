package experiments

import (
	"fmt"
	"math"
	"time"

	"xlc/driver"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// depthVariant is a residual placement: gpt.xl's norm and, for DeepNorm,
// its α/β table.
type depthVariant struct{ name, norm, table string }

var depthVariants = []depthVariant{
	{"post", "post", ""},
	{"pre", "pre", ""},
	{"deepnorm", "deepnorm", "paper"},
	{"deepnorm-adam", "deepnorm", "adam-derived"},
}

// depthCase is one training run of the study.
type depthCase struct {
	v                            depthVariant
	layers, d, heads, seq, batch int
	steps, warmup, k             int
}

// The settings every run shares, fixed before the full run.
const (
	depthLR   = 1e-3 // Adam's peak learning rate, the same for every run
	depthSeed = 1
	// depthBound: a run diverges at the first step whose train loss is not
	// finite or exceeds depthBound times its first step's loss.
	depthBound = 1.5
	// depthEvalBatches is the number of validation batches of Trainer.Eval.
	depthEvalBatches = 8
)

// defines are the -D settings of c's run.
func (c depthCase) defines() []string {
	ds := []string{
		fmt.Sprintf("layers=%d", c.layers), fmt.Sprintf("d=%d", c.d), fmt.Sprintf("heads=%d", c.heads),
		fmt.Sprintf("seq=%d", c.seq), fmt.Sprintf("batch=%d", c.batch), "norm=" + c.v.norm,
	}
	if c.v.table != "" {
		ds = append(ds, "deepnorm_table="+c.v.table)
	}
	return append(ds, "optimizer=adamw", fmt.Sprintf("lr=%g", depthLR), "schedule=constant",
		fmt.Sprintf("warmup=%d", c.warmup), fmt.Sprintf("steps=%d", c.steps), "clip=1.0")
}

// depthOutcome is what one run measured.
type depthOutcome struct {
	losses    []float64 // train loss by step, up to and including a divergence
	diverged  int       // the step it diverged at, or -1
	val       float64   // final validation loss (NaN when diverged)
	updates   []float64 // ‖f(x;θ_t) − f(x;θ_0)‖ per token for t = 1..
	compile   time.Duration
	stepTime  time.Duration // mean per train step
	stepCount int
}

// runDepthCase trains c, measuring the early update size and, unless the
// run diverges, the final validation loss.
func runDepthCase(r *Run, c depthCase) (*depthOutcome, error) {
	start := time.Now()
	tr, err := r.Trainer("gpt.xl", depthSeed, c.defines()...)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	fwd, err := newTapForward(r, tr)
	if err != nil {
		return nil, err
	}
	defer fwd.close()
	out := &depthOutcome{diverged: -1, val: math.NaN(), compile: time.Since(start)}
	f0, err := fwd.logits(tr)
	if err != nil {
		return nil, err
	}
	var stepping time.Duration
	for s := 0; s < c.steps; s++ {
		t0 := time.Now()
		m, err := tr.Step()
		if err != nil {
			return nil, err
		}
		stepping += time.Since(t0)
		out.stepCount++
		loss := m["loss"]
		out.losses = append(out.losses, loss)
		if s < c.k {
			ft, err := fwd.logits(tr)
			if err != nil {
				return nil, err
			}
			out.updates = append(out.updates, tokenRMSDiff(ft, f0, fwd.vocab))
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) || loss > depthBound*out.losses[0] {
			out.diverged = s
			break
		}
	}
	out.stepTime = stepping / time.Duration(max(out.stepCount, 1))
	if out.diverged < 0 {
		ev, err := tr.Eval(depthEvalBatches)
		if err != nil {
			return nil, err
		}
		out.val = ev["val_loss"]
		if math.IsNaN(out.val) || math.IsInf(out.val, 0) {
			out.diverged = c.steps
		}
	}
	return out, nil
}

// tapForward is the model's forward pass returning its tapped logits, run
// on one fixed validation batch.
type tapForward struct {
	f     *ir.Func
	exe   runtime.Executable
	in    map[string]*interp.Tensor
	vocab int
}

// newTapForward compiles tr's model with the tap "logits" as its result
// (driver.Tapped), fused for the cpu backend as Trainer compiles the step.
func newTapForward(r *Run, tr *Trainer) (*tapForward, error) {
	m := tr.Model
	f, err := driver.Tapped(m.Path, m.Source, m.Defines, "logits")
	if err != nil {
		return nil, err
	}
	be, popt := r.backend()
	if popt.Fuse {
		if err := passes.Run(f, popt); err != nil {
			return nil, err
		}
	}
	in, err := runtime.BindInputs(f, r.Data, "val", depthSeed^0x5eed, 0)
	if err != nil {
		return nil, err
	}
	exe, err := be.Load(f)
	if err != nil {
		return nil, err
	}
	sh := f.Results[0].Type.Shape
	return &tapForward{f: f, exe: exe, in: in, vocab: sh[len(sh)-1]}, nil
}

// logits runs the forward pass with tr's current parameters.
func (t *tapForward) logits(tr *Trainer) (*interp.Tensor, error) {
	state, err := tr.State()
	if err != nil {
		return nil, err
	}
	out, err := runWith(t.exe, t.f, t.in, state)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (t *tapForward) close() {
	if c, ok := t.exe.(interface{ Close() error }); ok {
		c.Close()
	}
}

// tokenRMSDiff is the root mean square over token positions of the L2
// norm of a − b's logit vectors (rows of vocab): ‖a − b‖_F / √tokens.
func tokenRMSDiff(a, b *interp.Tensor, vocab int) float64 {
	x, y := a.Floats(), b.Floats()
	var s float64
	for i := range x {
		d := x[i] - y[i]
		s += d * d
	}
	return math.Sqrt(s / float64(len(x)/vocab))
}
