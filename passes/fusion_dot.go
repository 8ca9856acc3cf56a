package passes

import (
	"slices"

	"xlc/ir"
)

// Epilogues are searched over at most this many waves of users and members.
const (
	maxEpilogueWaves   = 16
	maxEpilogueMembers = 64
	maxDependsVisits   = 512
)

// dotEpilogues makes a kernel of every dot and the largest elementwise
// epilogue with one output found by adding the users of the group wave by
// wave: the dot's users may be several when they meet again in the
// epilogue's one output (GELU's backward reads the product twice).
func (fu *fuser) dotEpilogues() {
	for _, d := range fu.f.Body {
		if d.Op != ir.OpDot {
			continue
		}
		k := &kernel{root: d, members: map[*ir.Value]bool{d: true}, dot: d}
		fu.kernel[d.ID] = k
		if fu.result[d.ID] || len(fu.users[d.ID]) == 0 {
			fu.logf("keep %s: %s", logName(d), fu.usersText(d))
			continue
		}
		eligible := func(u *ir.Value, in map[*ir.Value]bool) bool {
			if !u.Op.IsElementwise() || !u.Type.Shape.Equal(d.Type.Shape) || fu.kernel[u.ID] != nil || widensHalf(u) {
				return false
			}
			for _, a := range u.Args {
				if !in[a] && fu.dependsOn(a, in, d.ID) {
					return false
				}
			}
			return true
		}
		in := map[*ir.Value]bool{d: true}
		order := []*ir.Value{d}
		best := 1
		for wave := 0; wave < maxEpilogueWaves && len(order) < maxEpilogueMembers; wave++ {
			var add []*ir.Value
			for _, m := range order {
				for _, u := range fu.users[m.ID] {
					if !in[u] && !slices.Contains(add, u) && eligible(u, in) {
						add = append(add, u)
					}
				}
			}
			if len(add) == 0 {
				break
			}
			for _, u := range add {
				in[u] = true
				order = append(order, u)
			}
			if fu.exits(order, in) == 1 && (fu.fuel < 0 || len(order)-1 <= fu.fuel) {
				best = len(order)
			}
		}
		if best == 1 && len(fu.users[d.ID]) > 1 {
			fu.logf("keep %s: %s", logName(d), fu.usersText(d))
			continue
		}
		if best == 1 {
			u := fu.users[d.ID][0]
			if fu.transposedResult(d, u) {
				if fu.take() {
					fu.logf("fuse %s into %s: the dot writes its result in the transposed order", logName(u), logName(d))
					k.members[u] = true
					fu.kernel[u.ID] = k
					k.root = u
				} else {
					fu.logf("keep %s out of %s: out of fuel", logName(u), logName(d))
				}
				continue
			}
			if !u.Op.IsElementwise() || !u.Type.Shape.Equal(d.Type.Shape) {
				fu.logf("keep %s: its user %s is not elementwise over its output", logName(d), logName(u))
			} else if fu.fuel == 0 {
				fu.logf("keep %s: out of fuel", logName(d))
			} else {
				fu.logf("keep %s: no elementwise epilogue with a single output", logName(d))
			}
			continue
		}
		order = order[:best]
		slices.SortFunc(order, func(a, b *ir.Value) int { return a.ID - b.ID })
		for _, m := range order[1:] {
			fu.take()
			fu.logf("fuse %s into %s: elementwise epilogue of a dot", logName(m), logName(d))
			k.members[m] = true
			fu.kernel[m.ID] = k
		}
		k.root = order[len(order)-1]
		for _, m := range order {
			if fu.result[m.ID] || slices.ContainsFunc(fu.users[m.ID], func(u *ir.Value) bool { return !k.members[u] }) {
				k.root = m
			}
		}
	}
}

// rowEpilogue reports whether the dot kernel o, whose root p is a producer
// of the row kernel k, may join k: k's rows are p's rows (its reductions
// reduce the product's last axis), k's root has the product's shape, p is
// an f32 product (or an elementwise epilogue of one, not transposed) used
// only in k, and neither kernel has outputs. The backends then run the
// rows right after the product's part that computes them, while it is in
// cache (attention's softmax and its backward over the scores).
func (fu *fuser) rowEpilogue(k, o *kernel, p *ir.Value) bool {
	if !fu.mayRowEpilogue(k, o, p) || k.rows == nil {
		return false
	}
	r := p.Type.Rank()
	return k.rows.shape.Equal(p.Type.Shape) && len(k.rows.axes) == 1 && k.rows.axes[0] == r-1 && fu.allUsersIn(k, p)
}

// mayRowEpilogue is what rowEpilogue checks that does not change as k
// grows: the kinds of k and o, p and k's root.
func (fu *fuser) mayRowEpilogue(k, o *kernel, p *ir.Value) bool {
	return o.dot != nil && p == o.root && k.dot == nil && len(k.outputs) == 0 && len(o.outputs) == 0 &&
		p.Op != ir.OpTranspose && p.Type.DType == ir.F32 && o.dot.Type.DType == ir.F32 && p.Type.Shape.Equal(o.dot.Type.Shape) &&
		k.root.Type.Shape.Equal(p.Type.Shape) && k.root.Type.DType == ir.F32 && !fu.result[p.ID]
}

// transposedResult reports whether u, the one user of the dot d, is a
// transpose that a matrix product can write directly
// (ir.TransposedDotStrides): attention's head merge.
func (fu *fuser) transposedResult(d, u *ir.Value) bool {
	if u.Op != ir.OpTranspose || fu.kernel[u.ID] != nil {
		return false
	}
	lb, _, lc, _ := ir.DotDims(d.Attrs)
	_, ok := ir.TransposedDotStrides(d.Type.Shape, len(lb), d.Args[0].Type.Rank()-len(lb)-len(lc), u.Attrs.Ints("perm"))
	return ok
}

// exits counts the members of a group that are used outside it.
func (fu *fuser) exits(members []*ir.Value, in map[*ir.Value]bool) int {
	n := 0
	for _, m := range members {
		if fu.result[m.ID] || slices.ContainsFunc(fu.users[m.ID], func(u *ir.Value) bool { return !in[u] }) {
			n++
		}
	}
	return n
}

// dependsOn reports whether v is computed from a member of in; only values
// after the instruction numbered from can be. A search that grows too large
// answers true, which only keeps an epilogue smaller.
func (fu *fuser) dependsOn(v *ir.Value, in map[*ir.Value]bool, from int) bool {
	seen := map[*ir.Value]bool{}
	stack := []*ir.Value{v}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x.IsParam() || x.ID < from || seen[x] {
			continue
		}
		if in[x] || len(seen) > maxDependsVisits {
			return true
		}
		seen[x] = true
		stack = append(stack, x.Args...)
	}
	return false
}

// widensHalf reports whether u converts a value rounded to a narrower type
// back (a pre-activation kept in half, precision_preact.go): the kernel
// writes the narrow value, and its readers widen it.
func widensHalf(u *ir.Value) bool {
	return u.Op == ir.OpConvert && u.Args[0].Op == ir.OpConvert &&
		u.Args[0].Type.DType.Size() < u.Type.DType.Size()
}
