package parser

import (
	"math"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"xlc/ir"
)

// A builtin's arguments are bound by name: params lists them, the first
// required ones must be given, the rest default to nil.
type builtinFn func(e *elab, c *call, a []any) (any, error)

var builtins = map[string]*builtin{}

func register(name string, params string, required int, fn builtinFn) {
	names := strings.Fields(params)
	builtins[name] = &builtin{name: name, fn: func(e *elab, c *call) (any, error) {
		a, err := bind(e, c, name, names, required)
		if err != nil {
			return nil, err
		}
		return fn(e, c, a)
	}}
}

func bind(e *elab, c *call, name string, names []string, required int) ([]any, error) {
	if len(c.args) > len(names) {
		return nil, e.errf(c.pos, "%s takes %s, have %d", name, plural(len(names), "argument"), len(c.args))
	}
	out := make([]any, len(names))
	set := make([]bool, len(names))
	for i, v := range c.args {
		out[i], set[i] = v, true
	}
	for _, k := range c.kw {
		i := indexOf(names, k.name)
		if i < 0 {
			return nil, e.errf(k.pos, "%s", noParameter(name, k.name, names))
		}
		if set[i] {
			return nil, e.errf(k.pos, "%s: argument %s given twice", name, k.name)
		}
		out[i], set[i] = k.val, true
	}
	for i := 0; i < required; i++ {
		if !set[i] {
			return nil, e.errf(c.pos, "%s: missing argument %s", name, names[i])
		}
	}
	return out, nil
}

func indexOf(s []string, x string) int {
	for i, y := range s {
		if y == x {
			return i
		}
	}
	return -1
}

func init() {
	unary := map[string]ir.Op{
		"exp": ir.OpExp, "log": ir.OpLog, "sqrt": ir.OpSqrt, "rsqrt": ir.OpRsqrt, "tanh": ir.OpTanh,
		"erf": ir.OpErf, "abs": ir.OpAbs, "sin": ir.OpSin, "cos": ir.OpCos, "sign": ir.OpSign,
		"recip": ir.OpRecip, "stop_gradient": ir.OpStopGradient,
	}
	for name, op := range unary {
		register(name, "x", 1, func(e *elab, c *call, a []any) (any, error) { return e.unaryMath(c.pos, name, op, a[0]) })
	}
	register("maximum", "a b", 2, func(e *elab, c *call, a []any) (any, error) { return e.minmax(c.pos, ir.OpMax, a[0], a[1]) })
	register("minimum", "a b", 2, func(e *elab, c *call, a []any) (any, error) { return e.minmax(c.pos, ir.OpMin, a[0], a[1]) })
	register("where", "cond a b", 3, biWhere)
	register("sum", "x axis keep", 1, reduction("sum"))
	register("mean", "x axis keep", 1, reduction("mean"))
	register("max", "x axis keep", 1, reduction("max"))
	register("min", "x axis keep", 1, reduction("min"))
	register("reshape", "x shape", 2, biReshape)
	register("transpose", "x perm", 1, biTranspose)
	register("dim", "x axis", 2, biDim)
	register("shape", "x", 1, func(e *elab, c *call, a []any) (any, error) {
		t, err := e.tensorArg(c, "shape", a[0])
		if err != nil {
			return nil, err
		}
		out := make([]any, t.Type.Rank())
		for i, d := range t.Type.Shape {
			out[i] = int64(d)
		}
		return out, nil
	})
	register("len", "x", 1, func(e *elab, c *call, a []any) (any, error) {
		if l, ok := a[0].([]any); ok {
			return int64(len(l)), nil
		}
		return nil, e.errf(c.pos, "len wants a list, have %s", describe(a[0]))
	})
	register("gather", "table indices axis", 2, biGather)
	register("iota", "shape axis dtype", 1, biIota)
	register("zeros", "shape dtype", 1, filled("zeros", 0))
	register("ones", "shape dtype", 1, filled("ones", 1))
	register("full", "shape value dtype", 2, func(e *elab, c *call, a []any) (any, error) {
		v, ok := toFloat(a[1])
		if !ok {
			return nil, e.errf(c.pos, "full: want a number, have %s", describe(a[1]))
		}
		return filled("full", v)(e, c, []any{a[0], a[2]})
	})
	register("uniform", "shape dtype", 1, random("uniform"))
	register("normal", "shape dtype", 1, random("normal"))
	register("concat", "xs axis", 1, biConcat)
	for _, d := range []ir.DType{ir.F32, ir.F16, ir.BF16, ir.F64, ir.I32, ir.I64, ir.Bool} {
		register(d.String(), "x", 1, func(e *elab, c *call, a []any) (any, error) { return e.convert(c, a[0], d) })
	}
	register("float", "x", 1, func(e *elab, c *call, a []any) (any, error) {
		if f, ok := toFloat(a[0]); ok {
			return f, nil
		}
		return nil, e.errf(c.pos, "float wants a number, have %s", describe(a[0]))
	})
	register("int", "x", 1, func(e *elab, c *call, a []any) (any, error) {
		if f, ok := toFloat(a[0]); ok && !math.IsNaN(f) && math.Abs(f) < 1<<62 {
			return int64(f), nil
		}
		return nil, e.errf(c.pos, "int wants a number, have %s", describe(a[0]))
	})
	register("assert", "cond message", 2, func(e *elab, c *call, a []any) (any, error) {
		b, ok := a[0].(bool)
		msg, _ := a[1].(string)
		if !ok {
			return nil, e.errf(c.pos, "assert wants a compile-time bool, have %s", describe(a[0]))
		}
		if !b {
			return nil, e.errf(c.pos, "%s", msg)
		}
		return nil, nil
	})
}

func (e *elab) tensorArg(c *call, name string, v any) (*ir.Value, error) {
	t, ok := v.(*ir.Value)
	if !ok {
		return nil, e.errf(c.pos, "%s wants a tensor, have %s", name, describe(v))
	}
	return t, nil
}

func (e *elab) unaryMath(pos lexer.Position, name string, op ir.Op, x any) (any, error) {
	if f, ok := x.(float64); ok || isNumber(x) {
		if !ok {
			f, _ = toFloat(x)
		}
		if _, isBool := x.(bool); !isBool {
			return constUnary(op, f), nil
		}
	}
	t, ok := x.(*ir.Value)
	if !ok || t.Type.DType == ir.Bool || (!t.Type.DType.IsFloat() && op != ir.OpAbs && op != ir.OpSign && op != ir.OpStopGradient) {
		return nil, e.errf(pos, "%s wants a float tensor or a number, have %s", name, describe(x))
	}
	return e.emit(e.b.Unary(op, t))
}

func constUnary(op ir.Op, f float64) float64 {
	switch op {
	case ir.OpExp:
		return math.Exp(f)
	case ir.OpLog:
		return math.Log(f)
	case ir.OpSqrt:
		return math.Sqrt(f)
	case ir.OpRsqrt:
		return 1 / math.Sqrt(f)
	case ir.OpTanh:
		return math.Tanh(f)
	case ir.OpErf:
		return math.Erf(f)
	case ir.OpAbs:
		return math.Abs(f)
	case ir.OpSin:
		return math.Sin(f)
	case ir.OpCos:
		return math.Cos(f)
	case ir.OpRecip:
		return 1 / f
	case ir.OpSign:
		switch {
		case f > 0:
			return 1
		case f < 0:
			return -1
		}
		return f
	}
	return f
}

func (e *elab) minmax(pos lexer.Position, op ir.Op, a, b any) (any, error) {
	fa, okA := a.(float64)
	fb, okB := b.(float64)
	ia, intA := a.(int64)
	ib, intB := b.(int64)
	switch {
	case intA && intB:
		if op == ir.OpMax {
			return max(ia, ib), nil
		}
		return min(ia, ib), nil
	case (okA || intA) && (okB || intB):
		if intA {
			fa = float64(ia)
		}
		if intB {
			fb = float64(ib)
		}
		if op == ir.OpMax {
			return math.Max(fa, fb), nil
		}
		return math.Min(fa, fb), nil
	}
	name := map[ir.Op]string{ir.OpMax: "maximum", ir.OpMin: "minimum"}[op]
	ts, err := e.unify(pos, name, a, b)
	if err != nil {
		return nil, err
	}
	if ts[0].Type.DType == ir.Bool {
		return nil, e.errf(pos, "%s wants numbers, have %v", name, ts[0].Type)
	}
	return e.emit(e.b.Binary(op, ts[0], ts[1]))
}

// unify turns constants into tensors of the tensors' dtype and broadcasts
// all operands to one shape.
func (e *elab) unify(pos lexer.Position, name string, vals ...any) ([]*ir.Value, error) {
	var d ir.DType
	var shape ir.Shape
	first := true
	for _, v := range vals {
		if t, ok := v.(*ir.Value); ok {
			if d == ir.Invalid {
				d = t.Type.DType
			} else if d != t.Type.DType {
				return nil, e.errf(pos, "%s: dtypes differ: %s", name, describeAll(vals))
			}
			if first {
				shape, first = t.Type.Shape, false
			} else if s, ok := broadcastShape(shape, t.Type.Shape); ok {
				shape = s
			} else {
				return nil, e.errf(pos, "%s: shapes do not broadcast: %s", name, describeAll(vals))
			}
		}
	}
	if d == ir.Invalid {
		return nil, e.errf(pos, "%s wants at least one tensor, have %s", name, describeAll(vals))
	}
	out := make([]*ir.Value, len(vals))
	for i, v := range vals {
		t, ok := v.(*ir.Value)
		if !ok {
			var err error
			if t, err = e.constTensor(pos, v, d, "+", v, nil); err != nil {
				return nil, e.errf(pos, "%s: cannot use %s with %v tensors", name, describe(v), d)
			}
		}
		out[i] = e.broadcastTo(t, shape)
	}
	return out, nil
}

func describeAll(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = describe(v)
	}
	return strings.Join(parts, ", ")
}

func biWhere(e *elab, c *call, a []any) (any, error) {
	cond, ok := a[0].(*ir.Value)
	if !ok || cond.Type.DType != ir.Bool {
		if b, isB := a[0].(bool); isB {
			if b {
				return a[1], nil
			}
			return a[2], nil
		}
		return nil, e.errf(c.pos, "where wants a bool condition, have %s", describe(a[0]))
	}
	ts, err := e.unify(c.pos, "where", a[1], a[2])
	if err != nil {
		return nil, err
	}
	shape, ok := broadcastShape(cond.Type.Shape, ts[0].Type.Shape)
	if !ok {
		return nil, e.errf(c.pos, "where: condition %v does not broadcast with %v", cond.Type, ts[0].Type)
	}
	return e.emit(e.b.Select(e.broadcastTo(cond, shape), e.broadcastTo(ts[0], shape), e.broadcastTo(ts[1], shape)))
}

// axes normalises an axis argument (nil = all, an int or a list; negative
// counts from the end) to sorted distinct axes.
func (e *elab) axes(pos lexer.Position, name string, v any, rank int) ([]int, error) {
	var raw []int64
	switch x := v.(type) {
	case nil:
		for i := 0; i < rank; i++ {
			raw = append(raw, int64(i))
		}
	case int64:
		raw = []int64{x}
	case []any:
		for _, it := range x {
			n, ok := it.(int64)
			if !ok {
				return nil, e.errf(pos, "%s: an axis must be an integer, have %s", name, describe(it))
			}
			raw = append(raw, n)
		}
	default:
		return nil, e.errf(pos, "%s: axis must be an integer or a list, have %s", name, describe(v))
	}
	seen := map[int]bool{}
	out := []int{}
	for _, n := range raw {
		ax := int(n)
		if ax < 0 {
			ax += rank
		}
		if ax < 0 || ax >= rank {
			return nil, e.errf(pos, "%s: axis %d out of range for rank %d", name, n, rank)
		}
		if seen[ax] {
			return nil, e.errf(pos, "%s: axis %d given twice", name, n)
		}
		seen[ax] = true
		out = append(out, ax)
	}
	sort.Ints(out)
	return out, nil
}

// oneAxis reads an axis argument that must name exactly one axis: an integer
// or a list of one integer (negative counts from the end).
func (e *elab) oneAxis(pos lexer.Position, name string, v any, rank int) (int, error) {
	ax, err := e.axes(pos, name, v, rank)
	if err != nil {
		return 0, err
	}
	if len(ax) != 1 {
		return 0, e.errf(pos, "%s wants one axis, have %s", name, describe(v))
	}
	return ax[0], nil
}

func reduction(kind string) builtinFn {
	return func(e *elab, c *call, a []any) (any, error) {
		t, err := e.tensorArg(c, kind, a[0])
		if err != nil {
			return nil, err
		}
		if t.Type.DType == ir.Bool {
			return nil, e.errf(c.pos, "%s wants numbers, have %v", kind, t.Type)
		}
		axes, err := e.axes(c.pos, kind, a[1], t.Type.Rank())
		if err != nil {
			return nil, err
		}
		keep := false
		if a[2] != nil {
			b, ok := a[2].(bool)
			if !ok {
				return nil, e.errf(c.pos, "%s: keep wants true or false, have %s", kind, describe(a[2]))
			}
			keep = b
		}
		var r *ir.Value
		switch kind {
		case "sum":
			r = e.b.Reduce(ir.OpReduceSum, t, axes)
		case "mean":
			if !t.Type.DType.IsFloat() {
				return nil, e.errf(c.pos, "mean wants a float tensor, have %v", t.Type)
			}
			n := 1
			for _, ax := range axes {
				n *= t.Type.Shape[ax]
			}
			r = e.b.Reduce(ir.OpReduceSum, t, axes)
			r = e.b.Binary(ir.OpMul, r, e.b.Broadcast(e.b.Constant(ir.T(t.Type.DType), 1/float64(n)), r.Type.Shape, []int{}))
		case "max":
			r = e.b.Reduce(ir.OpReduceMax, t, axes)
		case "min":
			r = e.b.Unary(ir.OpNeg, e.b.Reduce(ir.OpReduceMax, e.b.Unary(ir.OpNeg, t), axes))
		}
		if keep {
			s := t.Type.Shape.Clone()
			for _, ax := range axes {
				s[ax] = 1
			}
			r = e.b.Reshape(r, s)
		}
		return e.emit(r)
	}
}
