package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// attentionGrad merges attention's backward into one kernel (with
// Options.Attention, after remat): the kernel recomputing P from Q, K and
// the row statistics, the kernels of dS (dP = dO·Vᵀ and the softmax's
// backward, over its rows or, where attentionD computed each row's D,
// elementwise; one kernel, or two when dS is converted to a half type),
// and the products dV = Pᵀ·dO, dK = dSᵀ·Q and dQ = dS·K, when those alone
// read P (maybe through an elementwise kernel of it, such as dropout) and
// dS; dropout's rng joins them. The backend computes P and dS by heads
// into buffers of its own. The last of the three gradients is the
// merged kernel's root, the others its outputs.
func (fu *fuser) attentionGrad() {
	for _, v := range fu.f.Body {
		k := fu.kernel[v.ID]
		if k == nil || k.root != v || k.rows == nil && k.dot == nil || k.attention || k.attentionGrad {
			continue
		}
		if why := fu.mergeAttentionGrad(k); why != "" {
			fu.logf("keep %s apart from attention's backward: %s", logName(k.root), why)
		}
	}
}

// mergeAttentionGrad merges the kernels of attention's backward around
// ds, the kernel computing dS (a row kernel, or dO·Vᵀ's with an
// elementwise epilogue), or says why not ("" also when ds is not one).
func (fu *fuser) mergeAttentionGrad(ds *kernel) string {
	sh := ds.root.Type.Shape
	r := len(sh)
	if ds.rows != nil && (!slices.Equal(ds.rows.axes, []int{r - 1}) || !ds.rows.shape.Equal(sh)) || r < 3 {
		return ""
	}
	if ds.rows == nil && (ds.reduces || !ds.dot.Type.Shape.Equal(sh)) {
		return "" // a dot and its elementwise epilogue: dS when D is Σ dO·O (attentionD)
	}
	// The products ds reads: P (computing exp, read by dV as well) and,
	// unless ds has it, dP (read by ds alone).
	var probs, dp *kernel
	for m := range ds.members {
		for _, a := range m.Args {
			o := fu.kernelOf(a)
			if o == nil || o == ds || o.dot == nil || o.rows != nil || o.root != a || ds.members[a] || !a.Type.Shape.Equal(sh) || a.Type.DType != ir.F32 {
				continue
			}
			x := &dp
			if hasMember(o, ir.OpExp) {
				x = &probs
			}
			if *x != nil && *x != o {
				return ""
			}
			*x = o
		}
	}
	if probs == nil || (dp == nil) == (ds.dot == nil) {
		return "" // not attention's backward
	}
	parts := []*kernel{probs, ds}
	if dp != nil {
		if len(dp.outputs) > 0 || !fu.allUsersIn(ds, dp.root) {
			return "dO·Vᵀ has readers other than dS's kernel"
		}
		parts = append(parts, dp)
	}
	p, dsv := probs.root, ds.root
	if len(probs.outputs) > 0 || len(ds.outputs) > 0 || fu.result[p.ID] || fu.result[dsv.ID] {
		return "P's or dS's kernel has other results"
	}
	// The three products: dV reads P (maybe converted), dK and dQ read dS,
	// each as its first operand, contracting the query axis (r-2) or, for
	// dQ, the key axis.
	grads := map[string]*kernel{}
	for _, x := range []struct {
		v    *ir.Value
		axis map[int]string
	}{{p, map[int]string{r - 2: "dV"}}, {dsv, map[int]string{r - 2: "dK", r - 1: "dQ"}}} {
		src := x.v
		// Readers outside ds: a kernel's own instructions (copied into ds
		// or not) and anything ds does not compute.
		inside := func(u *ir.Value) bool { return ds.members[u] && (fu.kernel[u.ID] == nil || fu.kernel[u.ID] == ds) }
		readers := slices.DeleteFunc(slices.Clone(fu.users[src.ID]), inside)
		merged := []*kernel{ds}
		// dV may read P through a kernel of its own computing an
		// elementwise function of it: a conversion to the half type, the
		// causal select when dS reads the unmasked softmax, dropout (which
		// draws its mask there). That kernel may read P through a cheap
		// value that ds copies too (the padding mask's select).
		var others []*kernel
		add := func(c *kernel) {
			if c != nil && c != ds && !slices.Contains(others, c) {
				others = append(others, c)
			}
		}
		for _, u := range readers {
			add(fu.kernelOf(u))
		}
		for _, u := range fu.users[src.ID] {
			if ds.members[u] {
				for _, c := range fu.copies[u.ID] {
					add(c)
				}
			}
		}
		if len(others) == 1 && others[0].dot == nil {
			c := others[0]
			if c.reduces || len(c.outputs) > 0 || !elementwiseKernel(c) || !c.root.Type.Shape.Equal(sh) {
				return fmt.Sprintf("%s reads %s in a kernel of its own", logName(c.root), logName(src))
			}
			parts, merged = append(parts, c), append(merged, c)
			src = c.root
			readers = fu.users[src.ID]
		}
		for _, u := range fu.users[x.v.ID] {
			if ds.members[u] && !fu.onlyIn(u, merged, 4) {
				return fmt.Sprintf("%s, which reads %s, is computed outside dS's kernel too", logName(u), logName(x.v))
			}
		}
		readers = slices.DeleteFunc(slices.Clone(readers), inside)
		for _, u := range readers {
			g := fu.kernelOf(u)
			if g == nil || g.dot != u || u.Args[0] != src || slices.Contains(u.Args[1:], src) || len(g.outputs) > 0 || g.attention {
				return fmt.Sprintf("%s reads %s otherwise than as a gradient's product", logName(u), logName(src))
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
				return fmt.Sprintf("%s has an epilogue", logName(u))
			}
			grads[name] = g
		}
	}
	if len(grads) != 3 {
		return fmt.Sprintf("%d of dV, dK and dQ read P and dS", len(grads))
	}
	// The merged kernel sits at the last gradient's place: everything it
	// reads must be there before P's kernel.
	last := grads["dV"]
	for _, g := range []*kernel{grads["dK"], grads["dQ"]} {
		if g.root.ID > last.root.ID {
			last = g
		}
	}
	parts = append(parts, grads["dV"], grads["dK"], grads["dQ"])
	draws, why := fu.dropoutDraws(parts, sh)
	if why != "" {
		return why
	}
	first := min(probs.root.ID, ds.root.ID)
	if dp != nil {
		first = min(first, dp.root.ID)
	}
	for _, part := range parts {
		for m := range part.members {
			for _, a := range m.Args {
				if !a.IsParam() && !isMember(parts, a) && !slices.Contains(draws, a) && a.ID > first {
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
	fu.addDraws(last, draws)
	d := "each row's D = Σ dO·O computed beforehand (attention-d)"
	if ds.rows != nil {
		d = "dS's kernel sums each row's D over the keys (a form attention-d does not prove)"
	}
	last.dot, last.rows, last.attentionGrad, last.outputs = nil, nil, true, outputs
	fu.logf("fuse attention's backward into %s: P and dS computed a head at a time, never stored; %s", logName(last.root), d)
	return ""
}

// onlyIn reports whether member u of a kernel in ks is computed in those
// kernels alone: one's own, or a cheap value copied into them alone whose
// users are too (up to depth copies deep).
func (fu *fuser) onlyIn(u *ir.Value, ks []*kernel, depth int) bool {
	if slices.Contains(ks, fu.kernel[u.ID]) {
		return true
	}
	if depth == 0 || fu.needed[u.ID] || fu.result[u.ID] || slices.ContainsFunc(fu.copies[u.ID], func(c *kernel) bool { return !slices.Contains(ks, c) }) {
		return false
	}
	for _, w := range fu.users[u.ID] {
		if !isMember(ks, w) || !fu.onlyIn(w, ks, depth-1) {
			return false
		}
	}
	return true
}

// elementwiseKernel reports whether k's members are all elementwise ops,
// constants, iotas, broadcasts and rngs (dropout: P through its mask).
func elementwiseKernel(k *kernel) bool {
	for m := range k.members {
		if !m.Op.IsElementwise() && m.Op != ir.OpConstant && m.Op != ir.OpIota && m.Op != ir.OpBroadcast && m.Op != ir.OpRng {
			return false
		}
	}
	return true
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
