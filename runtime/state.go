package runtime

import (
	"xlc/ir"
	"xlc/runtime/interp"
)

// InitState creates every parameter of f with role=state (optimizer
// moments, the step counter, the loss scale) from its init and scale
// attributes, as InitParams does for weights: zeros, ones or constant.
func InitState(f *ir.Func, seed uint64) (map[string]*interp.Tensor, error) {
	return initRole(f, seed, "state")
}
