package interp

import (
	"fmt"

	"xlc/ir"
)

// Run evaluates f on args, given in f.Params order, and returns f.Results in
// order. It verifies f and checks every argument's type first, and returns an
// error (it does not panic) when either is wrong. Results never share storage
// with args.
func Run(f *ir.Func, args []*Tensor) (res []*Tensor, err error) {
	if f == nil {
		return nil, fmt.Errorf("interp: nil function")
	}
	if err := f.Verify(); err != nil {
		return nil, fmt.Errorf("interp: @%s: %v", f.Name, err)
	}
	if len(args) != len(f.Params) {
		return nil, fmt.Errorf("interp: @%s takes %d arguments, have %d", f.Name, len(f.Params), len(args))
	}
	env := make(map[*ir.Value]*Tensor, len(f.Params)+len(f.Body))
	for i, p := range f.Params {
		if err := args[i].Check(p.Type); err != nil {
			return nil, fmt.Errorf("interp: @%s: argument %%%s: %v", f.Name, p.Name, err)
		}
		env[p] = args[i]
	}
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("interp: @%s: internal error: %v", f.Name, r)
		}
	}()
	return exec(f, env)
}

// exec evaluates the verified function f whose parameters are bound in env.
// A fusion instruction evaluates its callee, op by op, on its operands, so
// a fused function gives bit for bit the results of the unfused one.
func exec(f *ir.Func, env map[*ir.Value]*Tensor) ([]*Tensor, error) {
	last := lastUses(f)
	in := make([]*Tensor, 0, 4)
	var outs []*Tensor // the results of the last fusion
	for i, v := range f.Body {
		in = in[:0]
		for _, a := range v.Args {
			in = append(in, env[a])
		}
		var out *Tensor
		var err error
		switch v.Op {
		case ir.OpFusion:
			outs, err = call(v, in)
			if err == nil {
				out = outs[0]
			}
		case ir.OpOutput:
			// Verified: it follows its fusion directly.
			out = outs[v.Attrs.Int("index")]
		default:
			out, err = Eval(v.Op, v.Attrs, v.Type, in)
		}
		if err != nil {
			return nil, fmt.Errorf("interp: @%s: %v = %v: %v", f.Name, v.Ref(), v.Op, err)
		}
		env[v] = out
		for _, a := range v.Args {
			if last[a] == i {
				delete(env, a) // free intermediates as soon as they are dead
			}
		}
	}
	res := make([]*Tensor, len(f.Results))
	for i, r := range f.Results {
		res[i] = env[r]
		if r.IsParam() {
			res[i] = res[i].Clone()
		}
	}
	return res, nil
}

// call evaluates the fusion instruction v (verified with its caller) on the
// operand tensors in and returns its callee's results: the fusion's, then
// those of its output instructions.
func call(v *ir.Value, in []*Tensor) ([]*Tensor, error) {
	c := v.Callee
	env := make(map[*ir.Value]*Tensor, len(c.Params)+len(c.Body))
	for i, p := range c.Params {
		env[p] = in[i]
	}
	return exec(c, env)
}

// lastUses maps every value to the index of the last instruction that reads
// it; results are live to the end (index len(f.Body)).
func lastUses(f *ir.Func) map[*ir.Value]int {
	last := make(map[*ir.Value]int, len(f.Body))
	for i, v := range f.Body {
		for _, a := range v.Args {
			last[a] = i
		}
	}
	for _, r := range f.Results {
		last[r] = len(f.Body)
	}
	return last
}

// Eval applies one op with attributes attrs and declared result type t to
// args. It checks the op's type rule (ir.Infer) and the arguments' storage
// first, so it is safe to call on its own.
func Eval(op ir.Op, attrs ir.Attrs, t ir.Type, args []*Tensor) (*Tensor, error) {
	types := make([]ir.Type, len(args))
	for i, a := range args {
		if a == nil {
			return nil, fmt.Errorf("operand %d is missing", i)
		}
		types[i] = a.Type
		if err := a.Check(a.Type); err != nil {
			return nil, fmt.Errorf("operand %d: %v", i, err)
		}
	}
	want, err := ir.Infer(op, types, attrs, t)
	if err != nil {
		return nil, err
	}
	if !want.Equal(t) {
		return nil, fmt.Errorf("want result type %v, have %v", want, t)
	}
	switch op.Class() {
	case ir.ClassUnary:
		return unary(op, args[0]), nil
	case ir.ClassBinary:
		return binary(op, args[0], args[1]), nil
	case ir.ClassCompare:
		return compare(op, args[0], args[1]), nil
	}
	switch op {
	case ir.OpSelect:
		return selectOp(args[0], args[1], args[2]), nil
	case ir.OpConvert:
		return convert(args[0], t), nil
	case ir.OpBroadcast:
		return broadcast(args[0], attrs.Ints("dims"), t), nil
	case ir.OpReshape:
		return reshape(args[0], t), nil
	case ir.OpTranspose:
		return transpose(args[0], attrs.Ints("perm"), t), nil
	case ir.OpSlice:
		return slice(args[0], attrs.Ints("start"), attrs.Ints("stride"), t), nil
	case ir.OpPad:
		return pad(args[0], attrs.Ints("low"), attrs.Ints("interior"), t), nil
	case ir.OpConcat:
		return concat(args, attrs.Int("axis"), t), nil
	case ir.OpIota:
		return iota(attrs.Int("axis"), t), nil
	case ir.OpConstant:
		switch v, _ := attrs.Get("value"); v.(type) {
		case int64, float64:
			return constant(attrs, t), nil
		}
		return nil, fmt.Errorf("constant: want a numeric value")
	case ir.OpReduceSum, ir.OpReduceMax:
		return reduce(op, args[0], attrs.Ints("axes"), t), nil
	case ir.OpDot:
		return dot(args[0], args[1], attrs, t), nil
	case ir.OpGather:
		return gather(args[0], args[1], attrs.Int("axis"), t), nil
	case ir.OpScatterAdd:
		return scatterAdd(args[0], args[1], attrs.Int("axis"), t), nil
	case ir.OpRng:
		return rng(args[0], attrs, t)
	case ir.OpFusion:
		return nil, fmt.Errorf("fusion: needs its callee; Run evaluates it")
	case ir.OpOutput:
		return nil, fmt.Errorf("output: needs its fusion; Run evaluates it")
	}
	return nil, fmt.Errorf("%v: not implemented", op)
}
