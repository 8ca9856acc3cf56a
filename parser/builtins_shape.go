package parser

import (
	"fmt"
	"math"
	"xlc/ir"

	"github.com/alecthomas/participle/v2/lexer"
)

// The builtins that make tensors and change their shape, dtype or layout.

// intList reads a list of integers in [min, 2^31), such as a shape with
// reshape's -1 (min -1) or a permutation; what is the noun for the message.
func (e *elab) intList(pos lexer.Position, name, what string, v any, min int64) ([]int, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, e.errf(pos, "%s: want a %s list such as [2, 3], have %s", name, what, describe(v))
	}
	s := []int{}
	for _, it := range l {
		n, ok := it.(int64)
		if !ok || n < min || n > math.MaxInt32 {
			bound := "a non-negative integer"
			if min < 0 {
				bound = fmt.Sprintf("an integer >= %d", min)
			}
			return nil, e.errf(pos, "%s: a %s entry must be %s, have %s", name, what, bound, describe(it))
		}
		s = append(s, int(n))
	}
	return s, nil
}

// shapeArg reads a shape: non-negative dims with at most ir.MaxElements
// elements in all.
func (e *elab) shapeArg(pos lexer.Position, name string, v any) (ir.Shape, error) {
	l, err := e.intList(pos, name, "shape", v, 0)
	if err != nil {
		return nil, err
	}
	if err := ir.CheckType(ir.Type{DType: ir.F32, Shape: l}); err != nil {
		return nil, e.errf(pos, "%s: shape %v has too many elements (at most %d)", name, ir.Shape(l), ir.MaxElements)
	}
	return ir.Shape(l), nil
}

func biReshape(e *elab, c *call, a []any) (any, error) {
	t, err := e.tensorArg(c, "reshape", a[0])
	if err != nil {
		return nil, err
	}
	l, err := e.intList(c.pos, "reshape", "shape", a[1], -1)
	if err != nil {
		return nil, err
	}
	s := ir.Shape(l)
	known, hole := 1, -1
	for i, d := range s {
		if d == -1 {
			if hole >= 0 {
				return nil, e.errf(c.pos, "reshape: at most one -1")
			}
			hole = i
		} else {
			known *= d
		}
	}
	n := t.Type.Shape.NumElements()
	if hole >= 0 && known > 0 && n%known == 0 {
		s[hole] = n / known
	}
	// CheckType first: a product of large dims may wrap around to n.
	if ir.CheckType(ir.Type{DType: t.Type.DType, Shape: s}) != nil || s.NumElements() != n {
		return nil, e.errf(c.pos, "cannot reshape %v to %v", t.Type, s)
	}
	if s.Equal(t.Type.Shape) {
		return t, nil
	}
	return e.emit(e.b.Reshape(t, s))
}

func biTranspose(e *elab, c *call, a []any) (any, error) {
	t, err := e.tensorArg(c, "transpose", a[0])
	if err != nil {
		return nil, err
	}
	r := t.Type.Rank()
	var perm []int
	if a[1] == nil {
		if r < 2 {
			return nil, e.errf(c.pos, "transpose of %v needs a perm", t.Type)
		}
		for i := 0; i < r; i++ {
			perm = append(perm, i)
		}
		perm[r-2], perm[r-1] = r-1, r-2
	} else {
		if perm, err = e.intList(c.pos, "transpose", "perm", a[1], 0); err != nil {
			return nil, err
		}
	}
	seen := map[int]bool{}
	for _, p := range perm {
		if p < 0 || p >= r || seen[p] {
			return nil, e.errf(c.pos, "transpose: %v is not a permutation of %d axes", ir.Shape(perm), r)
		}
		seen[p] = true
	}
	if len(perm) != r {
		return nil, e.errf(c.pos, "transpose: %v is not a permutation of %d axes", ir.Shape(perm), r)
	}
	return e.emit(e.b.Transpose(t, perm))
}

func biDim(e *elab, c *call, a []any) (any, error) {
	t, err := e.tensorArg(c, "dim", a[0])
	if err != nil {
		return nil, err
	}
	ax, err := e.oneAxis(c.pos, "dim", a[1], t.Type.Rank())
	if err != nil {
		return nil, err
	}
	return int64(t.Type.Shape[ax]), nil
}

func biGather(e *elab, c *call, a []any) (any, error) {
	t, err := e.tensorArg(c, "gather", a[0])
	if err != nil {
		return nil, err
	}
	idx, err := e.tensorArg(c, "gather", a[1])
	if err != nil {
		return nil, err
	}
	if !idx.Type.DType.IsInt() {
		return nil, e.errf(c.pos, "gather wants integer indices, have %v", idx.Type)
	}
	if t.Type.Rank() == 0 {
		return nil, e.errf(c.pos, "gather wants a table of rank >= 1, have %v", t.Type)
	}
	axis := 0
	if a[2] != nil {
		if axis, err = e.oneAxis(c.pos, "gather", a[2], t.Type.Rank()); err != nil {
			return nil, err
		}
	}
	return e.emit(e.b.Gather(t, idx, axis))
}

func (e *elab) dtypeArg(pos lexer.Position, v any, def ir.DType) (ir.DType, error) {
	if v == nil {
		return def, nil
	}
	s, _ := v.(string)
	d, ok := ir.ParseDType(s)
	if !ok {
		return 0, e.errf(pos, "unknown dtype %s", describe(v))
	}
	return d, nil
}

func biIota(e *elab, c *call, a []any) (any, error) {
	s, err := e.shapeArg(c.pos, "iota", a[0])
	if err != nil {
		return nil, err
	}
	d, err := e.dtypeArg(c.pos, a[2], ir.I32)
	if err != nil {
		return nil, err
	}
	if len(s) == 0 || d == ir.Bool {
		return nil, e.errf(c.pos, "iota wants a non-empty shape and a numeric dtype")
	}
	axis := 0
	if a[1] != nil {
		if axis, err = e.oneAxis(c.pos, "iota", a[1], len(s)); err != nil {
			return nil, err
		}
	}
	return e.emit(e.b.Iota(ir.Type{DType: d, Shape: s}, axis))
}

// filled makes the builtin name: a tensor of the given shape and dtype with
// every element v.
func filled(name string, v float64) builtinFn {
	return func(e *elab, c *call, a []any) (any, error) {
		s, err := e.shapeArg(c.pos, name, a[0])
		if err != nil {
			return nil, err
		}
		d, err := e.dtypeArg(c.pos, a[1], ir.F32)
		if err != nil {
			return nil, err
		}
		if err := ir.CheckConstant(d, v); err != nil {
			return nil, e.errf(c.pos, "%s: %v", name, err)
		}
		return e.emit(e.b.Constant(ir.Type{DType: d, Shape: s}, v))
	}
}

// rngKeyParam returns the function's random key parameter, adding it on
// first use. Its name, rngKeyName, is reserved (see claim).
func (e *elab) rngKeyParam() *ir.Value {
	if e.rngKey == nil {
		e.rngKey = e.b.Param(rngKeyName, ir.T(ir.I64), ir.Attrs{}.Set("role", "rng"))
	}
	return e.rngKey
}

func random(dist string) builtinFn {
	return func(e *elab, c *call, a []any) (any, error) {
		s, err := e.shapeArg(c.pos, dist, a[0])
		if err != nil {
			return nil, err
		}
		d, err := e.dtypeArg(c.pos, a[1], ir.F32)
		if err != nil {
			return nil, err
		}
		if !d.IsFloat() {
			return nil, e.errf(c.pos, "%s draws floats, not %v", dist, d)
		}
		e.rngStream++
		return e.emit(e.b.Rng(e.rngKeyParam(), ir.Type{DType: d, Shape: s}, dist, e.rngStream))
	}
}

func biConcat(e *elab, c *call, a []any) (any, error) {
	l, ok := a[0].([]any)
	if !ok || len(l) == 0 {
		return nil, e.errf(c.pos, "concat wants a non-empty list of tensors, have %s", describe(a[0]))
	}
	ts := make([]*ir.Value, len(l))
	for i, v := range l {
		t, ok := v.(*ir.Value)
		if !ok {
			return nil, e.errf(c.pos, "concat wants tensors, have %s", describe(v))
		}
		ts[i] = t
	}
	axis := 0
	if a[1] != nil {
		var err error
		if axis, err = e.oneAxis(c.pos, "concat", a[1], ts[0].Type.Rank()); err != nil {
			return nil, err
		}
	}
	for _, t := range ts[1:] {
		ok := t.Type.DType == ts[0].Type.DType && t.Type.Rank() == ts[0].Type.Rank()
		for i := 0; ok && i < t.Type.Rank(); i++ {
			ok = i == axis || t.Type.Shape[i] == ts[0].Type.Shape[i]
		}
		if !ok {
			return nil, e.errf(c.pos, "cannot concat %v and %v on axis %d", ts[0].Type, t.Type, axis)
		}
	}
	return e.emit(e.b.Concat(axis, ts...))
}

func (e *elab) convert(c *call, x any, d ir.DType) (any, error) {
	t, ok := x.(*ir.Value)
	if !ok {
		return nil, e.errf(c.pos, "%v wants a tensor, have %s (use float() or int() for numbers)", d, describe(x))
	}
	if t.Type.DType == d {
		return t, nil
	}
	if d == ir.Bool {
		return e.emit(e.b.Binary(ir.OpNe, t, e.broadcastTo(e.b.Constant(ir.T(t.Type.DType), 0), t.Type.Shape)))
	}
	return e.emit(e.b.Convert(t, d))
}

func init() {
	register("tap", "name x", 2, func(e *elab, c *call, a []any) (any, error) {
		name, ok := a[0].(string)
		if !ok || name == "" {
			return nil, e.errf(c.pos, "tap wants a name string first, have %s", describe(a[0]))
		}
		t, err := e.tensorArg(c, "tap", a[1])
		if err != nil {
			return nil, err
		}
		if e.taps[name] != nil {
			return nil, e.errf(c.pos, "tap %q given twice", name)
		}
		e.taps[name] = t
		return t, nil
	})
	register("is_tensor", "x", 1, func(e *elab, c *call, a []any) (any, error) {
		_, ok := a[0].(*ir.Value)
		return ok, nil
	})
}
