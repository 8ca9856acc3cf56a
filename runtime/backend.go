package runtime

import (
	"xlc/ir"
	"xlc/runtime/interp"
)

// Backend turns a function into something that runs it. The interpreter is
// one; the compiled CPU and CUDA backends implement the same interface.
type Backend interface {
	// Name is how users select the backend (--backend=NAME).
	Name() string
	// Load prepares f to run; f must not change afterwards.
	Load(f *ir.Func) (Executable, error)
}

// Executable runs one loaded function.
type Executable interface {
	// Run takes the arguments in the function's parameter order and returns
	// its results in order.
	Run(args []*interp.Tensor) ([]*interp.Tensor, error)
}

// Interp is the reference interpreter as a Backend.
type Interp struct{}

// Name is "interp".
func (Interp) Name() string { return "interp" }

// Load checks f once; running it is interp.Run.
func (Interp) Load(f *ir.Func) (Executable, error) {
	if err := f.Verify(); err != nil {
		return nil, err
	}
	return interpExec{f}, nil
}

type interpExec struct{ f *ir.Func }

func (x interpExec) Run(args []*interp.Tensor) ([]*interp.Tensor, error) {
	return interp.Run(x.f, args)
}
