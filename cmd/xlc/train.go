package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"xlc/bundle"
	"xlc/driver"
	"xlc/ir"
	"xlc/parser"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/cuda"
	"xlc/trainstep"
)

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stdout)
	var defs defines
	fs.Var(&defs, "D", "override a config value or train setting: -D key=value (repeatable)")
	data := fs.String("data", "", "a text file or a folder of text files (default: built-in generated text)")
	steps := fs.Int64("steps", 0, "train until this step (default: the model's steps setting)")
	out := fs.String("out", "", "folder for the checkpoint, metrics.jsonl and loss.png (default: a new folder "+runsRoot+"/MODEL-N)")
	seed := fs.Uint64("seed", 1, "seed for initialisation, batches and dropout")
	resume := fs.Bool("resume", false, "continue the run in --out (default: the newest run of the model in "+runsRoot+"/) with the same model, settings, data and seed")
	force := fs.Bool("force", false, "replace the run --out holds")
	stopAt := fs.Int64("stop-at", 0, "stop early at this step with a checkpoint, as Ctrl-C would")
	evalEvery := fs.Int64("eval-every", 0, "validate every N steps (default steps/10)")
	ckptEvery := fs.Int64("ckpt-every", 0, "write a checkpoint every N steps (default: as eval-every)")
	evalBatches := fs.Int("eval-batches", 4, "validation batches per evaluation")
	verify := fs.Bool("verify", false, "verify the IR after every pass")
	be := fs.String("backend", "auto", backendFlagHelp)
	bundle := fs.String("bundle", "", "run a bundle written by xlc build -o FILE.xlc instead of a model file (no compiler needed; a GPU bundle runs on cuda)")
	cpuName := fs.String("cpu", "", cpuFlagHelp)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if *resume && *force {
		return usageError{"xlc train: --resume continues the run in --out, --force replaces it; give one"}
	}
	var b runtime.Backend
	var m *driver.Model
	if *bundle != "" && *cpuName != "" {
		return fmt.Errorf("xlc train: --cpu does not apply to a bundle, whose kernels are compiled already (xlc build --cpu NAME -o FILE.xlc)")
	}
	if *bundle != "" {
		if b, m, err = loadBundle(*bundle, pos, defs, *be, *steps); err != nil {
			return fmt.Errorf("xlc train: %v", err)
		}
	} else {
		if len(pos) != 1 {
			return fmt.Errorf("xlc train: want one model file, have %d (see xlc help)", len(pos))
		}
		if *steps > 0 {
			defs = append(defs, defineSteps(*steps))
		}
		if b, err = backend(*be, stderr, "training", *cpuName, true); err != nil {
			return fmt.Errorf("xlc train: %v", err)
		}
		src, err := os.ReadFile(pos[0])
		if err != nil {
			return fmt.Errorf("xlc train: %v", err)
		}
		copt := compileOptions(b, *verify)
		copt.Log = stderr
		if m, err = driver.Compile(pos[0], src, defs, copt); err != nil {
			return err
		}
	}
	dir, newDir, err := runDir(*out, *resume, m.Name, stderr)
	if err != nil {
		return fmt.Errorf("xlc train: %v", err)
	}
	ds, err := loadData(*data, m)
	if err != nil {
		return fmt.Errorf("xlc train: %v", err)
	}
	meta, err := modelMeta(m, ds)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	where := b.Name()
	if *bundle != "" {
		where += " (bundle " + *bundle + ")"
	}
	opts := runtime.TrainOptions{
		Data: ds, Steps: int64(m.Train.Steps), OutDir: dir, NewDir: newDir, Seed: *seed,
		Resume: *resume, Force: *force, StopAt: *stopAt,
		Match:     []string{"model_source", "settings", "data"},
		EvalEvery: *evalEvery, CkptEvery: *ckptEvery, EvalBatches: *evalBatches, Log: stderr, Meta: meta,
		Losses: trainstep.LossNames(m.Step), NaNPatience: m.Train.NaNPatience,
	}
	if err := runtime.CheckOutDir(opts); err != nil {
		return fmt.Errorf("xlc train: %v", err)
	}
	fmt.Fprintf(stderr, "training %s on %s (%d bytes) with %s, combiner %s, %d steps, backend %s\n",
		m.Name, ds.Source, len(ds.Train), m.Train.Optimizer, m.Train.Combiner, m.Train.Steps, where)
	res, err := runtime.Train(ctx, b, m.Step, m.Eval, opts)
	if err != nil {
		return fmt.Errorf("xlc train: %v", err)
	}
	switch {
	case res.Stopped:
		fmt.Fprintf(stdout, "stopped at step %d (--stop-at); checkpoint saved in %s (continue with --resume --out %s)\n", res.Step, dir, dir)
	case res.Interrupted:
		fmt.Fprintf(stdout, "interrupted at step %d; checkpoint saved in %s (continue with --resume --out %s)\n", res.Step, dir, dir)
	case res.Last == nil:
		fmt.Fprintf(stdout, "the checkpoint in %s is already at step %d; nothing to do\n", dir, res.Step)
	default:
		fmt.Fprintf(stdout, "step %d:%s\ncheckpoint %s, metrics %s, plot %s\n",
			res.Step, trainSummary(res.Last, trainstep.LossNames(m.Step)), filepath.Join(dir, runtime.CheckpointName),
			filepath.Join(dir, runtime.MetricsName), filepath.Join(dir, runtime.PlotName))
	}
	return nil
}

// runsRoot holds the folders of runs trained without --out.
const runsRoot = "out"

// runDir picks a run's folder: --out as given; without it, when resuming,
// the newest run of the model in runsRoot, else a new folder there
// (runtime.NextRunDir: newDir). It says which on log.
func runDir(out string, resume bool, model string, log io.Writer) (dir string, newDir bool, err error) {
	switch {
	case out != "":
		return out, false, nil
	case resume:
		if dir, err = runtime.NewestRunDir(runsRoot, model); err != nil {
			return "", false, err
		}
		if dir == "" {
			return "", false, fmt.Errorf("--resume: no run of %s in %s/ to continue (name its folder with --out)", model, runsRoot)
		}
		fmt.Fprintf(log, "resuming %s, the newest run of %s\n", dir, model)
		return dir, false, nil
	}
	if dir, err = runtime.NextRunDir(runsRoot, model); err != nil {
		return "", false, err
	}
	fmt.Fprintf(log, "run folder %s (new; --out DIR names one)\n", dir)
	return dir, true, nil
}

// trainSummary formats the last step's outputs: the losses first (each task's,
// then the combined objective, named as in metrics.jsonl), then their
// validation values, then every other metric in name order.
func trainSummary(last map[string]float64, losses []string) string {
	var b strings.Builder
	shown := map[string]bool{}
	show := func(k string) {
		if v, ok := last[k]; ok && !shown[k] {
			fmt.Fprintf(&b, " %s=%.4g", k, v)
			shown[k] = true
		}
	}
	for _, k := range losses {
		show(k)
	}
	for _, k := range losses {
		show("val_" + k)
	}
	for _, k := range sortedKeys(last) {
		show(k)
	}
	return b.String()
}

// loadBundle reads a bundle (xlc build -o FILE.xlc) and returns the backend
// that runs its prebuilt kernels (cpu, or cuda for a GPU bundle) and the
// model it holds, as driver.Compile would have returned it, without parsing
// the model or running LLVM. --steps N ends the run at step N; a cosine or
// linear schedule's horizon was compiled into the step, so there N must be
// the bundle's steps.
func loadBundle(path string, pos []string, defs defines, be string, steps int64) (runtime.Backend, *driver.Model, error) {
	if len(pos) != 0 {
		return nil, nil, fmt.Errorf("--bundle %s runs the model it holds; drop %s", path, pos[0])
	}
	if len(defs) != 0 {
		return nil, nil, fmt.Errorf("--bundle %s: -D %s would change the compiled model; rebuild the bundle with it (xlc build MODEL.xl -D ... -o %s)", path, defs[0].Key, path)
	}
	bu, err := bundle.Read(path)
	if err != nil {
		return nil, nil, err
	}
	if want := map[bool]string{false: "cpu", true: "cuda"}[bu.GPU()]; be != "auto" && be != want {
		return nil, nil, fmt.Errorf("--bundle %s runs on the %s backend, not --backend=%s (train the model file for that)", path, want, be)
	}
	if err := bu.CheckHost(); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	step, eval, err := bu.Funcs()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: corrupted bundle: %v", path, err)
	}
	m := &driver.Model{Name: bu.Name, Path: bu.Path, Source: bu.Source, Defines: bu.Defines, Step: step, Eval: eval}
	m.Train.Optimizer, m.Train.Combiner, m.Train.Schedule, m.Train.Steps = bu.Optimizer, bu.Combiner, bu.Schedule, bu.Steps
	if steps > 0 && steps != int64(bu.Steps) {
		if bu.Schedule != "" && bu.Schedule != "constant" {
			return nil, nil, fmt.Errorf("%s: its %s schedule was compiled for %d steps; rebuild it with -D steps=%d", path, bu.Schedule, bu.Steps, steps)
		}
		m.Train.Steps = int(steps)
		m.Defines = append(append([]parser.Define(nil), m.Defines...), defineSteps(steps))
	}
	if bu.GPU() {
		return cuda.Prebuilt{Target: bu.Target, PTX: map[*ir.Func]cuda.Module{
			step: {PTX: bu.StepPTX, LLSum: bu.StepLL},
			eval: {PTX: bu.EvalPTX, LLSum: bu.EvalLL},
		}}, m, nil
	}
	b := cpu.Prebuilt{Target: bu.Target, Libs: map[*ir.Func]cpu.Lib{
		step: {SO: bu.StepSO, LLSum: bu.StepLL},
		eval: {SO: bu.EvalSO, LLSum: bu.EvalLL},
	}}
	return b, m, nil
}

// loadData reads --data, or the built-in text when it is empty, checking
// that windows of the model's seq+1 bytes fit.
func loadData(path string, m *driver.Model) (*runtime.Dataset, error) {
	minLen := 2
	if tok := m.Step.Param("tokens"); tok != nil && tok.Type.Rank() == 2 {
		minLen = tok.Type.Shape[1] + 1
	}
	if path == "" {
		return runtime.BuiltinText(), nil
	}
	return runtime.LoadText(path, 0.1, minLen)
}

// modelMeta is what a checkpoint records to rebuild its model (the source
// and the defines) and to check a resumed run continues it: the settings
// (the defines but steps, which only moves the end of the run and the
// schedule's horizon) and the data.
func modelMeta(m *driver.Model, ds *runtime.Dataset) (map[string]string, error) {
	defs, err := json.Marshal(m.Defines)
	if err != nil {
		return nil, err
	}
	var kept []parser.Define
	for _, d := range m.Defines {
		if d.Key != "steps" {
			kept = append(kept, d)
		}
	}
	settings, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"model":        m.Name,
		"model_path":   m.Path,
		"model_source": string(m.Source),
		"defines":      string(defs),
		"settings":     string(settings),
		"data":         ds.Source,
	}, nil
}
