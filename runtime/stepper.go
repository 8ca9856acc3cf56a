package runtime

import (
	"fmt"

	"xlc/ir"
	"xlc/runtime/interp"
)

// Resident is implemented by executables that can keep parameters' values
// in their own buffers from one run to the next (runtime/cpu): a train
// step's weights and optimizer state then stay where the kernels update
// them in place instead of being copied in and out of every step.
type Resident interface {
	// RunKept is Run, except that every parameter i with keep[i] takes the
	// value that the result of the same name had at the end of the previous
	// run (args[i] is not read), and those results come back nil. It fails
	// when there was no previous run or a kept parameter has no such result.
	RunKept(args []*interp.Tensor, keep []bool) ([]*interp.Tensor, error)
	// Result reads result i as the last run left it.
	Result(i int) (*interp.Tensor, error)
}

// A Stepper runs a train step again and again, each step's donated results
// (the new weights and optimizer state) becoming the next step's arguments.
// On a Resident executable the state stays in the executable between steps:
// it is copied in by the first step and read back only by Sync.
type Stepper struct {
	exe   Executable
	step  *ir.Func
	state map[string]*interp.Tensor
	keep  []bool // by parameter: a state tensor fed back from its result
	held  bool   // the executable holds newer state than the map
}

// NewStepper runs step on exe from state, which it updates (see Sync). With
// resident false the state is copied in and out of every step even when the
// executable could keep it.
func NewStepper(exe Executable, step *ir.Func, state map[string]*interp.Tensor, resident bool) *Stepper {
	s := &Stepper{exe: exe, step: step, state: state}
	if _, ok := exe.(Resident); ok && resident {
		s.keep = make([]bool, len(step.Params))
		for i, p := range step.Params {
			_, isState := state[p.Name]
			s.keep[i] = isState && step.Result(p.Name) != nil
		}
	}
	return s
}

// Step runs train step number n on a batch bound from d and returns the
// step's scalar outputs by name.
func (s *Stepper) Step(d *Dataset, seed uint64, n int64) (map[string]float64, error) {
	named, err := BindInputs(s.step, d, "train", seed, n)
	if err != nil {
		return nil, err
	}
	for k, v := range s.state {
		named[k] = v // a kept tensor is stale while held; RunKept does not read it
	}
	args, err := Args(s.step, named)
	if err != nil {
		return nil, err
	}
	var out []*interp.Tensor
	if s.held {
		out, err = s.exe.(Resident).RunKept(args, s.keep)
	} else {
		out, err = s.exe.Run(args)
	}
	if err != nil {
		return nil, fmt.Errorf("step %d: %v", n, err)
	}
	s.held = s.keep != nil
	m := map[string]float64{}
	for i, name := range s.step.ResultNames {
		if _, isState := s.state[name]; isState {
			if out[i] != nil {
				s.state[name] = out[i]
			}
		} else if out[i].Type.Rank() == 0 {
			m[name] = out[i].Scalar()
		}
	}
	return m, nil
}

// Sync brings the state map up to date with the executable (before a
// validation pass or a checkpoint reads it).
func (s *Stepper) Sync() error {
	if !s.held {
		return nil
	}
	r := s.exe.(Resident)
	for i, name := range s.step.ResultNames {
		if _, isState := s.state[name]; !isState {
			continue
		}
		t, err := r.Result(i)
		if err != nil {
			return err
		}
		s.state[name] = t
	}
	return nil
}
