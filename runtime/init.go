// Package runtime holds what running a compiled xlc function needs besides
// the function itself: parameter initialisation and seeded random inputs.
package runtime

import (
	"fmt"
	"hash/fnv"
	"math"

	"xlc/ir"
	"xlc/runtime/interp"
)

// inputStreamSalt is xored into the name hash of inputs, so an input and a
// parameter of the same name draw different streams.
const inputStreamSalt = 0x9e3779b97f4a7c15

// nameStream is the random stream of the parameter named name: its FNV-1a
// 64-bit hash.
func nameStream(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// InitParams creates every parameter of f whose attribute role=param from its
// attributes init=normal|xavier_normal|xavier_uniform|zeros|ones|constant and
// scale=<float>: the standard deviation for normal (default 1), the gain for
// xavier_* (default 1), the value for constant (required). Xavier uses
// fan_out = the last dim and fan_in = the product of the other dims (1-D:
// fan_in = fan_out = the dim; 0-D: both 1); xavier_normal has std
// gain*sqrt(2/(fan_in+fan_out)) and xavier_uniform bound
// gain*sqrt(6/(fan_in+fan_out)). Values are deterministic in seed, and each
// parameter draws its own stream, the FNV-1a hash of its name, so adding a
// parameter does not change the others. A missing or unknown init, or a
// random init of an integer parameter, is an error naming the parameter.
func InitParams(f *ir.Func, seed uint64) (map[string]*interp.Tensor, error) {
	return initRole(f, seed, "param")
}

// initRole initialises every parameter of f with the given role.
func initRole(f *ir.Func, seed uint64, role string) (map[string]*interp.Tensor, error) {
	out := map[string]*interp.Tensor{}
	for _, p := range f.Params {
		if p.Role() != role {
			continue
		}
		t, err := initParam(p, seed)
		if err != nil {
			return nil, fmt.Errorf("%s %%%s: %v", role, p.Name, err)
		}
		out[p.Name] = t
	}
	return out, nil
}

func initParam(p *ir.Value, seed uint64) (*interp.Tensor, error) {
	t := p.Type
	n := t.Shape.NumElements()
	scale, hasScale := 1.0, false
	if v, ok := p.Attrs.Get("scale"); ok {
		switch v := v.(type) {
		case float64:
			scale, hasScale = v, true
		case int64:
			scale, hasScale = float64(v), true
		default:
			return nil, fmt.Errorf("scale=%v is not a number", ir.FormatAttrValue(v))
		}
	}
	init := p.Attrs.String("init")
	splat := func(v float64) *interp.Tensor {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = v
		}
		return interp.FromFloats(t, vals)
	}
	switch init {
	case "zeros":
		return splat(0), nil
	case "ones":
		return splat(1), nil
	case "constant":
		if !hasScale {
			return nil, fmt.Errorf("init=constant needs scale=<value>")
		}
		return splat(scale), nil
	case "normal", "xavier_normal", "xavier_uniform":
	case "":
		return nil, fmt.Errorf("no init attribute")
	default:
		return nil, fmt.Errorf("unknown init %q", init)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("init=%s needs a float type, have %v", init, t)
	}
	stream := nameStream(p.Name)
	var vals []float64
	switch init {
	case "normal":
		vals = interp.Normal(seed, stream, n)
		for i := range vals {
			vals[i] *= scale
		}
	case "xavier_normal":
		fanIn, fanOut := fans(t.Shape)
		std := scale * math.Sqrt(2/float64(fanIn+fanOut))
		vals = interp.Normal(seed, stream, n)
		for i := range vals {
			vals[i] *= std
		}
	case "xavier_uniform":
		fanIn, fanOut := fans(t.Shape)
		bound := scale * math.Sqrt(6/float64(fanIn+fanOut))
		vals = interp.Uniform(seed, stream, n)
		for i := range vals {
			vals[i] = (2*vals[i] - 1) * bound
		}
	}
	return interp.FromFloats(t, vals), nil
}

// fans returns Xavier's fan_in and fan_out for shape s: fan_out is the last
// dim and fan_in the product of the others; a 1-D shape has both equal to its
// dim and a scalar both 1. Zero fans are raised to 1 to keep the bound finite.
func fans(s ir.Shape) (fanIn, fanOut int) {
	switch len(s) {
	case 0:
		return 1, 1
	case 1:
		return max(s[0], 1), max(s[0], 1)
	}
	return max(s[:len(s)-1].NumElements(), 1), max(s[len(s)-1], 1)
}

// RandomInputs creates every parameter whose role is "input" (attribute role
// absent or "input"): integer inputs uniform in [lo, hi) from the attribute
// range=[lo,hi] (default [0,2)), bool inputs a fair coin, float inputs
// standard normal. A parameter with role=rng (an i64[] key) is set to seed.
// Values are deterministic in seed; each input draws the stream of its name
// hash xor a constant. Other roles are left out.
func RandomInputs(f *ir.Func, seed uint64) (map[string]*interp.Tensor, error) {
	out := map[string]*interp.Tensor{}
	for _, p := range f.Params {
		t := p.Type
		switch p.Role() {
		case "rng":
			if !t.Equal(ir.T(ir.I64)) {
				return nil, fmt.Errorf("parameter %%%s: role=rng wants an i64[] key, have %v", p.Name, t)
			}
			out[p.Name] = interp.FromInts(t, []int64{int64(seed)})
			continue
		case "input":
		default:
			continue
		}
		n := t.Shape.NumElements()
		stream := nameStream(p.Name) ^ inputStreamSalt
		switch {
		case t.DType.IsFloat():
			out[p.Name] = interp.FromFloats(t, interp.Normal(seed, stream, n))
		case t.DType == ir.Bool:
			u := interp.Uniform(seed, stream, n)
			v := make([]int64, n)
			for i := range v {
				if u[i] < 0.5 {
					v[i] = 1
				}
			}
			out[p.Name] = interp.FromInts(t, v)
		default:
			lo, hi := int64(0), int64(2)
			if _, ok := p.Attrs.Get("range"); ok {
				r := p.Attrs.Ints("range")
				if len(r) != 2 || r[0] >= r[1] {
					return nil, fmt.Errorf("parameter %%%s: want range=[lo,hi] with lo < hi, have %s", p.Name, p.Attrs.Format())
				}
				lo, hi = int64(r[0]), int64(r[1])
			}
			u := interp.Uniform(seed, stream, n)
			v := make([]int64, n)
			for i := range v {
				v[i] = min(lo+int64(u[i]*float64(hi-lo)), hi-1)
			}
			out[p.Name] = interp.FromInts(t, v)
		}
	}
	return out, nil
}

// Args orders the named tensors into f.Params order; a missing tensor, or one
// of the wrong type, is an error naming the parameter.
func Args(f *ir.Func, named map[string]*interp.Tensor) ([]*interp.Tensor, error) {
	args := make([]*interp.Tensor, len(f.Params))
	for i, p := range f.Params {
		t, ok := named[p.Name]
		if !ok {
			return nil, fmt.Errorf("missing argument %%%s (role %s)", p.Name, p.Role())
		}
		if err := t.Check(p.Type); err != nil {
			return nil, fmt.Errorf("argument %%%s: %v", p.Name, err)
		}
		args[i] = t
	}
	return args, nil
}

// SampleArgs returns arguments for every parameter of f, in order: its
// parameters and state as a fresh run starts them from paramSeed
// (FreshState) and its inputs drawn from inputSeed (RandomInputs).
func SampleArgs(f *ir.Func, paramSeed, inputSeed uint64) ([]*interp.Tensor, error) {
	named, err := FreshState(f, paramSeed)
	if err != nil {
		return nil, err
	}
	in, err := RandomInputs(f, inputSeed)
	if err != nil {
		return nil, err
	}
	for k, v := range in {
		named[k] = v
	}
	return Args(f, named)
}
