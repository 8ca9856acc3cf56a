package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// attention merges attention's three forward kernels into one (with
// Options.Attention): the scores' dot kernel, the softmax's row kernel over
// its last axis, and the dot kernel of P·V that is the probabilities' one
// reader. The backend computes a block of query rows at a time, scores,
// softmax and product, and never stores P (FlashAttention's forward,
// Dao 2022). The row kernel's outputs (the row max and sum the backward
// reads, once remat has made it recompute P) become the kernel's. A
// scores kernel that already ends in the softmax (a dot kernel with a row
// epilogue) counts as the first two. Dropout's rng, read by the row kernel
// alone, joins it: the kernel draws the numbers itself.
func (fu *fuser) attention() {
	for _, v := range fu.f.Body {
		k := fu.kernel[v.ID]
		if k == nil || k.root != v || k.dot == nil || k.attention {
			continue
		}
		p := k.dot.Args[0]
		if p.IsParam() {
			continue
		}
		if !probabilitiesRoot(p) && !throughDropout(p) {
			continue
		}
		if why := fu.mergeAttention(k, p); why != "" {
			fu.logf("keep %s out of %s: %s", logName(p), logName(k.root), why)
		}
	}
}

// probabilitiesRoot reports whether p is a softmax's probabilities, masked
// or not, possibly converted (to the half type P·V reads).
func probabilitiesRoot(p *ir.Value) bool {
	if p.Op == ir.OpConvert {
		p = p.Args[0]
	}
	return softmaxOutput(p)
}

// throughDropout reports whether p, elementwise, is computed from a
// softmax's probabilities and an rng's draws (dropout's mask).
func throughDropout(p *ir.Value) bool {
	var probs, draws bool
	var walk func(v *ir.Value, depth int)
	walk = func(v *ir.Value, depth int) {
		switch {
		case v.IsParam() || depth == 0:
		case v.Op == ir.OpRng:
			draws = true
		case probabilitiesRoot(v):
			probs = true
		case v.Op.IsElementwise() || v.Op == ir.OpSelect || v.Op == ir.OpBroadcast:
			for _, a := range v.Args {
				walk(a, depth-1)
			}
		}
	}
	walk(p, 5)
	return probs && draws
}

// mergeAttention merges the kernels computing p, attention's
// probabilities, into k, the kernel of P·V, or says why not.
func (fu *fuser) mergeAttention(k *kernel, p *ir.Value) string {
	d := k.dot
	rows := fu.kernel[p.ID]
	r := p.Type.Rank()
	lb, _, lc, _ := ir.DotDims(d.Attrs)
	switch {
	case rows == nil || rows.root != p || rows.rows == nil:
		return "the probabilities are not a row kernel's result"
	case len(fu.users[p.ID]) != 1 || fu.result[p.ID]:
		return "the probabilities have readers other than P·V (remat makes the backward recompute them)"
	case r < 2 || !slices.Equal(lc, []int{r - 1}) || !slices.Equal(lb, iotaInts(r-2)) || slices.Contains(d.Args[1:], p):
		return "P·V does not contract the probabilities' last axis over their leading batch axes"
	case !rows.rows.shape.Equal(p.Type.Shape) || !slices.Equal(rows.rows.axes, []int{r - 1}):
		return "the softmax does not reduce the probabilities' last axis"
	case len(k.outputs) > 0:
		return "P·V's kernel has outputs"
	}
	parts := []*kernel{rows}
	var maxima []*ir.Value
	if rows.dot == nil {
		scores, mx := fu.scoresKernel(rows)
		if scores == nil {
			return "the softmax does not read a dot kernel's product of its shape alone"
		}
		parts, maxima = append(parts, scores), mx
	}
	for _, o := range rows.outputs {
		if u := fu.readBefore(o, k.root.ID, append(parts, k)...); u != nil {
			return fmt.Sprintf("%s reads the row kernel's output %s before P·V", logName(u), logName(o))
		}
	}
	draws, why := fu.dropoutDraws([]*kernel{rows}, rows.rows.shape)
	if why != "" {
		return why
	}
	if !fu.take() {
		return "out of fuel"
	}
	fu.addDraws(k, draws)
	outputs, shape := rows.outputs, rows.rows
	for _, m := range maxima { // computed by rows from now on, not copied
		fu.kernel[m.ID] = rows
		fu.copies[m.ID] = slices.DeleteFunc(fu.copies[m.ID], func(c *kernel) bool { return c == rows })
		outputs = append(outputs, m)
	}
	for _, part := range parts {
		fu.absorb(k, part)
	}
	k.outputs, k.rows, k.attention = outputs, shape, true
	fu.logf("fuse the scores and softmax of %s into %s: attention in one kernel, the probabilities never stored", logName(p), logName(k.root))
	return ""
}

// scoresKernel returns the dot kernel without outputs whose root, of the
// row kernel rows' shape, only rows reads (the scores), and the row maxima that
// other kernels read and rows recomputes: each is a kernel of its own
// reading the scores, which the merged kernel writes as an output instead.
// Nil when the scores have other readers, or there is no such kernel or
// more than one.
func (fu *fuser) scoresKernel(rows *kernel) (*kernel, []*ir.Value) {
	var found *kernel
	var maxima []*ir.Value
	for m := range rows.members {
		for _, a := range m.Args {
			s := fu.kernelOf(a)
			if s == nil || s == rows || s.dot == nil || s.root != a || rows.members[a] {
				continue
			}
			if len(s.outputs) > 0 || !a.Type.Shape.Equal(rows.rows.shape) || fu.result[a.ID] || found != nil && found != s {
				return nil, nil
			}
			found = s
		}
	}
	if found == nil {
		return nil, nil
	}
	for _, u := range fu.users[found.root.ID] {
		o := fu.kernel[u.ID]
		switch {
		case fu.onlyIn(u, []*kernel{rows}, 4):
			// rows' own, or a cheap value copied into rows alone.
		case rows.members[u] && isReduce(u) && o != nil && o.root == u && len(o.members) == 1:
			maxima = append(maxima, u)
		default:
			return nil, nil
		}
	}
	return found, maxima
}

// dropoutDraws returns the rngs of shape sh that the kernels ks read
// (dropout's draws), each alone in its kernel or in none and read by ks
// alone, in body order, or says why one is not.
func (fu *fuser) dropoutDraws(ks []*kernel, sh ir.Shape) ([]*ir.Value, string) {
	var draws []*ir.Value
	for _, k := range ks {
		for m := range k.members {
			for _, a := range m.Args {
				if a.Op != ir.OpRng || isMember(ks, a) || slices.Contains(draws, a) {
					continue
				}
				for _, u := range fu.users[a.ID] {
					if !isMember(ks, u) {
						return nil, fmt.Sprintf("dropout's draws %s have a reader outside attention, %s", logName(a), logName(u))
					}
				}
				if o := fu.kernel[a.ID]; o != nil && (o.root != a || len(o.members) > 1) || fu.result[a.ID] || !a.Type.Shape.Equal(sh) {
					return nil, fmt.Sprintf("dropout's draws %s are not the probabilities' shape, or share a kernel", logName(a))
				}
				draws = append(draws, a)
			}
		}
	}
	slices.SortFunc(draws, func(a, b *ir.Value) int { return a.ID - b.ID })
	return draws, ""
}

// addDraws makes k draw the rngs draws itself.
func (fu *fuser) addDraws(k *kernel, draws []*ir.Value) {
	for _, d := range draws {
		if o := fu.kernel[d.ID]; o != nil {
			fu.absorb(k, o)
		}
		k.members[d] = true
		fu.kernel[d.ID] = k
	}
}

// kernelOf is the kernel that computes a, or nil (a parameter, or an
// instruction of no kernel).
func (fu *fuser) kernelOf(a *ir.Value) *kernel {
	if a.IsParam() {
		return nil
	}
	return fu.kernel[a.ID]
}

// iotaInts is [0, 1, ..., n-1].
func iotaInts(n int) []int {
	s := make([]int, max(n, 0))
	for i := range s {
		s[i] = i
	}
	return s
}
