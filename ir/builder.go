package ir

import (
	"fmt"
	"math"
)

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

// Param adds a parameter. A name the text form cannot hold (see
// CheckParamName) or a type that fails CheckType is an error.
func (b *Builder) Param(name string, t Type, attrs Attrs) *Value {
	p := &Value{Name: name, Type: t, Attrs: attrs}
	if b.err != nil {
		return p
	}
	if err := CheckParamName(name); err != nil {
		b.err = err
		return p
	}
	if err := CheckType(t); err != nil {
		b.err = fmt.Errorf("%%%s: %v", name, err)
		return p
	}
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
	if err := CheckType(t); err != nil {
		b.err = fmt.Errorf("%v: %v", op, err)
		return &Value{Op: op, Type: t}
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

// Constant is a splat constant of type t; val must pass CheckConstant,
// else the builder records an error.
func (b *Builder) Constant(t Type, val float64) *Value {
	if err := CheckConstant(t.DType, val); err != nil {
		b.Fail("constant: %v", err)
		return &Value{Op: OpConstant, Type: t}
	}
	if t.DType.IsFloat() {
		return b.Emit(OpConstant, t, Attrs{}.Set("value", val))
	}
	return b.Emit(OpConstant, t, Attrs{}.Set("value", int64(val)))
}

// CheckConstant reports whether val can be a constant of dtype d. A float
// dtype takes any value, infinities and NaN included (a -inf mask is
// legitimate); an integer or bool dtype wants an integer in its range
// (IntRange).
func CheckConstant(d DType, val float64) error {
	if d.IsFloat() {
		return nil
	}
	lo, hi := IntRange(d)
	// hi+1 is a power of two, exact in float64; hi itself may not be.
	if lo > hi || val != math.Trunc(val) || val < float64(lo) || val >= float64(hi)+1 {
		return fmt.Errorf("%v does not fit %v", FormatFloat(val), d)
	}
	return nil
}

// ConstantInt is a splat constant of an integer or bool type t; n must lie
// in the dtype's range (see IntRange), else the builder records an error.
func (b *Builder) ConstantInt(t Type, n int64) *Value {
	lo, hi := IntRange(t.DType)
	if lo > hi || n < lo || n > hi {
		b.Fail("constant: %d does not fit %v", n, t.DType)
		return &Value{Op: OpConstant, Type: t}
	}
	return b.Emit(OpConstant, t, Attrs{}.Set("value", n))
}

// IntRange is the range of values of an integer or bool dtype; for any other
// dtype it is empty (lo > hi).
func IntRange(d DType) (lo, hi int64) {
	switch d {
	case I32:
		return math.MinInt32, math.MaxInt32
	case I64:
		return math.MinInt64, math.MaxInt64
	case Bool:
		return 0, 1
	}
	return 1, 0
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
