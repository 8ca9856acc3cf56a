package parser

import (
	"fmt"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"xlc/ir"
)

var keywords = map[string]bool{
	"model": true, "config": true, "train": true, "input": true, "param": true, "def": true,
	"let": true, "output": true, "repeat": true, "in": true, "if": true, "else": true,
	"true": true, "false": true,
}

// block runs a block's statements in a new scope and returns the value of the
// last one when it is an expression (nil otherwise).
func (e *elab) block(b *Block, parent *scope) (any, error) {
	s := newScope(parent)
	var last any
	for _, st := range b.Stmts {
		v, err := e.stmt(st, s, false)
		if err != nil {
			return nil, err
		}
		last = v
	}
	return last, nil
}

// stmt runs one statement; an expression statement yields its value.
func (e *elab) stmt(st *Stmt, s *scope, top bool) (any, error) {
	switch {
	case st.Config != nil:
		return nil, e.errf(st.Pos, "a %s section belongs at the start of the model", st.Config.Kind)
	case st.Input != nil:
		if !top {
			return nil, e.errf(st.Pos, "inputs are declared at the top level of the model")
		}
		return nil, e.input(st.Input, s)
	case st.Param != nil:
		return nil, e.param(st.Param, s)
	case st.Def != nil:
		if err := e.define(st.Def.Pos, st.Def.Name, s); err != nil {
			return nil, err
		}
		s.vars[st.Def.Name] = &closure{st.Def, s}
		return nil, nil
	case st.Let != nil:
		if err := e.define(st.Let.Pos, st.Let.Name, s); err != nil {
			return nil, err
		}
		v, err := e.expr(st.Let.Value, s)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, e.errf(st.Let.Value.Pos, "%s = ...: the expression has no value", st.Let.Name)
		}
		s.vars[st.Let.Name] = v
		return nil, nil
	case st.Assign != nil:
		_, where := s.lookup(st.Assign.Name)
		if where == nil || where == e.global {
			return nil, e.errf(st.Assign.Pos, "cannot assign to %s: not a variable (use let to define one)", st.Assign.Name)
		}
		v, err := e.expr(st.Assign.Value, s)
		if err != nil {
			return nil, err
		}
		where.vars[st.Assign.Name] = v
		return nil, nil
	case st.Output != nil:
		return nil, e.output(st.Output, s)
	case st.Repeat != nil:
		return nil, e.repeat(st.Repeat, s)
	case st.Expr != nil:
		return e.expr(st.Expr, s)
	}
	return nil, e.errf(st.Pos, "empty statement")
}

func (e *elab) define(pos lexer.Position, name string, s *scope) error {
	if keywords[name] {
		return e.errf(pos, "%s is a keyword and cannot name a value", name)
	}
	if _, dup := s.vars[name]; dup {
		return e.errf(pos, "%s is already defined in this scope", name)
	}
	return nil
}

// rngKeyName names the random key parameter that uniform, normal and
// dropout draw from. It is reserved from the start, so that an input or a
// parameter of that name is refused at its declaration whether or not the
// model draws random numbers.
const rngKeyName = "rng_key"

// claimed is what took an IR parameter name, and where.
type claimed struct {
	what string // "input", "parameter" or "random key"
	pos  lexer.Position
}

// claim takes name in the one namespace of IR parameters (inputs,
// parameters wherever they are declared, the rng key) for the declaration
// at pos, or reports the clash there.
func (e *elab) claim(pos lexer.Position, name, what string) error {
	prev, taken := e.irNames[name]
	switch {
	case !taken:
		e.irNames[name] = claimed{what, pos}
		return nil
	case prev.what == "random key":
		return e.errf(pos, "%s %s: the name %s is reserved for the random key that uniform, normal and dropout draw from", what, name, name)
	case prev.what == "parameter" && what == "parameter":
		return e.errf(pos, "parameter %s declared twice (give the calls distinct name= arguments)", name)
	}
	return e.errf(pos, "%s %s clashes with the %s %s declared at %s:%d:%d", what, name, prev.what, name, prev.pos.Filename, prev.pos.Line, prev.pos.Column)
}

func (e *elab) dims(t *TypeExpr, s *scope) (ir.Type, error) {
	d, ok := ir.ParseDType(t.DType)
	if !ok {
		return ir.Type{}, e.errf(t.Pos, "unknown dtype %s (want f32, f16, bf16, f64, i32, i64 or bool)", t.DType)
	}
	shape := ir.Shape{}
	for _, x := range t.Dims {
		v, err := e.expr(x, s)
		if err != nil {
			return ir.Type{}, err
		}
		n, ok := v.(int64)
		if !ok || n < 1 {
			return ir.Type{}, e.errf(x.Pos, "a dimension must be a positive integer, have %s", describe(v))
		}
		shape = append(shape, int(n))
	}
	t2 := ir.Type{DType: d, Shape: shape}
	if err := ir.CheckType(t2); err != nil {
		return ir.Type{}, e.errf(t.Pos, "%v", err)
	}
	return t2, nil
}

func (e *elab) input(in *Input, s *scope) error {
	if err := e.define(in.Pos, in.Name, s); err != nil {
		return err
	}
	t, err := e.dims(in.Type, s)
	if err != nil {
		return err
	}
	if err := e.claim(in.Pos, in.Name, "input"); err != nil {
		return err
	}
	var attrs ir.Attrs
	attrs = attrs.Set("role", "input")
	if in.Lo != nil {
		if !t.DType.IsInt() {
			return e.errf(in.Lo.Pos, "a range applies to integer inputs, not %v", t)
		}
		lo, err := e.intExpr(in.Lo, s)
		if err != nil {
			return err
		}
		hi, err := e.intExpr(in.Hi, s)
		if err != nil {
			return err
		}
		if hi <= lo {
			return e.errf(in.Lo.Pos, "empty range %d..%d", lo, hi)
		}
		attrs = attrs.Set("range", []int{int(lo), int(hi)})
	}
	s.vars[in.Name] = e.b.Param(in.Name, t, attrs)
	return nil
}

func (e *elab) intExpr(x *Expr, s *scope) (int64, error) {
	v, err := e.expr(x, s)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, e.errf(x.Pos, "want an integer, have %s", describe(v))
	}
	return n, nil
}

// initializers maps an initializer to whether it takes one argument.
var initializers = map[string]bool{
	"normal": true, "xavier_normal": true, "xavier_uniform": true, "constant": true,
	"zeros": false, "ones": false,
}

func (e *elab) param(p *Param, s *scope) error {
	if err := e.define(p.Pos, p.Name, s); err != nil {
		return err
	}
	t, err := e.dims(p.Type, s)
	if err != nil {
		return err
	}
	if !t.DType.IsFloat() {
		return e.errf(p.Type.Pos, "parameters are floating point, have %v", t)
	}
	name, scale, err := e.initSpec(p.Init, s)
	if err != nil {
		return err
	}
	full := strings.Join(append(append([]string{}, e.path...), p.Name), ".")
	if err := e.claim(p.Pos, full, "parameter"); err != nil {
		return err
	}
	attrs := ir.Attrs{}.Set("role", "param").Set("init", name)
	if initializers[name] {
		attrs = attrs.Set("scale", scale)
	}
	s.vars[p.Name] = e.b.Param(full, t, attrs)
	return nil
}

// initSpec reads `normal(0.02)`, `xavier_normal(beta)`, `zeros`, ...
func (e *elab) initSpec(x *Expr, s *scope) (string, float64, error) {
	bad := func() error {
		return e.errf(x.Pos, "want an initializer: normal(std), xavier_normal(gain), xavier_uniform(gain), constant(c), zeros or ones")
	}
	pf := x.postfix()
	if pf == nil || pf.X.Name == nil {
		return "", 0, bad()
	}
	name := *pf.X.Name
	takesArg, ok := initializers[name]
	if !ok {
		return "", 0, e.errf(pf.Pos, "unknown initializer %s (want normal, xavier_normal, xavier_uniform, constant, zeros or ones)", name)
	}
	if !takesArg {
		if len(pf.Ops) != 0 {
			return "", 0, e.errf(pf.Ops[0].Pos, "%s takes no arguments", name)
		}
		return name, 0, nil
	}
	if len(pf.Ops) != 1 || pf.Ops[0].Call == nil || len(pf.Ops[0].Call.Args) != 1 || pf.Ops[0].Call.Args[0].Name != "" {
		return "", 0, e.errf(pf.Pos, "%s takes one argument", name)
	}
	arg := pf.Ops[0].Call.Args[0].Value
	v, err := e.expr(arg, s)
	if err != nil {
		return "", 0, err
	}
	f, ok := toFloat(v)
	if !ok {
		return "", 0, e.errf(arg.Pos, "%s: want a number, have %s", name, describe(v))
	}
	return name, f, nil
}

func (e *elab) output(o *Output, s *scope) error {
	for _, n := range e.outputs {
		if n == o.Name {
			return e.errf(o.Pos, "output %s given twice", o.Name)
		}
	}
	v, err := e.expr(o.Value, s)
	if err != nil {
		return err
	}
	var t *ir.Value
	switch x := v.(type) {
	case *ir.Value:
		t = x
	case int64, float64, bool:
		f, _ := toFloat(x)
		t = e.b.Constant(ir.T(ir.F32), f)
	default:
		return e.errf(o.Value.Pos, "output %s must be a tensor or number, have %s", o.Name, describe(v))
	}
	e.outputs = append(e.outputs, o.Name)
	e.outVals = append(e.outVals, t)
	return nil
}

// maxRepeatIterations bounds the repeat iterations of one compile, all loops
// together (nested ones count every inner iteration): every iteration is
// inlined, so a bigger count is a mistake, not a model (a 1,000-layer model
// needs 1,000).
const maxRepeatIterations = 100_000

func (e *elab) repeat(r *Repeat, s *scope) error {
	lo, err := e.intExpr(r.Lo, s)
	if err != nil {
		return err
	}
	hi, err := e.intExpr(r.Hi, s)
	if err != nil {
		return err
	}
	if keywords[r.Var] {
		return e.errf(r.Pos, "%s is a keyword and cannot name a value", r.Var)
	}
	if hi < lo {
		return e.errf(r.Lo.Pos, "repeat range %d..%d runs backwards (want lo <= hi; lo == hi runs no iteration)", lo, hi)
	}
	// hi-lo may overflow int64; as a uint64 it is exact.
	if n := uint64(hi) - uint64(lo); n > uint64(maxRepeatIterations-e.repeats) {
		return e.errf(r.Pos, "repeat %s in %d..%d: %d more iterations pass the limit of %d per model (%d used so far)", r.Var, lo, hi, n, maxRepeatIterations, e.repeats)
	}
	e.repeats += int(hi - lo)
	for i := lo; i < hi; i++ {
		body := newScope(s)
		body.vars[r.Var] = i
		e.path = append(e.path, fmt.Sprintf("%s%d", r.Var, i))
		_, err := e.block(r.Body, body)
		e.path = e.path[:len(e.path)-1]
		if err != nil {
			return err
		}
	}
	return nil
}
