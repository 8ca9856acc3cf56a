package passes

import (
	"fmt"
	"maps"
	"slices"

	"xlc/ir"
)

// Multi-output fusion. A kernel may write several results: its root and its
// outputs (kernel.outputs), which become the fusion's output instructions.
// Two rules make them:
//
//   - a producer used outside the kernel too joins it as an output (fill,
//     after nothing else can join): it is computed once, in the kernel's
//     loop, instead of in a kernel of its own that writes it for the
//     kernel to read back (layer norm's mean and deviation, softmax's sums,
//     the optimizer's moments beside the parameter update); one with a
//     value per row of a loop kernel joins it when the reduction it comes
//     from then joins too, making it a row kernel (rowSource);
//   - siblings, kernels that read the same large value, merge into one
//     (siblings): the value is read once (a layer norm's gain and bias
//     gradients, column sums of one operand).
//
// Either way the kernel stays where its root is in f: every instruction
// that reads an output from memory comes after the root (readBefore), so no
// cycle can form, and rewrite only has to move cheap values left in f that
// read an output after the fusion (schedule). A kernel's results share one
// loop: a loop kernel's all have the root's shape; a row kernel's are of
// the rows' shape or have one value per row (trailing axes reduced), or,
// over leading axes, all are column sums (see resultsFit).

// maxSiblingScan is how many of the latest kernels reading a value a new
// reader is compared with, so that a value read by thousands of kernels
// (a scalar of the optimizer) costs linear time.
const maxSiblingScan = 4

// readBefore returns an instruction that reads v, which the kernels ins
// (one, or two about to merge) are to write, from memory at or before pos
// (the position of the fusion that writes it), or nil. An instruction's
// position is its kernel's root's. Readers are found through cheap values,
// which are copied into their users' kernels: a member of ins reached
// through members of ins only reads v inside the kernel; a cheap value that
// is a result of f stays in f and reads v itself; any other instruction
// reads it from memory.
func (fu *fuser) readBefore(v *ir.Value, pos int, ins ...*kernel) *ir.Value {
	member := func(u *ir.Value) (in, real bool) {
		for _, k := range ins {
			if k.members[u] {
				in = true
			}
			if fu.kernel[u.ID] == k {
				real = true
			}
		}
		return in, real
	}
	seen := map[*ir.Value]bool{}
	var walk func(v *ir.Value, inside bool) *ir.Value
	walk = func(v *ir.Value, inside bool) *ir.Value {
		for _, u := range fu.users[v.ID] {
			if u.ID > pos || seen[u] {
				continue // all of u's readers come after pos
			}
			seen[u] = true
			in, real := member(u)
			switch {
			case in && !inside:
				return u // the kernel reads from memory a value computed from v
			case real:
			case fu.isCheap(u) && !fu.result[u.ID]:
				if fu.storedLater(u, pos) {
					return u // it will be a kernel of its own, before pos, reading v
				}
				if r := walk(u, inside && in); r != nil {
					return r
				}
			default:
				if k := fu.kernel[u.ID]; k == nil || k.root.ID < pos {
					return u
				}
			}
		}
		return nil
	}
	return walk(v, true)
}

// storedLater reports whether the cheap value u, before pos, will stay in
// f (isNeeded) because a user after pos, which grow has placed already,
// reads it from memory (readsFromMemory: a scatter_add). grow then roots a
// kernel at u, which would read an output of the kernel at pos before it
// is written.
func (fu *fuser) storedLater(u *ir.Value, pos int) bool {
	for _, w := range fu.users[u.ID] {
		if w.ID > pos && fu.readsFromMemory(w, u) {
			return true
		}
	}
	return false
}

// resultsFit reports whether the values vs can be results of one kernel
// whose row structure is r (nil: a loop kernel over the shape of vs[0]).
func resultsFit(r *rowShape, vs []*ir.Value) bool {
	for _, v := range vs {
		s := v.Type.Shape
		switch {
		case r == nil:
			if !s.Equal(vs[0].Type.Shape) {
				return false
			}
		case leadingRows(r):
			if v.Op != ir.OpReduceSum || !v.Type.DType.IsFloat() || !slices.Equal(v.Attrs.Ints("axes"), r.axes) ||
				!v.Args[0].Type.Shape.Equal(r.shape) || s.NumElements() < 16 {
				return false
			}
		case trailingAxes(r):
			if !s.Equal(r.shape) && !s.SameSqueezed(r.rshape) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// leadingRows reports whether r reduces axes 0..k-1 (column sums).
func leadingRows(r *rowShape) bool {
	for i, a := range r.axes {
		if a != i {
			return false
		}
	}
	return len(r.axes) > 0 && len(r.axes) < len(r.shape)
}

// trailingAxes reports whether r reduces the last axes (contiguous rows).
func trailingAxes(r *rowShape) bool {
	for i, a := range r.axes {
		if a != len(r.shape)-len(r.axes)+i {
			return false
		}
	}
	return len(r.axes) > 0
}

// results are k's results: its root, then its outputs.
func (k *kernel) results() []*ir.Value {
	return append([]*ir.Value{k.root}, k.outputs...)
}

// addOutput makes p, a producer of k that is also used outside it, one of
// k's results, if it may be: k is not a dot kernel, p is an elementwise,
// shape or reduce op and not cheap (cheap values are copied instead), every
// user of p outside k comes after k's root, and the results still share
// one loop, or will once the reduction rowSource finds has joined. It logs
// a decision to fuse and spends fuel; otherwise it returns why not (""
// where the rule does not apply).
func (fu *fuser) addOutput(k *kernel, p *ir.Value) (ok bool, why string) {
	into := logName(k.root)
	switch {
	case k.dot != nil || fu.kernel[p.ID] != nil || fu.isCheap(p) || alone(p) != "" || secondWholeSum(k, p):
		return false, ""
	case !isLoopOp(p) && !isReduce(p):
		return false, ""
	}
	if u := fu.readBefore(p, k.root.ID, k); u != nil {
		return false, fmt.Sprintf("%s reads it before the kernel", logName(u))
	}
	r := k.rows
	if isReduce(p) && r == nil {
		r = newRowShape(p)
	}
	var red *ir.Value // the reduction that will make k a row kernel
	if !resultsFit(r, append(k.results(), p)) {
		if red = fu.rowSource(k, p); red == nil {
			return false, "as an output it would need another loop"
		}
	}
	if fu.fuel == 0 {
		return false, "out of fuel"
	}
	if isReduce(p) {
		if err := fu.addReduction(k, p); err != nil {
			return false, err.Error()
		}
		k.reduces = true
	}
	fu.take()
	if red != nil {
		fu.logf("fuse %s into %s as an output: %s (one value per row of %s, which joins next)", logName(p), into, fu.usersText(p), logName(red))
	} else {
		fu.logf("fuse %s into %s as an output: %s", logName(p), into, fu.usersText(p))
	}
	fu.kernel[p.ID] = k
	k.members[p] = true
	k.outputs = append(k.outputs, p)
	return true, ""
}

// maxRowChain bounds rowSource's walk.
const maxRowChain = 16

// rowSource returns the reduction from which p, a value with one element
// per row of the loop kernel k's root, is computed, when it is sure to
// join k once p is k's output and so make k a row kernel whose results p
// fits: p comes from the reduction through loop ops (and constants), the
// reduction reduces k's root shape along trailing axes, and every value
// on the way is read only on the way or after k's root (where it becomes
// one more output). A layer norm's rstd, which the backward reads, then
// stays in the normalizing kernel with the reductions computing it instead
// of splitting the layer norm in two. Otherwise it returns nil.
func (fu *fuser) rowSource(k *kernel, p *ir.Value) *ir.Value {
	if k.rows != nil || k.reduces || k.dot != nil {
		return nil
	}
	chain := map[*ir.Value]bool{p: true}
	outs := []*ir.Value{p}
	v := p
	for n := 0; n < maxRowChain && !isReduce(v); n++ {
		if !isLoopOp(v) || v.Op == ir.OpBroadcast {
			return nil
		}
		var next *ir.Value
		for _, a := range v.Args {
			if a.IsParam() || a.Op == ir.OpConstant {
				continue
			}
			if next != nil {
				return nil // two values to follow
			}
			next = a
		}
		if next == nil || fu.kernel[next.ID] != nil || len(fu.copies[next.ID]) > 0 || fu.result[next.ID] {
			return nil
		}
		chain[next] = true
		for _, u := range fu.users[next.ID] {
			if chain[u] {
				continue
			}
			if u.ID <= k.root.ID || fu.isCheap(next) {
				return nil // not an output (a cheap value would be copied)
			}
			if !slices.Contains(outs, next) {
				outs = append(outs, next)
			}
		}
		v = next
	}
	if !isReduce(v) || !v.Type.DType.IsFloat() {
		return nil
	}
	rows := newRowShape(v)
	if !rows.shape.Equal(k.root.Type.Shape) || !trailingAxes(rows) || !resultsFit(rows, append(k.results(), outs...)) {
		return nil
	}
	if fu.fuel >= 0 && fu.fuel < len(chain)+len(outs) {
		return nil // the chain could not all join
	}
	if !fu.rowsHold(k, chain, v) {
		return nil
	}
	return v
}

// rowsHold reports whether k, with the members chain added, stays a row
// kernel once the reduction red joins it (addReduction, tried and undone).
func (fu *fuser) rowsHold(k *kernel, chain map[*ir.Value]bool, red *ir.Value) bool {
	state, rows := maps.Clone(k.state), k.rows
	var added []*ir.Value
	for m := range chain {
		if !k.members[m] {
			k.members[m] = true
			added = append(added, m)
		}
	}
	err := fu.addReduction(k, red)
	for _, m := range added {
		delete(k.members, m)
	}
	k.state, k.rows = state, rows
	return err == nil
}

// siblings merges kernels that read the same large value (at least as many
// elements as the kernel's loop covers) into the later one, which takes
// the earlier one's results as outputs, when they share one loop and every
// user of the earlier one's results comes after the later one's root.
func (fu *fuser) siblings() {
	readers := map[*ir.Value][]*kernel{}
	paramPos := make(map[*ir.Value]int, len(fu.f.Params))
	for i, p := range fu.f.Params {
		paramPos[p] = i - len(fu.f.Params)
	}
	for _, v := range fu.f.Body {
		k := fu.kernel[v.ID]
		if k == nil || k.root != v || k.dot != nil || alone(v) != "" {
			continue
		}
		for _, x := range fu.inputs(k, paramPos) {
			if x.Type.Shape.NumElements() < loopSize(k) {
				continue
			}
			rs := readers[x]
			for i := len(rs) - 1; i >= max(0, len(rs)-maxSiblingScan); i-- {
				if j := rs[i]; j.root != nil && fu.mergeSibling(j, k, x) {
					rs[i] = &kernel{} // merged away
				}
			}
			readers[x] = append(rs, k)
		}
	}
}

// inputs are the values k reads from memory: parameters in f's order
// (paramPos: index − len(f.Params)), then instructions in body order. The
// order is deterministic, so that sibling merges (which may depend on it)
// are too.
func (fu *fuser) inputs(k *kernel, paramPos map[*ir.Value]int) []*ir.Value {
	var in []*ir.Value
	seen := map[*ir.Value]bool{}
	for m := range k.members {
		for _, a := range m.Args {
			if !k.members[a] && !seen[a] {
				seen[a] = true
				in = append(in, a)
			}
		}
	}
	order := func(v *ir.Value) int {
		if v.IsParam() {
			return paramPos[v]
		}
		return v.ID
	}
	slices.SortFunc(in, func(a, b *ir.Value) int { return order(a) - order(b) })
	return in
}

// loopSize is the number of elements k's loop covers: its rows' shape, or
// its root's.
func loopSize(k *kernel) int {
	if k.rows != nil {
		return k.rows.shape.NumElements()
	}
	return k.root.Type.Shape.NumElements()
}

// mergeSibling merges the kernel j into the later kernel k, which both
// read x, if they may share one loop.
func (fu *fuser) mergeSibling(j, k *kernel, x *ir.Value) bool {
	if j.reduces != k.reduces || j.dot != nil || alone(j.root) != "" {
		return false
	}
	r := k.rows
	if r != nil && (j.rows == nil || !j.rows.shape.Equal(r.shape) || !slices.Equal(j.rows.axes, r.axes)) {
		return false
	}
	res := append(k.results(), j.results()...)
	if !resultsFit(r, res) {
		return false
	}
	for _, v := range j.results() {
		if fu.readBefore(v, k.root.ID, j, k) != nil {
			return false // read before k's root, or from memory by k
		}
	}
	if !fu.take() {
		fu.logf("keep %s apart from %s: out of fuel", logName(j.root), logName(k.root))
		return false
	}
	fu.logf("merge %s into %s: siblings reading %s", logName(j.root), logName(k.root), refOf(x))
	k.outputs = append(k.outputs, j.results()...)
	fu.absorb(k, j)
	return true
}

// absorb moves the kernel j into k: j's instructions belong to k, k holds
// j's copies of cheap values in j's place (so that a cheap value copied
// into j is not kept in f for it), and j's row states are k's. j is left
// empty. The caller sets k's root, outputs and dot.
func (fu *fuser) absorb(k, j *kernel) {
	for m := range j.members {
		k.members[m] = true
		if fu.kernel[m.ID] == j {
			fu.kernel[m.ID] = k
			continue
		}
		c := fu.copies[m.ID]
		c = slices.DeleteFunc(c, func(h *kernel) bool { return h == j })
		if !slices.Contains(c, k) {
			c = append(c, k)
		}
		fu.copies[m.ID] = c
	}
	for m, s := range j.state {
		if k.state == nil {
			k.state = map[*ir.Value]rowState{}
		}
		k.state[m] = s
	}
	j.root, j.members, j.outputs = nil, nil, nil
}

// refOf names a value for the log: "%12 (exp)" or "%x".
func refOf(v *ir.Value) string {
	if v.IsParam() {
		return v.Ref()
	}
	return logName(v)
}

// checkOutputs is a consistency check of the rules above for one kernel.
func (k *kernel) checkOutputs() error {
	for _, o := range k.outputs {
		if !k.members[o] {
			return fmt.Errorf("output %s is not in the kernel of %s", logName(o), logName(k.root))
		}
	}
	if len(k.outputs) > 0 && !k.attention && !k.attentionGrad && !resultsFit(k.rows, k.results()) {
		return fmt.Errorf("the results of the kernel of %s do not share one loop", logName(k.root))
	}
	return nil
}
