package ir

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse reads a module in the IR text form. Errors carry line:col. The
// parser never panics, whatever its input.
func Parse(src string) (m *Module, err error) {
	p := &irParser{src: src, line: 1, col: 1}
	p.next()
	m = &Module{}
	for p.tok.kind != tEOF {
		name := p.tok // the function's name follows "func"
		f, err := p.parseFunc(&name)
		if err != nil {
			return nil, err
		}
		if m.Func(f.Name) != nil {
			return nil, fmt.Errorf("%d:%d: function @%s defined twice", name.line, name.col, f.Name)
		}
		m.Funcs = append(m.Funcs, f)
	}
	// A fusion names its callee, which may be defined later in the text.
	for _, c := range p.calls {
		name := c.v.Attrs.String("calls")
		callee := m.Func(name)
		if callee == nil {
			return nil, fmt.Errorf("%d:%d: fusion calls @%s, which is not defined", c.line, c.col, name)
		}
		c.v.Callee = callee
		if err := checkCall(c.v); err != nil {
			return nil, fmt.Errorf("%d:%d: %v", c.line, c.col, err)
		}
	}
	return m, nil
}

// ParseFunc reads one function followed by the fused functions it calls
// (the text Func.String prints) and returns the first.
func ParseFunc(src string) (*Func, error) {
	m, err := Parse(src)
	if err != nil {
		return nil, err
	}
	if len(m.Funcs) == 0 {
		return nil, fmt.Errorf("want one function, have none")
	}
	f := m.Funcs[0]
	if n := len(f.Callees()); len(m.Funcs) != 1+n {
		return nil, fmt.Errorf("want one function and the %d it calls, have %d functions", n, len(m.Funcs))
	}
	return f, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tRef    // %name
	tGlobal // @name
	tNum
	tStr
	tPunct
	tBad
)

type token struct {
	kind      tokKind
	text      string
	line, col int
}

type irParser struct {
	src       string
	pos       int
	line, col int
	tok       token
	values    map[string]*Value
	// calls are the fusion instructions read so far, with the position of
	// their op, resolved against the module's functions at the end.
	calls []pendingCall
}

type pendingCall struct {
	v         *Value
	line, col int
}

func isNameChar(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *irParser) advance(n int) {
	for i := 0; i < n && p.pos < len(p.src); i++ {
		if p.src[p.pos] == '\n' {
			p.line++
			p.col = 1
		} else {
			p.col++
		}
		p.pos++
	}
}

func (p *irParser) next() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			p.advance(1)
			continue
		}
		if c == '#' || c == '/' && strings.HasPrefix(p.src[p.pos:], "//") {
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.advance(1)
			}
			continue
		}
		break
	}
	t := token{line: p.line, col: p.col}
	if p.pos >= len(p.src) {
		t.kind = tEOF
		p.tok = t
		return
	}
	start := p.pos
	c := p.src[p.pos]
	switch {
	case c == '%' || c == '@':
		p.advance(1)
		for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
			p.advance(1)
		}
		t.kind = tRef
		if c == '@' {
			t.kind = tGlobal
		}
		t.text = p.src[start+1 : p.pos]
		if t.text == "" {
			t.kind = tBad
			t.text = string(c)
		}
	case c >= '0' && c <= '9' || c == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9':
		p.advance(1)
		for p.pos < len(p.src) {
			d := p.src[p.pos]
			if d >= '0' && d <= '9' || d == '.' || d == 'e' || d == 'E' ||
				(d == '-' || d == '+') && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E') {
				p.advance(1)
				continue
			}
			break
		}
		t.kind, t.text = tNum, p.src[start:p.pos]
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
			p.advance(1)
		}
		t.kind, t.text = tIdent, p.src[start:p.pos]
	case c == '"':
		p.advance(1)
		for p.pos < len(p.src) && p.src[p.pos] != '"' && p.src[p.pos] != '\n' {
			if p.src[p.pos] == '\\' {
				p.advance(1)
			}
			p.advance(1)
		}
		p.advance(1)
		t.kind, t.text = tStr, p.src[start:min(p.pos, len(p.src))]
	case c == '-' && strings.HasPrefix(p.src[p.pos:], "->"):
		p.advance(2)
		t.kind, t.text = tPunct, "->"
	case c == '-' && strings.HasPrefix(p.src[p.pos:], "-inf"):
		p.advance(4)
		t.kind, t.text = tNum, "-inf"
	case strings.IndexByte("(){}[],:=", c) >= 0:
		p.advance(1)
		t.kind, t.text = tPunct, string(c)
	default:
		p.advance(1)
		t.kind, t.text = tBad, string(c)
	}
	p.tok = t
}

func (p *irParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%d:%d: %s", p.tok.line, p.tok.col, fmt.Sprintf(format, args...))
}

func (p *irParser) describe() string {
	if p.tok.kind == tEOF {
		return "end of input"
	}
	return strconv.Quote(p.tok.text)
}

func (p *irParser) expect(punct string) error {
	if p.tok.kind != tPunct || p.tok.text != punct {
		return p.errorf("want %q, have %s", punct, p.describe())
	}
	p.next()
	return nil
}

func (p *irParser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.text == s }

// peek returns the token after the current one without consuming anything.
func (p *irParser) peek() token {
	save := *p
	p.next()
	t := p.tok
	*p = save
	return t
}

// parseFunc reads one function; it sets *name to the function's name token,
// the position of the errors about the function as a whole.
func (p *irParser) parseFunc(name *token) (*Func, error) {
	if p.tok.kind != tIdent || p.tok.text != "func" {
		return nil, p.errorf("want \"func\", have %s", p.describe())
	}
	p.next()
	if p.tok.kind != tGlobal {
		return nil, p.errorf("want a function name @name, have %s", p.describe())
	}
	*name = p.tok
	f := &Func{Name: p.tok.text}
	p.values = map[string]*Value{}
	p.next()
	if err := p.expect("("); err != nil {
		return nil, err
	}
	for !p.isPunct(")") {
		if len(f.Params) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		if p.tok.kind != tRef {
			return nil, p.errorf("want a parameter %%name, have %s", p.describe())
		}
		name := p.tok.text
		if err := CheckParamName(name); err != nil {
			return nil, p.errorf("%v", err)
		}
		if p.values[name] != nil {
			return nil, p.errorf("%%%s defined twice", name)
		}
		p.next()
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		t, err := p.parseType()
		if err != nil {
			return nil, err
		}
		attrs, err := p.parseAttrs()
		if err != nil {
			return nil, err
		}
		v := &Value{Name: name, Type: t, Attrs: attrs}
		p.values[name] = v
		f.Params = append(f.Params, v)
	}
	p.next()
	if err := p.expect("->"); err != nil {
		return nil, err
	}
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var resTypes []Type
	named := false
	for !p.isPunct(")") {
		if len(resTypes) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		// A result is "name: type" or a bare type; a name may be spelled
		// like a dtype (f32: f32[]), so the ":" decides.
		name := ""
		if p.tok.kind == tIdent {
			if nt := p.peek(); nt.kind == tPunct && nt.text == ":" {
				name = p.tok.text
				named = true
				p.next()
				p.next()
			}
		}
		t, err := p.parseType()
		if err != nil {
			return nil, err
		}
		resTypes = append(resTypes, t)
		f.ResultNames = append(f.ResultNames, name)
	}
	p.next()
	if !named {
		f.ResultNames = nil
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for !(p.tok.kind == tIdent && p.tok.text == "return") {
		v, err := p.parseInstr()
		if err != nil {
			return nil, err
		}
		v.ID = len(f.Body)
		f.Body = append(f.Body, v)
	}
	p.next()
	for !p.isPunct("}") {
		if len(f.Results) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		v, err := p.parseRef()
		if err != nil {
			return nil, err
		}
		f.Results = append(f.Results, v)
	}
	p.next()
	if len(f.Results) != len(resTypes) {
		return nil, fmt.Errorf("%d:%d: @%s: returns %d values, declares %d", name.line, name.col, f.Name, len(f.Results), len(resTypes))
	}
	for i, r := range f.Results {
		if !r.Type.Equal(resTypes[i]) {
			return nil, fmt.Errorf("%d:%d: @%s: result %d: declared %v, returns %v", name.line, name.col, f.Name, i, resTypes[i], r.Type)
		}
	}
	return f, nil
}

func (p *irParser) parseRef() (*Value, error) {
	if p.tok.kind != tRef {
		return nil, p.errorf("want a value %%name, have %s", p.describe())
	}
	v := p.values[p.tok.text]
	if v == nil {
		return nil, p.errorf("%%%s is not defined", p.tok.text)
	}
	p.next()
	return v, nil
}

func (p *irParser) parseInstr() (*Value, error) {
	if p.tok.kind != tRef {
		return nil, p.errorf("want an instruction %%name = op ..., have %s", p.describe())
	}
	name := p.tok.text
	if p.values[name] != nil {
		return nil, p.errorf("%%%s defined twice", name)
	}
	p.next()
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if p.tok.kind != tIdent {
		return nil, p.errorf("want an op name, have %s", p.describe())
	}
	op, ok := LookupOp(p.tok.text)
	if !ok {
		return nil, p.errorf("unknown op %q", p.tok.text)
	}
	line, col := p.tok.line, p.tok.col
	p.next()
	v := &Value{Op: op}
	for p.tok.kind == tRef {
		if len(v.Args) > 0 {
			return nil, p.errorf("want \",\" between operands")
		}
		for {
			a, err := p.parseRef()
			if err != nil {
				return nil, err
			}
			v.Args = append(v.Args, a)
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	attrs, err := p.parseAttrs()
	if err != nil {
		return nil, err
	}
	v.Attrs = attrs
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	if v.Type, err = p.parseType(); err != nil {
		return nil, err
	}
	if n := op.Arity(); n >= 0 && len(v.Args) != n {
		return nil, fmt.Errorf("%d:%d: %v takes %d operands, have %d", line, col, op, n, len(v.Args))
	}
	if op == OpFusion {
		p.calls = append(p.calls, pendingCall{v, line, col})
	}
	p.values[name] = v
	return v, nil
}

func (p *irParser) parseType() (Type, error) {
	if p.tok.kind != tIdent {
		return Type{}, p.errorf("want a type such as f32[2,3], have %s", p.describe())
	}
	d, ok := ParseDType(p.tok.text)
	if !ok {
		return Type{}, p.errorf("unknown dtype %q", p.tok.text)
	}
	p.next()
	l, err := p.parseList(1)
	if err != nil {
		return Type{}, err
	}
	dims, ok := l.([]int)
	if !ok {
		return Type{}, p.errorf("want a shape of integers")
	}
	for _, n := range dims {
		if n < 0 {
			return Type{}, p.errorf("negative dimension %d", n)
		}
	}
	t := Type{d, Shape(dims)}
	if err := CheckType(t); err != nil {
		return Type{}, p.errorf("%v", err)
	}
	return t, nil
}

func (p *irParser) parseAttrs() (Attrs, error) {
	if !p.isPunct("{") {
		return nil, nil
	}
	p.next()
	var attrs Attrs
	for !p.isPunct("}") {
		if len(attrs) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		if p.tok.kind != tIdent {
			return nil, p.errorf("want an attribute name, have %s", p.describe())
		}
		key := p.tok.text
		if _, dup := attrs.Get(key); dup {
			return nil, p.errorf("attribute %s given twice", key)
		}
		p.next()
		if err := p.expect("="); err != nil {
			return nil, err
		}
		val, err := p.parseAttrValue()
		if err != nil {
			return nil, err
		}
		attrs = attrs.Set(key, val)
	}
	p.next()
	return attrs, nil
}

func (p *irParser) parseAttrValue() (any, error) {
	switch p.tok.kind {
	case tNum:
		s := p.tok.text
		p.next()
		if s == "-inf" {
			return math.Inf(-1), nil
		}
		if !strings.ContainsAny(s, ".eE") {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, p.errorf("bad integer %s", s)
			}
			return n, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, p.errorf("bad number %s", s)
		}
		return f, nil
	case tIdent:
		s := p.tok.text
		p.next()
		switch s {
		case "inf":
			return math.Inf(1), nil
		case "nan":
			return math.NaN(), nil
		}
		return s, nil
	case tStr:
		s, err := strconv.Unquote(p.tok.text)
		if err != nil {
			return nil, p.errorf("bad string %s", p.tok.text)
		}
		p.next()
		return s, nil
	case tPunct:
		if p.isPunct("[") {
			return p.parseList(2)
		}
	}
	return nil, p.errorf("want an attribute value, have %s", p.describe())
}

// parseList reads [1,2] as []int, [[1],[2]] as [][]int and [] as []int{};
// depth is how many levels of brackets it may read (1: a list of integers,
// 2: a list of lists), so that no input can make it recurse deeply.
func (p *irParser) parseList(depth int) (any, error) {
	if err := p.expect("["); err != nil {
		return nil, err
	}
	ints := []int{}
	var lists [][]int
	for !p.isPunct("]") {
		if len(ints)+len(lists) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		switch {
		case p.tok.kind == tNum && len(lists) == 0:
			n, err := strconv.Atoi(p.tok.text)
			if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
				return nil, p.errorf("want an integer, have %s", p.describe())
			}
			ints = append(ints, n)
			p.next()
		case p.isPunct("[") && depth == 1:
			return nil, p.errorf("want an integer, have %s", p.describe())
		case p.isPunct("[") && len(ints) == 0:
			l, err := p.parseList(depth - 1)
			if err != nil {
				return nil, err
			}
			lists = append(lists, l.([]int))
		default:
			return nil, p.errorf("want a list element, have %s", p.describe())
		}
	}
	p.next()
	if lists != nil {
		return lists, nil
	}
	return ints, nil
}
