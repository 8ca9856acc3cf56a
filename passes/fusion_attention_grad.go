package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// attentionGrad merges attention's backward into one kernel (with
// Options.Attention, after remat): the kernel recomputing the
// probabilities P from Q, K and the row statistics, the kernel of dS (the
// product dO·Vᵀ and the softmax's backward over its rows, reading P), and
// the three products dV = Pᵀ·dO, dK = dSᵀ·Q and dQ = dS·K, when those
// are the only readers of P and dS. The backend walks a head's strips of
// query rows, accumulating dV and dK, and never stores P or dS
// (FlashAttention-2's backward). The merged kernel computes the three
// gradients; the last of them in the function is its root, the others its
// outputs.
func (fu *fuser) attentionGrad() {
	for _, v := range fu.f.Body {
		k := fu.kernel[v.ID]
		if k == nil || k.root != v || k.dot == nil || k.rows == nil || k.attention {
			continue
		}
		if why := fu.mergeAttentionGrad(k); why != "" {
			fu.logf("keep %s apart from attention's backward: %s", logName(k.root), why)
		}
	}
}

// mergeAttentionGrad merges the kernels of attention's backward around
// ds, the dot kernel with a row epilogue computing dS, or says why not
// ("" also when ds is not one).
func (fu *fuser) mergeAttentionGrad(ds *kernel) string {
	d := ds.dot
	r := d.Type.Rank()
	// P: the root of a dot kernel without rows that ds reads, of the
	// product's shape.
	var probs *kernel
	for m := range ds.members {
		for _, a := range m.Args {
			if o := fu.kernelOf(a); o != nil && o != ds && o.dot != nil && o.rows == nil && o.root == a && !ds.members[a] && a.Type.Equal(d.Type) {
				if probs != nil && probs != o {
					return ""
				}
				probs = o
			}
		}
	}
	if probs == nil || r < 3 || !hasMember(probs, ir.OpExp) {
		return "" // not attention's backward
	}
	p, dsv := probs.root, ds.root
	if len(probs.outputs) > 0 || len(ds.outputs) > 0 || fu.result[p.ID] || fu.result[dsv.ID] || !dsv.Type.Equal(d.Type) {
		return "P's or dS's kernel has other results"
	}
	// The three products: dV reads P, dK and dQ read dS, each as its first
	// operand, contracting the query axis (r-2) or, for dQ, the key axis.
	grads := map[string]*kernel{}
	for _, x := range []struct {
		v    *ir.Value
		axis map[int]string
	}{{p, map[int]string{r - 2: "dV"}}, {dsv, map[int]string{r - 2: "dK", r - 1: "dQ"}}} {
		for _, u := range fu.users[x.v.ID] {
			if ds.members[u] {
				continue
			}
			g := fu.kernelOf(u)
			if g == nil || g.dot != u || u.Args[0] != x.v || slices.Contains(u.Args[1:], x.v) || len(g.outputs) > 0 || g.attention {
				return fmt.Sprintf("%s reads %s otherwise than as a gradient's product", logName(u), logName(x.v))
			}
			lb, _, lc, _ := ir.DotDims(u.Attrs)
			name := ""
			if len(lc) == 1 && slices.Equal(lb, iotaInts(r-2)) {
				name = x.axis[lc[0]]
			}
			if name == "" || grads[name] != nil {
				return fmt.Sprintf("%s is not one of dV, dK and dQ", logName(u))
			}
			if g.root != u && (g.root.Op != ir.OpTranspose || len(g.members) != 2) {
				return fmt.Sprintf("%s has an epilogue (the strips accumulate it)", logName(u))
			}
			grads[name] = g
		}
	}
	if len(grads) != 3 {
		return fmt.Sprintf("%d of dV, dK and dQ read P and dS", len(grads))
	}
	// The merged kernel sits at the last gradient's place: everything it
	// reads must be there before P's kernel.
	parts := []*kernel{probs, ds, grads["dV"], grads["dK"], grads["dQ"]}
	last := grads["dV"]
	for _, g := range parts[3:] {
		if g.root.ID > last.root.ID {
			last = g
		}
	}
	for _, part := range parts {
		for m := range part.members {
			for _, a := range m.Args {
				if !a.IsParam() && !isMember(parts, a) && a.ID > probs.root.ID {
					return fmt.Sprintf("%s, which the backward reads, comes after P's kernel", logName(a))
				}
			}
		}
	}
	if !fu.take() {
		return "out of fuel"
	}
	var outputs []*ir.Value
	for _, name := range []string{"dV", "dK", "dQ"} {
		if g := grads[name]; g != last {
			outputs = append(outputs, g.root)
		}
	}
	for _, part := range parts {
		if part != last {
			fu.absorb(last, part)
		}
	}
	last.dot, last.rows, last.attentionGrad, last.outputs = nil, nil, true, outputs
	fu.logf("fuse attention's backward into %s: P and dS recomputed per strip of queries, never stored", logName(last.root))
	return ""
}

// hasMember reports whether k has a member with op.
func hasMember(k *kernel, op ir.Op) bool {
	for m := range k.members {
		if m.Op == op {
			return true
		}
	}
	return false
}

// isMember reports whether v is a member of one of ks.
func isMember(ks []*kernel, v *ir.Value) bool {
	return slices.ContainsFunc(ks, func(k *kernel) bool { return k.members[v] })
}
