package ir

import "fmt"

// Builder appends instructions to a function. It computes every result type
// with Infer; the first error sticks (later calls are no-ops returning a
// placeholder) and is reported by Err, so call sites stay straight-line.
type Builder struct {
	F   *Func
	err error
}

// NewBuilder returns a builder for a new function named name.
func NewBuilder(name string) *Builder { return &Builder{F: &Func{Name: name}} }

// Err is the first error met, or nil.
func (b *Builder) Err() error { return b.err }

// Param adds a parameter.
func (b *Builder) Param(name string, t Type, attrs Attrs) *Value {
	p := &Value{Name: name, Type: t, Attrs: attrs}
	b.F.Params = append(b.F.Params, p)
	return p
}

// Return sets the function's results.
func (b *Builder) Return(names []string, vals ...*Value) {
	b.F.Results = vals
	b.F.ResultNames = names
}

// Emit appends op(args) with attrs; declared is used by the ops whose type is
// not derived from their operands (see Infer).
func (b *Builder) Emit(op Op, declared Type, attrs Attrs, args ...*Value) *Value {
	if b.err != nil {
		return &Value{Op: op, Type: declared}
	}
	ts := make([]Type, len(args))
	for i, a := range args {
		ts[i] = a.Type
	}
	t, err := Infer(op, ts, attrs, declared)
	if err != nil {
		b.err = err
		return &Value{Op: op, Type: declared}
	}
	v := &Value{Op: op, Args: args, Type: t, Attrs: attrs, ID: len(b.F.Body)}
	b.F.Body = append(b.F.Body, v)
	return v
}

// Unary applies an elementwise unary op.
func (b *Builder) Unary(op Op, x *Value) *Value { return b.Emit(op, Type{}, nil, x) }

// Binary applies an elementwise binary op or compare.
func (b *Builder) Binary(op Op, x, y *Value) *Value { return b.Emit(op, Type{}, nil, x, y) }

// Select is select(pred, x, y).
func (b *Builder) Select(pred, x, y *Value) *Value { return b.Emit(OpSelect, Type{}, nil, pred, x, y) }

// Convert changes x's dtype.
func (b *Builder) Convert(x *Value, d DType) *Value {
	return b.Emit(OpConvert, Type{d, x.Type.Shape}, nil, x)
}

// Constant is a splat constant of type t.
func (b *Builder) Constant(t Type, val float64) *Value {
	var a Attrs
	if t.DType.IsFloat() {
		a = a.Set("value", val)
	} else {
		a = a.Set("value", int64(val))
	}
	return b.Emit(OpConstant, t, a)
}

// Iota numbers elements along axis.
func (b *Builder) Iota(t Type, axis int) *Value {
	return b.Emit(OpIota, t, Attrs{}.Set("axis", axis))
}

// Broadcast maps operand dim i to result dim dims[i] of shape.
func (b *Builder) Broadcast(x *Value, shape Shape, dims []int) *Value {
	return b.Emit(OpBroadcast, Type{x.Type.DType, shape}, Attrs{}.Set("dims", dims), x)
}

// Reshape gives x a new shape with the same element count.
func (b *Builder) Reshape(x *Value, shape Shape) *Value {
	return b.Emit(OpReshape, Type{x.Type.DType, shape}, nil, x)
}

// Transpose permutes x's axes.
func (b *Builder) Transpose(x *Value, perm []int) *Value {
	return b.Emit(OpTranspose, Type{}, Attrs{}.Set("perm", perm), x)
}

// Slice takes x[start:limit:stride] on every axis.
func (b *Builder) Slice(x *Value, start, limit, stride []int) *Value {
	a := Attrs{}.Set("start", start).Set("limit", limit).Set("stride", stride)
	return b.Emit(OpSlice, Type{}, a, x)
}

// Pad surrounds x with low and high zeros on every axis and puts interior
// zeros between neighbouring elements.
func (b *Builder) Pad(x *Value, low, high, interior []int) *Value {
	a := Attrs{}.Set("high", high).Set("interior", interior).Set("low", low)
	return b.Emit(OpPad, Type{}, a, x)
}

// Concat joins xs along axis.
func (b *Builder) Concat(axis int, xs ...*Value) *Value {
	return b.Emit(OpConcat, Type{}, Attrs{}.Set("axis", axis), xs...)
}

// Reduce applies reduce_sum or reduce_max over axes (sorted).
func (b *Builder) Reduce(op Op, x *Value, axes []int) *Value {
	if axes == nil {
		axes = []int{}
	}
	return b.Emit(op, Type{}, Attrs{}.Set("axes", axes), x)
}

// Dot is a dot_general with explicit batch and contracting dims.
func (b *Builder) Dot(x, y *Value, lb, rb, lc, rc []int) *Value {
	nz := func(s []int) []int {
		if s == nil {
			return []int{}
		}
		return s
	}
	a := Attrs{}.Set("batch", [][]int{nz(lb), nz(rb)}).Set("contract", [][]int{nz(lc), nz(rc)})
	return b.Emit(OpDot, Type{}, a, x, y)
}

// Gather indexes table along axis with idx.
func (b *Builder) Gather(table, idx *Value, axis int) *Value {
	return b.Emit(OpGather, Type{}, Attrs{}.Set("axis", axis), table, idx)
}

// ScatterAdd is the adjoint of Gather: it adds upd into a zero tensor of type t.
func (b *Builder) ScatterAdd(upd, idx *Value, axis int, t Type) *Value {
	return b.Emit(OpScatterAdd, t, Attrs{}.Set("axis", axis), upd, idx)
}

// Rng draws counter-based random numbers of type t from key.
func (b *Builder) Rng(key *Value, t Type, dist string, stream int) *Value {
	return b.Emit(OpRng, t, Attrs{}.Set("dist", dist).Set("stream", stream), key)
}

// Fail records err (if none is recorded yet).
func (b *Builder) Fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}
