package runtime

import (
	"os"
	"strconv"

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

// ResultOf is, by parameter of f, the index of the result of the same name
// and type (-1 if none): the new value a resident executable feeds back.
func ResultOf(f *ir.Func) []int {
	out := make([]int, len(f.Params))
	for i, p := range f.Params {
		out[i] = -1
		for j, n := range f.ResultNames {
			if n == p.Name && f.Results[j].Type.Equal(p.Type) {
				out[i] = j
			}
		}
	}
	return out
}

// DebugLevel is XLC_DEBUG as a number (0 when unset or not a number): 1
// checks each kernel as it runs, 2 also profiles them (the compiled
// backends).
func DebugLevel() int {
	n, _ := strconv.Atoi(os.Getenv("XLC_DEBUG"))
	return n
}
