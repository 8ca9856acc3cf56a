package parser

import (
	"math"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"xlc/internal/suggest"
	"xlc/ir"
)

// postfix returns the expression's postfix chain when the expression is
// nothing but that (no operators), else nil.
func (x *Expr) postfix() *Postfix {
	if len(x.Tail) > 0 || len(x.Head.Tail) > 0 || x.Head.Head.Op != "" {
		return nil
	}
	a := x.Head.Head.Left
	if len(a.Tail) > 0 || len(a.Head.Tail) > 0 || a.Head.Head.Pow == nil || a.Head.Head.Pow.Exp != nil {
		return nil
	}
	return a.Head.Head.Pow.Base
}

func (e *elab) expr(x *Expr, s *scope) (any, error) {
	v, err := e.and(x.Head, s)
	if err != nil {
		return nil, err
	}
	for _, t := range x.Tail {
		r, err := e.and(t, s)
		if err != nil {
			return nil, err
		}
		if v, err = e.binop(t.Pos, "||", v, r); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *elab) and(x *AndExpr, s *scope) (any, error) {
	v, err := e.cmp(x.Head, s)
	if err != nil {
		return nil, err
	}
	for _, t := range x.Tail {
		r, err := e.cmp(t, s)
		if err != nil {
			return nil, err
		}
		if v, err = e.binop(t.Pos, "&&", v, r); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *elab) cmp(x *CmpExpr, s *scope) (any, error) {
	v, err := e.add(x.Left, s)
	if err != nil || x.Op == "" {
		return v, err
	}
	r, err := e.add(x.Right, s)
	if err != nil {
		return nil, err
	}
	return e.binop(x.Right.Pos, x.Op, v, r)
}

func (e *elab) add(x *AddExpr, s *scope) (any, error) {
	v, err := e.mul(x.Head, s)
	if err != nil {
		return nil, err
	}
	for _, t := range x.Tail {
		r, err := e.mul(t.X, s)
		if err != nil {
			return nil, err
		}
		if v, err = e.binop(t.Pos, t.Op, v, r); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *elab) mul(x *MulExpr, s *scope) (any, error) {
	v, err := e.unary(x.Head, s)
	if err != nil {
		return nil, err
	}
	for _, t := range x.Tail {
		r, err := e.unary(t.X, s)
		if err != nil {
			return nil, err
		}
		if v, err = e.binop(t.Pos, t.Op, v, r); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *elab) unary(x *Unary, s *scope) (any, error) {
	if x.Pow != nil {
		v, err := e.postfixExpr(x.Pow.Base, s)
		if err != nil || x.Pow.Exp == nil {
			return v, err
		}
		r, err := e.unary(x.Pow.Exp.X, s)
		if err != nil {
			return nil, err
		}
		return e.binop(x.Pow.Exp.Pos, "**", v, r)
	}
	v, err := e.unary(x.X, s)
	if err != nil {
		return nil, err
	}
	e.pos = x.Pos
	switch x.Op {
	case "-":
		switch c := v.(type) {
		case int64:
			if c == math.MinInt64 {
				return nil, e.errf(x.Pos, "integer overflow in -")
			}
			return -c, nil
		case float64:
			return -c, nil
		case *ir.Value:
			if c.Type.DType == ir.Bool {
				return nil, e.errf(x.Pos, "cannot negate %v", c.Type)
			}
			return e.emit(e.b.Unary(ir.OpNeg, c))
		}
	case "!":
		switch c := v.(type) {
		case bool:
			return !c, nil
		case *ir.Value:
			if c.Type.DType == ir.Bool {
				return e.emit(e.b.Unary(ir.OpNot, c))
			}
		}
	}
	return nil, e.errf(x.Pos, "cannot apply %s to %s", x.Op, describe(v))
}

// emit checks the builder after an instruction was added.
func (e *elab) emit(v *ir.Value) (any, error) {
	if err := e.b.Err(); err != nil {
		return nil, e.errf(e.pos, "%v", err)
	}
	return v, nil
}

func (e *elab) postfixExpr(x *Postfix, s *scope) (any, error) {
	v, err := e.primary(x.X, s)
	if err != nil {
		return nil, err
	}
	for _, op := range x.Ops {
		e.pos = op.Pos
		if op.Call != nil {
			c, err := e.callArgs(op.Call, s)
			if err != nil {
				return nil, err
			}
			c.pos = x.Pos
			if x.X.Name != nil {
				c.name = *x.X.Name
			}
			if v, err = e.call(v, c); err != nil {
				return nil, err
			}
			continue
		}
		if v, err = e.index(op.Pos, v, op.Index, s); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (e *elab) primary(x *Primary, s *scope) (any, error) {
	e.pos = x.Pos
	switch {
	case x.Float != nil:
		f, err := strconv.ParseFloat(*x.Float, 64)
		if err != nil {
			return nil, e.errf(x.Pos, "bad number %s", *x.Float)
		}
		return f, nil
	case x.Int != nil:
		n, err := strconv.ParseInt(*x.Int, 10, 64)
		if err != nil {
			return nil, e.errf(x.Pos, "integer %s is out of range", *x.Int)
		}
		return n, nil
	case x.Str != nil:
		u, err := strconv.Unquote(*x.Str)
		if err != nil {
			return nil, e.errf(x.Pos, "bad string %s", *x.Str)
		}
		return u, nil
	case x.Bool != nil:
		return *x.Bool == "true", nil
	case x.If != nil:
		return e.ifExpr(x.If, s)
	case x.Name != nil:
		if v, where := s.lookup(*x.Name); where != nil {
			return v, nil
		}
		if b := builtins[*x.Name]; b != nil {
			return b, nil
		}
		return nil, e.errf(x.Pos, "unknown name %s%s", *x.Name, suggest.Hint(*x.Name, namesInScope(s)))
	case x.Paren != nil:
		return e.expr(x.Paren, s)
	case x.List != nil:
		out := make([]any, 0, len(x.List.Items))
		for _, it := range x.List.Items {
			v, err := e.expr(it, s)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, e.errf(x.Pos, "empty expression")
}

func (e *elab) ifExpr(x *IfExpr, s *scope) (any, error) {
	c, err := e.expr(x.Cond, s)
	if err != nil {
		return nil, err
	}
	b, ok := c.(bool)
	if !ok {
		if _, isT := c.(*ir.Value); isT {
			return nil, e.errf(x.Cond.Pos, "if needs a compile-time condition, have %s (use where(cond, a, b) for tensors)", describe(c))
		}
		return nil, e.errf(x.Cond.Pos, "if needs a bool condition, have %s", describe(c))
	}
	switch {
	case b:
		return e.block(x.Then, s)
	case x.ElseIf != nil:
		return e.ifExpr(x.ElseIf, s)
	case x.Else != nil:
		return e.block(x.Else, s)
	}
	return nil, nil
}

// call is an evaluated argument list.
type call struct {
	pos    lexer.Position
	name   string
	args   []any
	argPos []lexer.Position
	kw     []kwarg
}

type kwarg struct {
	name string
	val  any
	pos  lexer.Position
}

func (e *elab) callArgs(a *CallArgs, s *scope) (*call, error) {
	c := &call{}
	for _, arg := range a.Args {
		v, err := e.expr(arg.Value, s)
		if err != nil {
			return nil, err
		}
		if arg.Name == "" {
			if len(c.kw) > 0 {
				return nil, e.errf(arg.Pos, "positional argument after keyword argument")
			}
			c.args = append(c.args, v)
			c.argPos = append(c.argPos, arg.Pos)
			continue
		}
		for _, k := range c.kw {
			if k.name == arg.Name {
				return nil, e.errf(arg.Pos, "argument %s given twice", arg.Name)
			}
		}
		c.kw = append(c.kw, kwarg{arg.Name, v, arg.Pos})
	}
	return c, nil
}

func (e *elab) call(callee any, c *call) (any, error) {
	switch f := callee.(type) {
	case *closure:
		return e.callDef(f, c)
	case *builtin:
		e.pos = c.pos
		return f.fn(e, c)
	}
	return nil, e.errf(c.pos, "cannot call %s", describe(callee))
}

const maxCallDepth = 256

func (e *elab) callDef(cl *closure, c *call) (any, error) {
	d := cl.def
	for _, on := range e.stack {
		if on == d {
			return nil, e.errf(c.pos, "recursive call of %s (functions are inlined, so recursion cannot end)", d.Name)
		}
	}
	if len(e.stack) >= maxCallDepth {
		return nil, e.errf(c.pos, "calls nest deeper than %d", maxCallDepth)
	}
	if len(c.args) > len(d.Args) {
		return nil, e.errf(c.pos, "%s takes %s, have %d", d.Name, plural(len(d.Args), "argument"), len(c.args))
	}
	s := newScope(cl.env)
	set := map[string]bool{}
	for i, v := range c.args {
		s.vars[d.Args[i].Name] = v
		set[d.Args[i].Name] = true
	}
	seg, explicit := d.Name, false
	for _, k := range c.kw {
		found := false
		for _, a := range d.Args {
			if a.Name == k.name {
				found = true
			}
		}
		switch {
		case found && set[k.name]:
			return nil, e.errf(k.pos, "%s: argument %s given twice", d.Name, k.name)
		case found:
			s.vars[k.name] = k.val
			set[k.name] = true
		case k.name == "name":
			n, ok := k.val.(string)
			if !ok || !isIdent(n) {
				return nil, e.errf(k.pos, "name= wants an identifier string ([A-Za-z_][A-Za-z0-9_]*), have %s", describe(k.val))
			}
			seg, explicit = n, true
		default:
			params := make([]string, len(d.Args))
			for i, a := range d.Args {
				params[i] = a.Name
			}
			return nil, e.errf(k.pos, "%s", noParameter(d.Name, k.name, params, "name"))
		}
	}
	for _, a := range d.Args {
		if set[a.Name] {
			continue
		}
		if a.Default == nil {
			return nil, e.errf(c.pos, "%s: missing argument %s", d.Name, a.Name)
		}
		v, err := e.expr(a.Default, s)
		if err != nil {
			return nil, err
		}
		s.vars[a.Name] = v
	}
	// A default segment (the function's name) is numbered on reuse in the
	// same scope; an explicit name= is taken as given, so reusing one is an
	// error when the call declares parameters.
	if !explicit {
		key := strings.Join(e.path, ".") + "|" + seg
		if n := e.segs[key]; n > 0 {
			seg += strconv.Itoa(n)
		}
		e.segs[key]++
	}
	e.path = append(e.path, seg)
	e.stack = append(e.stack, d)
	e.calls = append(e.calls, c)
	v, err := e.block(d.Body, s)
	e.calls = e.calls[:len(e.calls)-1]
	e.stack = e.stack[:len(e.stack)-1]
	e.path = e.path[:len(e.path)-1]
	return v, err
}

// isIdent reports whether s is an identifier: [A-Za-z_][A-Za-z0-9_]*.
func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
