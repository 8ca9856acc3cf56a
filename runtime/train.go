package runtime

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"xlc/ir"
	"xlc/runtime/interp"
)

// CheckpointName is the file in the output folder that holds the latest
// checkpoint.
const CheckpointName = "checkpoint.safetensors"

// TrainOptions configure a training run.
type TrainOptions struct {
	Data *Dataset
	// Steps is the step the run ends at (a resumed run continues to it).
	Steps int64
	// OutDir receives checkpoint.safetensors, metrics.jsonl and loss.png.
	OutDir string
	Seed   uint64
	// Resume continues from OutDir's checkpoint. Its metadata must agree
	// with Meta on every key in Match (the model source, the settings, the
	// data), so that a resumed run is the run it continues.
	Resume bool
	Match  []string
	// Without Resume, an OutDir that holds a run's files (a checkpoint,
	// metrics or a plot) is refused, with what is there and how that run
	// differs, unless Force: then they are deleted once every check has
	// passed, before the first file is written.
	Force bool
	// NewDir says OutDir is a new run's folder (NextRunDir): Train creates
	// it and fails if it exists by then, so two runs never share it.
	NewDir bool
	// StopAt, when positive, ends the run early at that step with a
	// checkpoint, as Ctrl-C would, to be continued with Resume.
	StopAt int64
	// EvalEvery and CkptEvery are in steps; 0 picks Steps/10 (at least 1).
	EvalEvery, CkptEvery int64
	// EvalBatches is the number of validation batches per evaluation
	// (default 4); they are the same batches every time.
	EvalBatches int
	// Log receives the progress display.
	Log io.Writer
	// Losses names the step's results the progress line shows, in order
	// (trainstep.LossNames: every task loss, then the combined objective);
	// empty shows the first result.
	Losses []string
	// Meta is stored in every checkpoint (the model source and settings, so
	// that xlc sample can rebuild the model).
	Meta map[string]string
	// NaNPatience stops the run, with an error and without writing the
	// state, once its loss has not been finite for that many steps in a
	// row (see nanWatch); 0 never stops. While the loss is not finite no
	// checkpoint is written, so the last good one stays.
	NaNPatience int
}

// TrainResult summarises a finished or interrupted run.
type TrainResult struct {
	Step int64
	// Interrupted is set when ctx was cancelled (Ctrl-C), Stopped when the
	// run ended at StopAt; both leave a checkpoint to resume.
	Interrupted, Stopped bool
	// Last holds the final step's scalar outputs and, when evaluated, val_loss.
	Last         map[string]float64
	TokensPerSec float64
}

// Train runs step (a train_step from trainstep.Build) until
// opt.Steps, evaluating eval (the forward pass) on validation batches,
// logging metrics and writing checkpoints atomically. Cancelling ctx (Ctrl-C)
// ends the run after the current step with a checkpoint. Every input check
// (data, checkpoint) happens before any file is written.
func Train(ctx context.Context, be Backend, step, eval *ir.Func, opt TrainOptions) (*TrainResult, error) {
	if opt.EvalEvery <= 0 {
		opt.EvalEvery = max(opt.Steps/10, 1)
	}
	if opt.CkptEvery <= 0 {
		opt.CkptEvery = opt.EvalEvery
	}
	if opt.EvalBatches <= 0 {
		opt.EvalBatches = 4
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if err := CheckOutDir(opt); err != nil {
		return nil, err
	}
	state, err := startState(step, opt)
	if err != nil {
		return nil, err
	}
	start := state["step"].I[0]
	if start > opt.Steps {
		return nil, fmt.Errorf("the checkpoint is at step %d, past --steps %d", start, opt.Steps)
	}
	if start == opt.Steps {
		return &TrainResult{Step: start}, nil // nothing to do; touch nothing
	}
	end := opt.Steps
	if opt.StopAt > start && opt.StopAt < end {
		end = opt.StopAt
	}
	stepExe, err := be.Load(step)
	if err != nil {
		return nil, fmt.Errorf("train step: %v", err)
	}
	defer closeExe(stepExe)
	evalExe, err := be.Load(eval)
	if err != nil {
		return nil, fmt.Errorf("forward: %v", err)
	}
	defer closeExe(evalExe)
	// Bind the first batches now, so that data that does not fit the model
	// is reported before any file is written.
	if _, err := BindInputs(step, opt.Data, "train", opt.Seed, start); err != nil {
		return nil, err
	}
	if _, err := BindInputs(eval, opt.Data, "val", opt.Seed, 0); err != nil {
		return nil, err
	}
	if err := makeOutDir(opt); err != nil {
		return nil, err
	}
	mw, err := OpenMetrics(filepath.Join(opt.OutDir, MetricsName), start)
	if err != nil {
		return nil, err
	}
	defer mw.Close()
	tokensPerStep := 0
	if tok := step.Param("tokens"); tok != nil {
		tokensPerStep = tok.Type.Shape.NumElements()
	}
	res := &TrainResult{Step: start}
	prog := NewProgress(opt.Log, opt.Steps, start)
	watch := nanWatch{patience: opt.NaNPatience}
	saved := start // the step of the checkpoint in OutDir; 0: none
	if !opt.Resume {
		saved = 0
	}
	var busy time.Duration
	done := int64(0)
	stepper := NewStepper(stepExe, step, state, true)
	for s := start; s < end; s++ {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		t0 := time.Now()
		m, err := stepper.Step(opt.Data, opt.Seed, s)
		if err != nil {
			return nil, err
		}
		busy += time.Since(t0)
		done++
		tps := float64(done) * float64(tokensPerStep) / busy.Seconds()
		m["tokens_per_s"] = tps
		res.TokensPerSec = tps
		if (s+1)%opt.EvalEvery == 0 || s+1 == opt.Steps {
			if err := stepper.Sync(); err != nil {
				return nil, err
			}
			val, err := evaluate(evalExe, eval, state, opt)
			if err != nil {
				return nil, err
			}
			for k, v := range val {
				m[k] = v
			}
		}
		if err := mw.Write(s+1, m); err != nil {
			return nil, err
		}
		prog.Update(s+1, progressLosses(step, opt.Losses, m), tps)
		res.Step, res.Last = s+1, m
		watch.observe(s+1, m, lossNames(step, opt.Losses))
		if watch.exhausted() {
			prog.Finish()
			return nil, watch.stopError(s+1, saved, "stopped")
		}
		if (s+1)%opt.CkptEvery == 0 && s+1 != opt.Steps && watch.streak == 0 {
			if err := stepper.Sync(); err != nil {
				return nil, err
			}
			// A step that drove the state to NaN or infinity had a
			// finite loss; the next one shows it. Keep the last good
			// checkpoint.
			if finiteState(state) {
				if err := saveState(state, step, opt); err != nil {
					return nil, err
				}
				saved = s + 1
			}
		}
	}
	if end < opt.Steps && res.Step == end && !res.Interrupted {
		res.Stopped = true
	}
	prog.Finish()
	if watch.streak > 0 {
		return nil, watch.stopError(res.Step, saved, "ended")
	}
	if err := stepper.Sync(); err != nil {
		return nil, err
	}
	if !finiteState(state) {
		return nil, fmt.Errorf("step %d: ended with parameters or state not finite; %s", res.Step, keptCheckpoint(saved))
	}
	if err := saveState(state, step, opt); err != nil {
		return nil, err
	}
	if err := plotMetrics(opt.OutDir); err != nil {
		return nil, err
	}
	return res, nil
}

// makeOutDir creates the output folder (NewDir: a new one, which must not
// exist), or with Force clears it of the run it holds.
func makeOutDir(opt TrainOptions) error {
	if opt.NewDir {
		if err := os.MkdirAll(filepath.Dir(opt.OutDir), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(opt.OutDir, 0o755); err != nil {
			return fmt.Errorf("%v (another run took the folder; run again)", err)
		}
		return nil
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return err
	}
	if opt.Force && !opt.Resume {
		return removeRunFiles(opt.OutDir)
	}
	return nil
}

// closeExe releases an executable that holds resources (native memory).
func closeExe(x Executable) {
	if c, ok := x.(interface{ Close() error }); ok {
		c.Close()
	}
}

// RunStep runs train step number s on a batch bound from d, replaces every
// state tensor in state by its new value (the donated results) and returns
// the step's scalar outputs by name. It is the trainer's step with the state
// copied in and out (see Stepper), exported for tests that compare backends
// step by step.
func RunStep(exe Executable, step *ir.Func, d *Dataset, seed uint64, s int64, state map[string]*interp.Tensor) (map[string]float64, error) {
	return NewStepper(exe, step, state, false).Step(d, seed, s)
}

// FreshState returns a fresh run's state of step: every parameter and every
// state tensor initialised from seed (what Train starts from without Resume).
func FreshState(step *ir.Func, seed uint64) (map[string]*interp.Tensor, error) {
	return startState(step, TrainOptions{Seed: seed})
}

// startState initialises parameters and state, or loads them from the
// checkpoint when resuming, checking that it belongs to this model.
func startState(step *ir.Func, opt TrainOptions) (map[string]*interp.Tensor, error) {
	if !opt.Resume {
		state, err := InitParams(step, opt.Seed)
		if err != nil {
			return nil, err
		}
		st, err := InitState(step, opt.Seed)
		if err != nil {
			return nil, err
		}
		for k, v := range st {
			state[k] = v
		}
		return state, nil
	}
	path := filepath.Join(opt.OutDir, CheckpointName)
	tensors, meta, err := LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	if s := meta["seed"]; s != strconv.FormatUint(opt.Seed, 10) {
		return nil, fmt.Errorf("%s: written with --seed %s, this run has --seed %d; resume with the same seed", path, s, opt.Seed)
	}
	for _, k := range opt.Match {
		if meta[k] != opt.Meta[k] {
			return nil, fmt.Errorf("%s: written with a different %s (%s there, %s here); resume with the same model, settings and data", path, k, clip(meta[k]), clip(opt.Meta[k]))
		}
	}
	if err := checkSignature(path, tensors, step); err != nil {
		return nil, err
	}
	if n := tensors["step"].I[0]; n < 0 || strconv.FormatInt(n, 10) != meta["step"] {
		return nil, fmt.Errorf("%s: corrupted: step tensor %d, metadata step %q", path, n, meta["step"])
	}
	if ls := tensors["loss_scale"]; ls != nil && !(ls.F[0] > 0 && !math.IsInf(ls.F[0], 0)) {
		return nil, fmt.Errorf("%s: corrupted: loss scale %v", path, ls.F[0])
	}
	return tensors, nil
}

// clip shortens a metadata value for an error message.
func clip(s string) string {
	if s == "" {
		return "none"
	}
	if len(s) > 60 {
		return fmt.Sprintf("%q...", s[:60])
	}
	return fmt.Sprintf("%q", s)
}

// checkSignature checks that the checkpoint holds exactly the parameters
// and state of step, with their types.
func checkSignature(path string, tensors map[string]*interp.Tensor, step *ir.Func) error {
	want := 0
	for _, p := range step.Params {
		if r := p.Role(); r != "param" && r != "state" {
			continue
		}
		want++
		t := tensors[p.Name]
		if t == nil {
			return fmt.Errorf("%s: written for a different model or training setup: it has no %s %s", path, p.Role(), p.Name)
		}
		if !t.Type.Equal(p.Type) {
			return fmt.Errorf("%s: written for a different model: %s is %v there, %v here", path, p.Name, t.Type, p.Type)
		}
	}
	if len(tensors) != want {
		var extra []string
		for name := range tensors {
			if step.Param(name) == nil {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("%s: written for a different model or training setup: it has %s, which this one lacks", path, extra[0])
	}
	return nil
}

func saveState(state map[string]*interp.Tensor, step *ir.Func, opt TrainOptions) error {
	meta := map[string]string{}
	for k, v := range opt.Meta {
		meta[k] = v
	}
	meta["step"] = strconv.FormatInt(state["step"].I[0], 10)
	meta["seed"] = strconv.FormatUint(opt.Seed, 10)
	meta["data"] = opt.Data.Source
	meta["signature"] = Signature(step)
	return SaveCheckpoint(filepath.Join(opt.OutDir, CheckpointName), state, meta)
}

// Signature is a hash of a function's parameter and state names and types.
func Signature(f *ir.Func) string {
	h := fnv.New64a()
	for _, p := range f.Params {
		if r := p.Role(); r == "param" || r == "state" {
			fmt.Fprintf(h, "%s %s %v\n", r, p.Name, p.Type)
		}
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// Evaluate runs the forward pass f on batches fixed validation batches of d
// (the same batches for the same seed) and returns the mean of each scalar
// output, named val_<output>, as Train's evaluations do.
func Evaluate(exe Executable, f *ir.Func, state map[string]*interp.Tensor, d *Dataset, seed uint64, batches int) (map[string]float64, error) {
	return evaluate(exe, f, state, TrainOptions{Data: d, Seed: seed, EvalBatches: batches})
}

// evaluate runs the forward pass on opt.EvalBatches fixed validation batches
// and returns the mean of each scalar output, named val_<output>.
func evaluate(exe Executable, f *ir.Func, state map[string]*interp.Tensor, opt TrainOptions) (map[string]float64, error) {
	sums := map[string]float64{}
	for k := 0; k < opt.EvalBatches; k++ {
		named, err := BindInputs(f, opt.Data, "val", opt.Seed^0xe7a1, int64(k))
		if err != nil {
			return nil, err
		}
		for name, v := range state {
			if f.Param(name) != nil {
				named[name] = v
			}
		}
		args, err := Args(f, named)
		if err != nil {
			return nil, err
		}
		out, err := exe.Run(args)
		if err != nil {
			return nil, fmt.Errorf("validation: %v", err)
		}
		for i, name := range f.ResultNames {
			if out[i].Type.Rank() == 0 {
				sums["val_"+name] += out[i].Scalar() / float64(opt.EvalBatches)
			}
		}
	}
	return sums, nil
}

// progressLosses picks the values the progress line shows from a step's
// outputs m: those named in names, or the first result, which
// trainstep.Build makes the first task loss; then, with loss scaling, the
// scale and the count of skipped steps.
func progressLosses(step *ir.Func, names []string, m map[string]float64) []Named {
	names = lossNames(step, names)
	out := make([]Named, len(names))
	for i, n := range names {
		v, ok := m[n]
		if !ok {
			v = math.NaN()
		}
		out[i] = Named{Name: n, Value: v}
	}
	// Loss scaling's state.
	for _, n := range []string{"scale", "skipped"} {
		if v, ok := m[n]; ok {
			out = append(out, Named{Name: n, Value: v, Plain: true})
		}
	}
	return out
}

// lossNames is names, or when it is empty step's first result.
func lossNames(step *ir.Func, names []string) []string {
	if len(names) == 0 && len(step.ResultNames) > 0 {
		return step.ResultNames[:1]
	}
	return names
}

// plotMetrics draws every loss series of metrics.jsonl into loss.png.
func plotMetrics(dir string) error {
	rows, err := ReadMetrics(filepath.Join(dir, MetricsName))
	if err != nil {
		return err
	}
	series := map[string][][2]float64{}
	for _, r := range rows {
		for k, v := range r {
			if k != "step" && isLossName(k) && !math.IsNaN(v) && !math.IsInf(v, 0) {
				series[k] = append(series[k], [2]float64{r["step"], v})
			}
		}
	}
	return PlotLosses(filepath.Join(dir, PlotName), series, "loss")
}

func isLossName(k string) bool {
	return len(k) >= 4 && k[len(k)-4:] == "loss"
}
