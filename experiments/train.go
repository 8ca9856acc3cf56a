package experiments

import (
	"fmt"
	"strings"

	"xlc/driver"
	"xlc/ir"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
)

// A Trainer is one model compiled and trained step by step, so that an
// experiment can read its losses, evaluate it and inspect its state.
type Trainer struct {
	Model   *driver.Model
	Seed    uint64
	data    *runtime.Dataset
	exe     runtime.Executable
	evalExe runtime.Executable
	stepper *runtime.Stepper
	state   map[string]*interp.Tensor
	step    int64
}

// Command is the xlc train command line equivalent to a Trainer's model.
func Command(file string, defines ...string) string {
	var b strings.Builder
	b.WriteString("xlc train " + modelPath(file))
	for _, d := range defines {
		b.WriteString(" -D " + d)
	}
	return b.String()
}

// Trainer compiles an embedded model file (see modelSource) with defines
// ("key=value", as -D) for r's backend, with fresh state from seed.
func (r *Run) Trainer(file string, seed uint64, defines ...string) (*Trainer, error) {
	be, popt := r.backend()
	return r.trainer(file, seed, be, popt, defines)
}

// trainer is Trainer on backend be with the pass options popt.
func (r *Run) trainer(file string, seed uint64, be runtime.Backend, popt passes.Options, defines []string) (*Trainer, error) {
	src, defs, err := modelInput(file, defines)
	if err != nil {
		return nil, err
	}
	m, err := driver.Compile(modelPath(file), src, defs, driver.Options{Passes: popt})
	if err != nil {
		return nil, err
	}
	t := &Trainer{Model: m, Seed: seed, data: r.Data}
	if t.exe, err = be.Load(m.Step); err != nil {
		return nil, err
	}
	if t.evalExe, err = be.Load(m.Eval); err != nil {
		t.Close()
		return nil, err
	}
	if t.state, err = runtime.FreshState(m.Step, seed); err != nil {
		t.Close()
		return nil, err
	}
	t.stepper = runtime.NewStepper(t.exe, m.Step, t.state, true)
	return t, nil
}

// runWith runs exe, loaded from f, on inputs and on the tensors of state
// that f takes as parameters.
func runWith(exe runtime.Executable, f *ir.Func, inputs, state map[string]*interp.Tensor) ([]*interp.Tensor, error) {
	named := map[string]*interp.Tensor{}
	for k, v := range inputs {
		named[k] = v
	}
	for k, v := range state {
		if f.Param(k) != nil {
			named[k] = v
		}
	}
	args, err := runtime.Args(f, named)
	if err != nil {
		return nil, err
	}
	return exe.Run(args)
}

// modelInput is the embedded model file's source and its "key=value"
// defines read as -D takes them.
func modelInput(file string, defines []string) ([]byte, []parser.Define, error) {
	src, err := modelSource(file)
	if err != nil {
		return nil, nil, err
	}
	var defs []parser.Define
	for _, d := range defines {
		k, v, ok := strings.Cut(d, "=")
		if !ok {
			return nil, nil, fmt.Errorf("define %q: want key=value", d)
		}
		defs = append(defs, parser.Define{Key: k, Value: v})
	}
	return src, defs, nil
}

// backend is r's runtime backend and the pass options it compiles with:
// the cpu backend's kernels are fused, the interpreter's are not.
func (r *Run) backend() (runtime.Backend, passes.Options) {
	if r.Backend == "cpu" {
		return cpu.Backend{}, cpu.Backend{}.Passes()
	}
	return runtime.Interp{}, passes.Options{}
}

// modelPath is where an embedded model file is in the repository.
func modelPath(file string) string {
	if strings.Contains(file, "/") {
		return "experiments/" + file
	}
	return "models/" + file
}

// Step runs the next train step and returns its scalar outputs.
func (t *Trainer) Step() (map[string]float64, error) {
	m, err := t.stepper.Step(t.data, t.Seed, t.step)
	t.step++
	return m, err
}

// Steps is the number of steps run so far.
func (t *Trainer) Steps() int64 { return t.step }

// Eval returns the mean of each scalar output of the forward pass over
// batches fixed validation batches, named val_<output>.
func (t *Trainer) Eval(batches int) (map[string]float64, error) {
	if err := t.stepper.Sync(); err != nil {
		return nil, err
	}
	return runtime.Evaluate(t.evalExe, t.Model.Eval, t.state, t.data, t.Seed, batches)
}

// State returns the current parameters and optimizer state by name. The
// tensors are the trainer's: read them, do not change them.
func (t *Trainer) State() (map[string]*interp.Tensor, error) {
	if err := t.stepper.Sync(); err != nil {
		return nil, err
	}
	return t.state, nil
}

// Close releases the compiled code.
func (t *Trainer) Close() {
	for _, x := range []runtime.Executable{t.exe, t.evalExe} {
		if c, ok := x.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}
