package trainstep

import (
	"fmt"

	"xlc/ir"
)

// Grad appends to f the instructions computing the gradient of the float
// scalar y with respect to each value in wrt, parameters or instructions of
// f (for an intermediate, the partial derivative holding what is upstream
// of it fixed), and returns them in order: a zero constant where y does not
// depend on one, or where it is an integer or bool. The appended
// instructions use only differentiable ops, so Grad applies to its own
// output.
//
// Grad visits the values on a path from wrt to y once, in reverse body
// order, summing adjoints with add: it is linear in the size of f.
// Instructions no gradient uses are dropped; on error f is left as it was.
func Grad(f *ir.Func, y *ir.Value, wrt []*ir.Value) ([]*ir.Value, error) {
	if f == nil || y == nil {
		return nil, fmt.Errorf("grad: nil function or value")
	}
	f.Renumber()
	g := &grad{f: f, n: len(f.Body), np: len(f.Params), pidx: make(map[*ir.Value]int, len(f.Params))}
	for i, p := range f.Params {
		g.pidx[p] = i
	}
	ys, ok := g.slot(y)
	if !ok {
		return nil, fmt.Errorf("grad: @%s: the differentiated value is not a value of the function", f.Name)
	}
	if !y.Type.DType.IsFloat() || y.Type.Rank() != 0 {
		return nil, fmt.Errorf("grad: @%s: want a float scalar to differentiate, have %v %v", f.Name, y.Ref(), y.Type)
	}
	for _, v := range f.Body {
		if v.Op == ir.OpFusion {
			return nil, fmt.Errorf("grad: @%s: %s is a fusion; differentiate before the fusion pass", f.Name, v.Ref())
		}
	}
	ws := make([]int, len(wrt))
	for i, w := range wrt {
		if w == nil {
			return nil, fmt.Errorf("grad: @%s: wrt[%d] is nil", f.Name, i)
		}
		if ws[i], ok = g.slot(w); !ok {
			return nil, fmt.Errorf("grad: @%s: wrt[%d] (%s %v) is not a value of the function", f.Name, i, w.Ref(), w.Type)
		}
	}
	g.mark(ws, ys)
	res, err := g.backward(y, ys, wrt, ws)
	if err != nil {
		f.Body = f.Body[:g.n]
		return nil, fmt.Errorf("grad: @%s: %v", f.Name, err)
	}
	g.prune(res)
	return res, nil
}

// grad is the state of one Grad call. Values are numbered by slot: the
// parameters first, in order, then the n instructions f had on entry.
type grad struct {
	f      *ir.Func
	n, np  int
	pidx   map[*ir.Value]int
	active []bool // on a path from a wrt value to y
	adj    []*ir.Value
}

// slot returns v's slot, or false when v is not a value of f as it was on
// entry.
func (g *grad) slot(v *ir.Value) (int, bool) {
	if v.IsParam() {
		i, ok := g.pidx[v]
		return i, ok
	}
	if v.ID >= 0 && v.ID < g.n && g.f.Body[v.ID] == v {
		return g.np + v.ID, true
	}
	return -1, false
}

// mark sets active for the float values forward-reachable from a wrt value
// through ops with a rule, then keeps only those y is backward-reachable from.
func (g *grad) mark(ws []int, ys int) {
	fwd := make([]bool, g.np+g.n)
	for _, s := range ws {
		fwd[s] = g.valueAt(s).Type.DType.IsFloat()
	}
	for i, v := range g.f.Body {
		s := g.np + i
		if fwd[s] || !v.Type.DType.IsFloat() || gradRules[v.Op] == nil {
			continue
		}
		for _, a := range v.Args {
			if as, ok := g.slot(a); ok && fwd[as] {
				fwd[s] = true
				break
			}
		}
	}
	g.active = make([]bool, len(fwd))
	g.active[ys] = fwd[ys]
	for i := g.n - 1; i >= 0; i-- {
		if !g.active[g.np+i] {
			continue
		}
		for _, a := range g.f.Body[i].Args {
			if as, ok := g.slot(a); ok && fwd[as] {
				g.active[as] = true
			}
		}
	}
}

func (g *grad) valueAt(s int) *ir.Value {
	if s < g.np {
		return g.f.Params[s]
	}
	return g.f.Body[s-g.np]
}

// backward seeds y's adjoint with 1, applies each active instruction's rule
// in reverse order, and returns the adjoints of wrt.
func (g *grad) backward(y *ir.Value, ys int, wrt []*ir.Value, ws []int) ([]*ir.Value, error) {
	b := &ir.Builder{F: g.f}
	g.adj = make([]*ir.Value, g.np+g.n)
	if g.active[ys] {
		g.adj[ys] = b.Constant(y.Type, 1)
	}
	for i := ys - g.np; i >= 0; i-- {
		s := g.np + i
		x, dx := g.f.Body[i], g.adj[s]
		if dx == nil || !g.active[s] {
			continue
		}
		contrib := gradRules[x.Op](b, x, dx)
		if err := b.Err(); err != nil {
			return nil, fmt.Errorf("gradient of %v = %v: %v", x.Ref(), x.Op, err)
		}
		for k, c := range contrib {
			if c == nil {
				continue
			}
			a := x.Args[k]
			as, ok := g.slot(a)
			if !ok || !g.active[as] {
				continue
			}
			if !c.Type.Equal(a.Type) {
				return nil, fmt.Errorf("gradient of %v = %v: operand %d has type %v, its adjoint %v", x.Ref(), x.Op, k, a.Type, c.Type)
			}
			if g.adj[as] == nil {
				g.adj[as] = c
			} else {
				g.adj[as] = b.Binary(ir.OpAdd, g.adj[as], c)
			}
		}
	}
	res := make([]*ir.Value, len(wrt))
	for i, w := range wrt {
		res[i] = g.adj[ws[i]]
		if res[i] == nil {
			res[i] = b.Constant(w.Type, 0)
		}
	}
	return res, b.Err()
}

// prune drops the appended instructions that no value of res uses, and
// renumbers f.
func (g *grad) prune(res []*ir.Value) {
	tail := g.f.Body[g.n:]
	live := make([]bool, len(tail))
	for _, r := range res {
		if r.ID >= g.n && r.ID < len(g.f.Body) && g.f.Body[r.ID] == r {
			live[r.ID-g.n] = true
		}
	}
	for i := len(tail) - 1; i >= 0; i-- {
		if !live[i] {
			continue
		}
		for _, a := range tail[i].Args {
			if !a.IsParam() && a.ID >= g.n && a.ID < len(g.f.Body) && g.f.Body[a.ID] == a {
				live[a.ID-g.n] = true
			}
		}
	}
	kept := g.f.Body[:g.n]
	for i, v := range tail {
		if live[i] {
			kept = append(kept, v)
		}
	}
	clear(g.f.Body[len(kept):])
	g.f.Body = kept
	g.f.Renumber()
}
