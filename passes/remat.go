package passes

import (
	"slices"

	"xlc/ir"
)

// remat recomputes attention's probabilities for the backward instead of
// keeping them (Options.Attention). For p = exp(y) / broadcast(sum), or p
// masked as select(m, p, 0), computed elementwise from one dot's product
// with row statistics broadcast back, or either through dropout (an rng's
// draws, which a copy draws again), whose first reader is a dot (P·V):
// the later readers of the chain from the dot to p, in groups (one per
// backward), each read a copy placed before the group's first reader,
// reusing the forward's row max and sum. The fusion pass then makes the
// forward one attention kernel that never stores p. With
// Options.RematActivations large activations are recomputed too. Copies
// repeat the same operations on the same values: bit-identical.
func remat(f *ir.Func, opt Options) (bool, error) {
	f.Renumber()
	users, result := readersOf(f)
	before := map[*ir.Value][]*ir.Value{} // first late reader → the copies to put before it
	dead := map[*ir.Value]bool{}          // late readers recomputed in each group's copy
	for _, p := range f.Body {
		if result[p] {
			continue
		}
		var chain []*ir.Value
		var after int
		ok := false
		if opt.Attention {
			chain, after, ok = probabilitiesChain(p, users)
		}
		if !ok && opt.RematActivations {
			chain, after, ok = activationChain(p, users, result)
		}
		if !ok {
			continue
		}
		inChain := map[*ir.Value]bool{}
		for _, w := range chain {
			inChain[w] = true
		}
		// A late elementwise reader of p's shape computed from the chain
		// and forward values alone (softmax-grad's p·s) is recomputed with
		// it: when the backward of two tasks shares it, each group below
		// gets its own instead of reading the other's copy.
		for grew := true; grew; {
			grew = false
			for _, w := range chain {
				for _, u := range users[w] {
					if !inChain[u] && !dead[u] && u.ID > after && !result[u] && rematElementwise(u) && u.Type.Shape.Equal(p.Type.Shape) &&
						!slices.ContainsFunc(u.Args, func(a *ir.Value) bool { return !inChain[a] && !a.IsParam() && a.ID > after }) {
						chain, inChain[u], dead[u], grew = append(chain, u), true, true, true
					}
				}
			}
		}
		// The later readers of the chain's values: outside it, after after,
		// in groups split at gaps of rematGap instructions (one backward
		// each: a second task's, a penalty's). Each group reads a copy of
		// its own, placed before its first reader.
		var late []*ir.Value
		seen := map[*ir.Value]bool{}
		for _, w := range chain {
			for _, u := range users[w] {
				if !inChain[u] && u.ID > after && !seen[u] {
					seen[u] = true
					late = append(late, u)
				}
			}
		}
		slices.SortFunc(late, func(a, b *ir.Value) int { return a.ID - b.ID })
		slices.SortFunc(chain, func(a, b *ir.Value) int { return a.ID - b.ID })
		for len(late) > 0 {
			n := 1
			for n < len(late) && late[n].ID-late[n-1].ID < rematGap {
				n++
			}
			before[late[0]] = append(before[late[0]], copyChain(chain, late[:n])...)
			late = late[n:]
		}
	}
	if len(before) == 0 {
		return false, nil
	}
	body := make([]*ir.Value, 0, len(f.Body))
	for _, v := range f.Body {
		body = append(body, before[v]...)
		if !dead[v] {
			body = append(body, v)
		}
	}
	f.Body = body
	f.Renumber()
	return true, nil
}

// readersOf returns each value's readers in f, each once and in body
// order, and the set of f's results.
func readersOf(f *ir.Func) (users map[*ir.Value][]*ir.Value, result map[*ir.Value]bool) {
	users = map[*ir.Value][]*ir.Value{}
	for _, v := range f.Body {
		for _, a := range v.Args {
			if u := users[a]; len(u) == 0 || u[len(u)-1] != v {
				users[a] = append(u, v)
			}
		}
	}
	result = map[*ir.Value]bool{}
	for _, r := range f.Results {
		result[r] = true
	}
	return users, result
}

// copyChain returns a copy of chain (in order) and makes readers read
// it instead of the original.
func copyChain(chain, readers []*ir.Value) []*ir.Value {
	copyOf := map[*ir.Value]*ir.Value{}
	var copies []*ir.Value
	for _, w := range chain {
		c := &ir.Value{Op: w.Op, Args: slices.Clone(w.Args), Type: cloneType(w.Type), Attrs: w.Attrs}
		for i, a := range c.Args {
			if ca, ok := copyOf[a]; ok {
				c.Args[i] = ca
			}
		}
		copyOf[w] = c
		copies = append(copies, c)
	}
	for _, u := range readers {
		for i, a := range u.Args {
			if c, ok := copyOf[a]; ok {
				u.Args[i] = c
			}
		}
	}
	return copies
}

// probabilitiesChain is remat's rule for attention: p is a softmax's
// probabilities, or those through dropout, whose first reader is P·V (the
// dot reading p as its first operand); the chain runs from the scores' dot
// (and dropout's rng) to p, and the reads after P·V are late.
func probabilitiesChain(p *ir.Value, users map[*ir.Value][]*ir.Value) ([]*ir.Value, int, bool) {
	us := users[p] // in body order
	if !(softmaxOutput(p) || throughDropout(p)) || len(us) == 0 || us[0].Op != ir.OpDot || us[0].Args[0] != p || slices.Contains(us[0].Args[1:], p) {
		return nil, 0, false
	}
	chain, ok := rematChain(p)
	return chain, us[0].ID, ok
}

// rematChain returns, in body order, the values from a dot to p that p's
// copy recomputes: the dot, rngs of p's shape, and the elementwise ops of
// p's shape on the way that depend on them other than through a reduction
// (a reduction and its broadcast are read as they are). It needs exactly
// one dot, of p's shape.
func rematChain(p *ir.Value) ([]*ir.Value, bool) {
	var dot *ir.Value
	two := false
	onPath := map[*ir.Value]bool{}
	seen := map[*ir.Value]bool{}
	var walk func(w *ir.Value) bool
	walk = func(w *ir.Value) bool {
		if seen[w] {
			return onPath[w]
		}
		seen[w] = true
		switch {
		case w.Op == ir.OpRng:
			// Counter-based: a copy draws the same numbers (dropout's mask).
			onPath[w] = w.Type.Shape.Equal(p.Type.Shape)
		case w.Op == ir.OpDot:
			if dot != nil && dot != w {
				two = true
				return false
			}
			dot = w
			onPath[w] = w.Type.Shape.Equal(p.Type.Shape)
		case (w.Op.IsElementwise() || w.Op == ir.OpSelect) && w.Type.Shape.Equal(p.Type.Shape):
			for _, a := range w.Args {
				if walk(a) {
					onPath[w] = true
				}
			}
		}
		return onPath[w]
	}
	if !walk(p) || two || dot == nil || !onPath[dot] {
		return nil, false
	}
	var chain []*ir.Value
	for w := range onPath {
		if onPath[w] {
			chain = append(chain, w)
		}
	}
	slices.SortFunc(chain, func(a, b *ir.Value) int { return a.ID - b.ID })
	return chain, true
}

// Remat's rule for activations: a value that a dot reads in the forward
// (a GELU's output, a layer norm's) and again, rematGap or more
// instructions later, in the backward (the weight's gradient), computed by
// at most maxRematOps elementwise ops from values stored that long anyway
// (the GELU's input, the residual stream), constants and broadcasts (a
// norm's row statistics). Values under rematMinBytes are kept: the memory
// they would free is not worth a kernel.
const (
	rematGap      = 32
	maxRematOps   = 16
	rematMinBytes = 1 << 20
)

// activationChain returns the chain of elementwise ops computing p from
// values that live past its late reads, in body order, and the position
// after which reads are late: the last of p's readers before the first
// gap of rematGap instructions.
func activationChain(p *ir.Value, users map[*ir.Value][]*ir.Value, result map[*ir.Value]bool) ([]*ir.Value, int, bool) {
	us := users[p]
	if p.IsParam() || !rematElementwise(p) || len(us) < 2 || us[0].Op != ir.OpDot ||
		p.Type.Shape.NumElements()*p.Type.DType.Size() < rematMinBytes {
		return nil, 0, false
	}
	split := 0
	for i := 1; i < len(us) && split == 0; i++ {
		if us[i].ID-us[i-1].ID >= rematGap {
			split = i
		}
	}
	if split == 0 {
		return nil, 0, false
	}
	lives := func(a *ir.Value) bool { // past the first late read anyway
		if a.IsParam() || result[a] {
			return true
		}
		au := users[a]
		return len(au) > 0 && au[len(au)-1].ID >= us[split].ID
	}
	chain := []*ir.Value{p}
	seen := map[*ir.Value]bool{p: true}
	for i := 0; i < len(chain); i++ {
		for _, a := range chain[i].Args {
			switch {
			case seen[a]:
			case !a.IsParam() && (a.Op == ir.OpConstant || a.Op == ir.OpIota || a.Op == ir.OpBroadcast):
			case lives(a):
			case rematElementwise(a) && a.Type.Shape.Equal(p.Type.Shape) && len(chain) < maxRematOps:
				chain = append(chain, a)
			default:
				return nil, 0, false
			}
			seen[a] = true
		}
	}
	slices.SortFunc(chain, func(a, b *ir.Value) int { return a.ID - b.ID })
	return chain, us[split-1].ID, true
}

// rematElementwise reports whether w is an elementwise float op that a
// copy may repeat.
func rematElementwise(w *ir.Value) bool {
	return !w.IsParam() && (w.Op.IsElementwise() || w.Op == ir.OpSelect) && w.Type.DType.IsFloat()
}
