package runtime

import (
	"fmt"

	"xlc/ir"
	"xlc/runtime/interp"
)

// InitState creates every parameter of f with role=state (optimizer
// moments, the step counter, the loss scale) from its init and scale
// attributes, as InitParams does for weights: zeros, ones or constant.
func InitState(f *ir.Func, seed uint64) (map[string]*interp.Tensor, error) {
	out := map[string]*interp.Tensor{}
	for _, p := range f.Params {
		if p.Role() != "state" {
			continue
		}
		t, err := initParam(p, seed)
		if err != nil {
			return nil, fmt.Errorf("state %%%s: %v", p.Name, err)
		}
		out[p.Name] = t
	}
	return out, nil
}
