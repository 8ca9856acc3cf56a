package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// minLinearOps is the fewest operations on the cotangent (besides itself)
// that linearize rewrites: fewer leave nothing worth moving.
const minLinearOps = 4

// maxLinearCone bounds the elementwise instructions walked from one root.
const maxLinearCone = 256

// linearize makes an activation's backward its cotangent times the
// derivative, computed in the forward. Autodiff expands GELU's product
// rule op by op: the backward combines the cotangent dy with forward
// values in a dozen products and sums, and its kernel computes the tanh
// again. Where an elementwise result r is linear in dy, the latest value
// its chain reads (r = dy·a + (dy·b)·c + ...), r becomes dy·J, J = a +
// b·c + ..., placed right after what it reads, where the activation's
// kernel computes it too (JAX's linearize). It applies where r takes
// minLinearOps operations on dy and J replaces what the backward read,
// which then dies before dy; tasks share one J. Not bit-identical.
func linearize(f *ir.Func) (bool, error) {
	l := newLinearizer(f)
	var cones []*cone
	claimed := map[*ir.Value]bool{}
	for i := len(f.Body) - 1; i >= 0; i-- {
		c := l.analyze(f.Body[i])
		if c == nil || slices.ContainsFunc(c.linear, func(v *ir.Value) bool { return claimed[v] }) {
			continue
		}
		for _, v := range c.linear {
			claimed[v] = true
		}
		cones = append(cones, c)
	}
	// A cone is worth it when what it frees, with every other cone
	// rewritten too, outweighs J, and J can be computed before the first
	// cone's dy; dropping one may make another not.
	for {
		l.firstDy = len(f.Body)
		for _, c := range cones {
			l.firstDy = min(l.firstDy, l.at(c.dy))
		}
		gone := map[*ir.Value]bool{}
		for _, c := range cones {
			for _, v := range c.linear {
				if v != c.dy {
					gone[v] = true
				}
			}
			for v := range c.late {
				gone[v] = true
			}
		}
		n := len(cones)
		cones = slices.DeleteFunc(cones, func(c *cone) bool { return l.freedBytes(c, gone) < bytesOf(c.r.Type) || !l.placeable(c) })
		if len(cones) == n {
			break
		}
	}
	if len(cones) == 0 {
		return false, nil
	}
	for _, c := range cones {
		coef := l.coefficients(c)
		c.r.Op, c.r.Args, c.r.Attrs = ir.OpMul, []*ir.Value{c.dy, coef[c.r]}, ir.Attrs{}
	}
	l.place()
	deadCode(f)
	return true, nil
}

// linearizer holds linearize's view of f: positions, readers and bases
// as they were before any rewrite, and the instructions it adds with the
// position each goes after.
type linearizer struct {
	f       *ir.Func
	pos     map[*ir.Value]int
	users   map[*ir.Value][]*ir.Value
	result  map[*ir.Value]bool
	bases   map[*ir.Value]*ir.Value
	byBase  map[*ir.Value][]*ir.Value // a base: the readers of the values it is the base of
	added   []*ir.Value
	anchor  map[*ir.Value]int       // an added instruction: the position it follows
	copies  map[*ir.Value]*ir.Value // forward's copies
	firstDy int                     // the earliest cone's dy's position
	made    map[string]*ir.Value    // the added instructions by op, operands, attributes and type
}

func newLinearizer(f *ir.Func) *linearizer {
	l := &linearizer{f: f, pos: map[*ir.Value]int{}, users: map[*ir.Value][]*ir.Value{}, result: map[*ir.Value]bool{},
		bases: map[*ir.Value]*ir.Value{}, byBase: map[*ir.Value][]*ir.Value{}, anchor: map[*ir.Value]int{}, copies: map[*ir.Value]*ir.Value{}, made: map[string]*ir.Value{}}
	for i, v := range f.Body {
		l.pos[v] = i
		for _, a := range v.Args {
			l.users[a] = append(l.users[a], v)
		}
	}
	for _, v := range f.Body {
		for _, a := range v.Args {
			b := l.base(a)
			l.byBase[b] = append(l.byBase[b], v)
		}
	}
	for _, r := range f.Results {
		l.result[r] = true
	}
	return l
}

// at is v's position: -1 for a parameter.
func (l *linearizer) at(v *ir.Value) int {
	if p, ok := l.pos[v]; ok {
		return p
	}
	return -1
}

// base is the value v is computed from elementwise, alone but for
// constants and broadcasts: what a fused kernel reads to recompute v (h for
// GELU's 0.5·h or tanh(c·(h + a·h³))), where v is then stored. A value a
// dot reads is its own base (a dot reads its operands from memory), and so
// is a narrowing conversion (the half copy is what is stored).
func (l *linearizer) base(v *ir.Value) *ir.Value {
	if b, ok := l.bases[v]; ok {
		return b
	}
	b := v
	narrows := v.Op == ir.OpConvert && v.Type.DType.Size() < v.Args[0].Type.DType.Size()
	readByDot := slices.ContainsFunc(l.users[v], func(u *ir.Value) bool { return u.Op == ir.OpDot })
	if !v.IsParam() && v.Op.IsElementwise() && !narrows && !readByDot {
		var only *ir.Value
		for _, a := range v.Args {
			if a.Op == ir.OpConstant || a.Op == ir.OpBroadcast || a.Op == ir.OpIota || !a.Type.Shape.Equal(v.Type.Shape) {
				continue
			}
			if ab := l.base(a); only == nil || only == ab {
				only = ab
			} else {
				only = v // two bases
			}
		}
		if only != nil && only != v {
			b = only
		}
	}
	l.bases[v] = b
	return b
}

// within reports whether v continues an elementwise chain of type t.
func within(v *ir.Value, t ir.Type) bool {
	return !v.IsParam() && v.Op != ir.OpConstant && v.Op.IsElementwise() && v.Type.DType == t.DType && v.Type.Shape.Equal(t.Shape)
}

// isRoot reports whether r ends an elementwise float chain: a result, or
// read by something that does not continue it.
func (l *linearizer) isRoot(r *ir.Value) bool {
	if !r.Type.DType.IsFloat() || !within(r, r.Type) {
		return false
	}
	if l.result[r] {
		return true
	}
	for _, u := range l.users[r] {
		if !within(u, r.Type) {
			return true
		}
	}
	return false
}

// Kinds of a value in r's chain with respect to the cotangent dy.
const (
	linNone  = iota // neither: not linear in dy
	linConst        // independent of dy
	linDy           // linear in dy
)

// cone is one root's analysis: dy, each instruction's kind, the linear
// ones.
type cone struct {
	r, dy  *ir.Value
	kind   map[*ir.Value]int
	linear []*ir.Value        // dy and r among them
	late   map[*ir.Value]bool // constant in dy, but placed after it
}

// analyze returns r's cone where r may become dy·J (see linearize), or nil.
func (l *linearizer) analyze(r *ir.Value) *cone {
	if !l.isRoot(r) {
		return nil
	}
	dy := l.cotangent(r)
	if dy == nil {
		return nil
	}
	c := &cone{r: r, dy: dy, kind: map[*ir.Value]int{}, late: map[*ir.Value]bool{}}
	if l.classify(c, r) != linDy || len(c.linear) < minLinearOps+1 {
		return nil
	}
	for _, v := range c.linear {
		if v == r || v == dy {
			continue
		}
		for _, u := range l.users[v] {
			if c.kind[u] != linDy {
				return nil // another reader keeps v: nothing would be saved
			}
		}
	}
	return c
}

// cotangent is the latest value r's elementwise chain reads that does not
// continue it, or nil when the chain is too large or reads only
// parameters and constants.
func (l *linearizer) cotangent(r *ir.Value) *ir.Value {
	seen := map[*ir.Value]bool{r: true}
	stack := []*ir.Value{r}
	var dy *ir.Value
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, a := range v.Args {
			switch {
			case seen[a] || a.Op == ir.OpConstant:
			case within(a, r.Type):
				if seen[a] = true; len(seen) > maxLinearCone {
					return nil
				}
				stack = append(stack, a)
			case !a.IsParam() && (dy == nil || l.at(a) > l.at(dy)):
				dy = a
			}
		}
	}
	return dy
}

// classify returns v's kind in c, recording the linear instructions and
// those constant in dy but placed after it.
func (l *linearizer) classify(c *cone, v *ir.Value) int {
	if k, ok := c.kind[v]; ok {
		return k
	}
	k := linNone
	switch {
	case v == c.dy:
		k = linDy
	case v.IsParam() || v.Op == ir.OpConstant || l.at(v) < l.at(c.dy):
		k = linConst
	case within(v, c.r.Type):
		k = l.combine(c, v)
	}
	c.kind[v] = k
	switch {
	case k == linDy:
		c.linear = append(c.linear, v)
	case k == linConst && v.Op != ir.OpConstant && l.at(v) > l.at(c.dy):
		c.late[v] = true
	}
	return k
}

// combine is the kind of elementwise v from its operands' kinds.
func (l *linearizer) combine(c *cone, v *ir.Value) int {
	ks := make([]int, len(v.Args))
	constant := true
	for i, a := range v.Args {
		ks[i] = l.classify(c, a)
		constant = constant && ks[i] == linConst
	}
	if constant {
		return linConst
	}
	// zero reports whether operand i is a splat zero: linear in dy too.
	zero := func(i int) bool { return isConst(v.Args[i], 0) }
	switch v.Op {
	case ir.OpMul:
		if ks[0] == linDy && ks[1] == linConst || ks[0] == linConst && ks[1] == linDy {
			return linDy
		}
	case ir.OpDiv:
		if ks[0] == linDy && ks[1] == linConst {
			return linDy
		}
	case ir.OpAdd, ir.OpSub:
		if ks[0] == linDy && ks[1] == linDy {
			return linDy
		}
	case ir.OpNeg:
		return ks[0]
	case ir.OpSelect:
		if ks[0] == linConst && (ks[1] == linDy || zero(1)) && (ks[2] == linDy || zero(2)) {
			return linDy
		}
	}
	return linNone
}

// freedBytes is the size of the values placed before dy that c's chain
// reads (by their bases) and that nothing reads past dy once the
// instructions gone are (every cone's, and the late constant ones, which
// J computes in the forward instead).
func (l *linearizer) freedBytes(c *cone, gone map[*ir.Value]bool) int64 {
	var n int64
	counted := map[*ir.Value]bool{}
	for u := range c.kind {
		if u == c.dy || c.kind[u] != linDy && !c.late[u] {
			continue
		}
		for _, a := range u.Args {
			b := l.base(a)
			if counted[b] || b.IsParam() || b.Op == ir.OpConstant || l.at(a) >= l.at(c.dy) || l.at(b) >= l.at(c.dy) {
				continue
			}
			counted[b] = true
			if !slices.ContainsFunc(l.byBase[b], func(w *ir.Value) bool { return l.at(w) > l.at(c.dy) && !gone[w] }) {
				n += bytesOf(b.Type)
			}
		}
	}
	return n
}

func bytesOf(t ir.Type) int64 { return int64(t.Shape.NumElements()) * int64(t.DType.Size()) }

// coefficients builds J for every linear instruction of c (nil for dy,
// whose J is 1) and returns them.
func (l *linearizer) coefficients(c *cone) map[*ir.Value]*ir.Value {
	fwd := l.forward
	t := c.r.Type
	unit := func() *ir.Value { return l.add(ir.OpConstant, nil, t, ir.Attrs{}.Set("value", 1.0)) } // made once (add)
	coef := map[*ir.Value]*ir.Value{}
	j := func(v *ir.Value) *ir.Value { // J of a linear operand, or a zero
		if c.kind[v] != linDy {
			return fwd(v)
		}
		if v == c.dy {
			return unit()
		}
		return coef[v]
	}
	slices.SortFunc(c.linear, func(a, b *ir.Value) int { return l.at(a) - l.at(b) })
	for _, v := range c.linear {
		if v == c.dy {
			continue
		}
		a := v.Args
		switch v.Op {
		case ir.OpMul:
			i := 0 // the linear operand
			if c.kind[a[1]] == linDy {
				i = 1
			}
			if a[i] == c.dy {
				coef[v] = fwd(a[1-i])
				continue
			}
			args := []*ir.Value{coef[a[i]], fwd(a[1-i])}
			if i == 1 {
				args[0], args[1] = args[1], args[0]
			}
			coef[v] = l.add(ir.OpMul, args, t, ir.Attrs{})
		case ir.OpDiv:
			coef[v] = l.add(ir.OpDiv, []*ir.Value{j(a[0]), fwd(a[1])}, t, ir.Attrs{})
		case ir.OpSelect:
			coef[v] = l.add(ir.OpSelect, []*ir.Value{fwd(a[0]), j(a[1]), j(a[2])}, t, ir.Attrs{})
		default: // add, sub, neg
			args := make([]*ir.Value, len(a))
			for i := range a {
				args[i] = j(a[i])
			}
			coef[v] = l.add(v.Op, args, t, ir.Attrs{})
		}
	}
	return coef
}

// placeable reports whether c's J reads only values placed before every
// cone's dy, or elementwise ones forward can copy there.
func (l *linearizer) placeable(c *cone) bool {
	seen := map[*ir.Value]bool{}
	var early func(v *ir.Value) bool
	early = func(v *ir.Value) bool {
		if seen[v] || v.IsParam() || v.Op == ir.OpConstant || l.at(v) < l.firstDy {
			return true
		}
		seen[v] = true
		if !v.Op.IsElementwise() {
			return false
		}
		for _, a := range v.Args {
			if !early(a) {
				return false
			}
		}
		return true
	}
	for _, u := range c.linear {
		if u == c.dy {
			continue
		}
		for _, a := range u.Args {
			if c.kind[a] != linDy && !early(a) {
				return false
			}
		}
	}
	return true
}

// forward is v where J may read it: v itself where it is placed before
// every cone's dy, else (for the elementwise instructions a backward
// computes from forward values alone, and constants) a copy placed right
// after the values it reads. The originals die unless something else
// reads them.
func (l *linearizer) forward(v *ir.Value) *ir.Value {
	if v.IsParam() || !v.Op.IsElementwise() && v.Op != ir.OpConstant || l.at(v) < l.firstDy {
		return v
	}
	if e := l.copies[v]; e != nil {
		return e
	}
	args := make([]*ir.Value, len(v.Args))
	for i, a := range v.Args {
		args[i] = l.forward(a)
	}
	e := l.add(v.Op, args, v.Type, v.Attrs)
	l.copies[v] = e
	return e
}

// add makes an instruction to place right after the latest of its
// operands, or returns the one it made before with the same operands.
func (l *linearizer) add(op ir.Op, args []*ir.Value, t ir.Type, attrs ir.Attrs) *ir.Value {
	key := fmt.Sprintf("%d %s %s", op, attrs.Format(), t)
	for _, a := range args {
		key += fmt.Sprintf(" %p", a)
	}
	if v := l.made[key]; v != nil {
		return v // another task's backward made it
	}
	v := &ir.Value{Op: op, Args: args, Type: cloneType(t), Attrs: attrs}
	l.made[key] = v
	at := -1
	for _, a := range args {
		if p, ok := l.anchor[a]; ok {
			at = max(at, p)
		} else {
			at = max(at, l.at(a))
		}
	}
	l.anchor[v] = at
	l.added = append(l.added, v)
	return v
}

// place puts the added instructions into f's body, each after its anchor,
// in the order they were made.
func (l *linearizer) place() {
	after := map[int][]*ir.Value{}
	for _, v := range l.added {
		after[l.anchor[v]] = append(after[l.anchor[v]], v)
	}
	body := slices.Clone(after[-1])
	for i, v := range l.f.Body {
		body = append(body, v)
		body = append(body, after[i]...)
	}
	l.f.Body = body
	l.f.Renumber()
}
