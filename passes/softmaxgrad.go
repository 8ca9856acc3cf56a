package passes

import (
	"slices"

	"xlc/ir"
)

// softmaxGrad makes the backward of a softmax read its output instead of
// its input. For p = z / broadcast(s), s = reduce_sum(z), z = exp(x),
// exp's gradient rule reads z in the backward, and a fused kernel
// recomputes it from x, keeping x (attention's scores, B×H×S×S) alive
// until then. Every later use of z reads p · broadcast(s) instead; where p
// is stored masked, pm = select(m, p, 0), a later use of p or z that only
// counts where m holds (maskedRead) reads pm. The backward then reads what
// the forward stored and does no exp. p · s is z to within a rounding.
func softmaxGrad(f *ir.Func) (bool, error) {
	users := map[*ir.Value][]*ir.Value{}
	for _, v := range f.Body {
		for _, a := range v.Args {
			users[a] = append(users[a], v)
		}
	}
	type norm struct {
		p, pm, b, s, q, qm *ir.Value
		m                  *ir.Value // pm's mask
	}
	byZ, byP := map[*ir.Value]*norm{}, map[*ir.Value]*norm{}
	var body []*ir.Value
	changed := false
	for _, v := range f.Body {
		for i, a := range v.Args {
			if n := byP[a]; n != nil && n.pm != nil && v != n.pm && maskedRead(v, i, n.m, users, 8) {
				v.Args[i] = n.pm
				changed = true
				continue
			}
			n := byZ[a]
			if n == nil || v == n.s {
				continue
			}
			if n.pm != nil && maskedRead(v, i, n.m, users, 8) {
				if n.qm == nil {
					n.qm = &ir.Value{Op: ir.OpMul, Args: []*ir.Value{n.pm, n.b}, Type: cloneType(n.p.Type)}
					body = append(body, n.qm)
				}
				v.Args[i] = n.qm
			} else {
				if n.q == nil {
					n.q = &ir.Value{Op: ir.OpMul, Args: []*ir.Value{n.p, n.b}, Type: cloneType(n.p.Type)}
					body = append(body, n.q)
				}
				v.Args[i] = n.q
			}
			changed = true
		}
		body = append(body, v)
		if z, b, s := softmaxParts(v); z != nil && byZ[z] == nil {
			n := &norm{p: v, b: b, s: s}
			byZ[z], byP[v] = n, n
		}
		if n := byP[arg(v, 1)]; v.Op == ir.OpSelect && n != nil && n.pm == nil && isConst(v.Args[2], 0) {
			n.pm, n.m = v, v.Args[0]
		}
	}
	if !changed {
		return false, nil
	}
	f.Body = body
	f.Renumber()
	return true, nil
}

// arg is v's operand i, or nil.
func arg(v *ir.Value, i int) *ir.Value {
	if i < len(v.Args) {
		return v.Args[i]
	}
	return nil
}

// maskedRead reports whether u reads its operand i only where the mask m
// holds: it selects on m and the operand is the kept branch, multiplies
// it by a value that is 0 elsewhere (zeroOutside), or is an elementwise op
// whose own value counts only where m holds (maskedOnly).
func maskedRead(u *ir.Value, i int, m *ir.Value, users map[*ir.Value][]*ir.Value, depth int) bool {
	switch {
	case u.Op == ir.OpSelect:
		return u.Args[0] == m && i == 1
	case u.Op == ir.OpMul && zeroOutside(u.Args[1-i], m, 4):
		return true
	}
	return u.Op.IsElementwise() && slices.Equal(u.Type.Shape, u.Args[i].Type.Shape) && maskedOnly(u, m, users, depth-1)
}

// maskedOnly reports whether v's value counts only where m holds: every
// user reads it so (maskedRead), up to depth users deep. A reduction or a
// result sees every element.
func maskedOnly(v, m *ir.Value, users map[*ir.Value][]*ir.Value, depth int) bool {
	if depth <= 0 || len(users[v]) == 0 {
		return false
	}
	for _, u := range users[v] {
		for i, a := range u.Args {
			if a == v && !maskedRead(u, i, m, users, depth) {
				return false
			}
		}
	}
	return true
}

// zeroOutside reports whether w is 0 wherever the mask m does not hold.
func zeroOutside(w, m *ir.Value, depth int) bool {
	switch {
	case w.Op == ir.OpSelect:
		return w.Args[0] == m && isConst(w.Args[2], 0)
	case depth == 0:
		return false
	case w.Op == ir.OpMul:
		return zeroOutside(w.Args[0], m, depth-1) || zeroOutside(w.Args[1], m, depth-1)
	case w.Op == ir.OpNeg:
		return zeroOutside(w.Args[0], m, depth-1)
	}
	return false
}

// softmaxParts returns, when p = div(z, b) normalizes the float z = exp(x)
// by b = broadcast(reduce_sum(z)) back along the summed axes, z, b and the
// sum; otherwise nils.
func softmaxParts(p *ir.Value) (z, b, s *ir.Value) {
	if p.Op != ir.OpDiv || !p.Type.DType.IsFloat() {
		return nil, nil, nil
	}
	z, b = p.Args[0], p.Args[1]
	if z.Op != ir.OpExp || b.Op != ir.OpBroadcast {
		return nil, nil, nil
	}
	s = b.Args[0]
	if s.Op != ir.OpReduceSum || s.Args[0] != z {
		return nil, nil, nil
	}
	var kept []int
	axes := s.Attrs.Ints("axes")
	for d := range z.Type.Rank() {
		if !slices.Contains(axes, d) {
			kept = append(kept, d)
		}
	}
	if !slices.Equal(b.Attrs.Ints("dims"), kept) {
		return nil, nil, nil
	}
	return z, b, s
}
