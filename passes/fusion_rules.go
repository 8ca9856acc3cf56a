package passes

import (
	"cmp"
	"fmt"
	"slices"

	"xlc/ir"
)

// The fusion rules. Kernels form in two sweeps; every decision to fuse
// spends one unit of fuel and, like every decision not to, is logged with
// its reason.
//
// Dot epilogues (dotEpilogues, fusion_dot.go, in body order): a dot with one user takes the
// elementwise ops over its output that follow it (bias add, activation,
// residual add, convert) as long as the group keeps a single output, or,
// lacking those, a transpose of its result that a matrix product can write
// in place of the dense result (rows of the product still contiguous:
// attention's head merge); the dot's operands are read from memory (no
// prologue).
//
// Producers into consumers (grow, in reverse body order, so consumers come
// first): each kernel, rooted at the last value not yet in one, takes its
// producers:
//   - an elementwise or shape op (broadcast, reshape, transpose, slice, pad,
//     concat, convert, select, compares, iota, constant) whose users are all
//     in the kernel (loop fusion);
//   - a cheap value used elsewhere too (a constant, an iota, a broadcast, a
//     short chain of elementwise ops reading one value of its size; see
//     computeCheap, fusion_cheap.go) is copied into the kernel;
//   - a reduce_sum or reduce_max whose users are all in the kernel, if every
//     reduction of the kernel reduces the same axes of the same shape (its
//     rows) and the reduced values only come back through broadcasts along
//     the reduced axes (addReduction, fusion_rows.go): softmax and layer
//     norm become one kernel each, the reduction being the root or not;
//   - once nothing else can come in, a producer with users outside the
//     kernel becomes one of its outputs where it may (addOutput,
//     fusion_outputs.go);
//   - never a gather, scatter_add or rng (each stays its own kernel and
//     reads its operands from memory), a dot into a non-epilogue, or a
//     reduction into a dot kernel.
//
// Siblings (siblings, fusion_outputs.go, after grow): kernels that read the
// same large value merge.

// secondWholeSum reports whether p reduces a tensor to a scalar and k
// already holds such a reduction (its rows are whole tensors): a kernel
// takes one. A chain of them (the sum of a model's squared gradient norms)
// would otherwise take one per layer into one kernel, a loop each, and a
// deeper model would need more kernel functions than a shallow one.
func secondWholeSum(k *kernel, p *ir.Value) bool {
	return isReduce(p) && p.Type.Rank() == 0 && k.rows != nil && len(k.rows.kept) == 0
}

// isLoopOp reports whether v may sit in a loop kernel.
func isLoopOp(v *ir.Value) bool {
	if v.Op.IsElementwise() {
		return true
	}
	switch v.Op {
	case ir.OpBroadcast, ir.OpReshape, ir.OpTranspose, ir.OpSlice, ir.OpPad, ir.OpConcat, ir.OpIota, ir.OpConstant:
		return true
	}
	return false
}

// alone is the reason an op is never fused with others, or "".
func alone(v *ir.Value) string {
	switch v.Op {
	case ir.OpGather:
		return "a gather stays its own kernel (it reads its table from memory)"
	case ir.OpScatterAdd:
		return "a scatter_add stays its own kernel (it accumulates into its output)"
	case ir.OpRng:
		return "an rng stays its own kernel (counter-based draws)"
	case ir.OpFusion, ir.OpOutput:
		return "already fused"
	}
	return ""
}

func isReduce(v *ir.Value) bool { return v.Op == ir.OpReduceSum || v.Op == ir.OpReduceMax }

// usersText describes how many users v has: "two users".
func (fu *fuser) usersText(v *ir.Value) string {
	n := len(fu.users[v.ID])
	switch {
	case fu.result[v.ID]:
		return "a result of the function"
	case n == 2:
		return "two users"
	}
	return fmt.Sprintf("%d users", n)
}

// grow visits f's instructions from the last to the first; each one not yet
// in a kernel roots a new kernel, which then takes its producers.
func (fu *fuser) grow() {
	body := fu.f.Body
	for i := len(body) - 1; i >= 0; i-- {
		v := body[i]
		k := fu.kernel[v.ID]
		if k != nil && k.root != v {
			continue // inside a kernel
		}
		if fu.isCheap(v) {
			fu.needed[v.ID] = fu.isNeeded(v)
			if !fu.needed[v.ID] {
				continue
			}
		}
		if k == nil && v.Op == ir.OpReshape {
			// A reshape costs nothing on its own (the backends alias its
			// operand's buffer); as a kernel's root it would only turn a row
			// kernel's output into another shape, which makes the CPU
			// backend lower the rows element by element (bench/NOTES.md).
			fu.logf("keep %s alone: free on its own, a copy as a kernel root", logName(v))
			continue
		}
		if k == nil {
			k = &kernel{root: v, members: map[*ir.Value]bool{v: true}, reduces: isReduce(v)}
			fu.kernel[v.ID] = k
			if k.reduces {
				if err := fu.addReduction(k, v); err != nil {
					panic(err) // a lone reduction is a row kernel
				}
			}
		}
		if why := alone(v); why != "" {
			for _, a := range v.Args {
				if !a.IsParam() {
					fu.logf("keep %s out of %s: %s", logName(a), logName(v), why)
				}
			}
			continue
		}
		fu.fill(k)
	}
}

// isNeeded reports whether the cheap instruction v must stay in f: it is a
// result, or some kernel holding one of its users (the user itself, or a
// copy of it) does not hold v too, so it reads v.
func (fu *fuser) isNeeded(v *ir.Value) bool {
	if fu.result[v.ID] || len(fu.users[v.ID]) == 0 {
		return true
	}
	for _, u := range fu.users[v.ID] {
		if fu.readsFromMemory(u, v) {
			return true
		}
	}
	return false
}

// readsFromMemory reports whether u reads its operand v from memory: u
// stays in f on its own (a reshape), or a kernel holding u (u itself or a
// copy of it) does not hold v.
func (fu *fuser) readsFromMemory(u, v *ir.Value) bool {
	holders := fu.copies[u.ID]
	if k := fu.kernel[u.ID]; k != nil {
		holders = append(holders[:len(holders):len(holders)], k)
	} else if !fu.isCheap(u) || fu.needed[u.ID] {
		return true
	}
	for _, k := range holders {
		if !k.members[v] {
			return true
		}
	}
	return false
}

// fill adds to k its fusible producers, repeatedly: a producer with users
// outside k waits until no other producer can be added.
func (fu *fuser) fill(k *kernel) {
	var queue, waiting []*ir.Value
	queued := map[*ir.Value]bool{}
	whyNot := map[*ir.Value]string{} // why a waiting producer is not an output
	push := func(m *ir.Value) {
		for _, a := range m.Args {
			switch {
			case a.IsParam() || k.members[a] || queued[a]:
			case m == k.dot:
				queued[a] = true
				fu.logf("keep %s out of %s: operand of a dot (read from memory)", logName(a), logName(m))
			default:
				queued[a] = true
				queue = append(queue, a)
			}
		}
	}
	members := make([]*ir.Value, 0, len(k.members))
	for m := range k.members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b *ir.Value) int { return b.ID - a.ID })
	for _, m := range members {
		push(m)
	}
	for {
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			switch fu.decide(k, p, false) {
			case outFused:
				push(p)
				for _, m := range fu.joined { // a dot kernel that joined k
					push(m)
				}
				fu.joined = fu.joined[:0]
			case outWaits:
				waiting = append(waiting, p)
			}
		}
		progress := false
		rest := waiting[:0]
		for _, p := range waiting {
			if fu.allUsersIn(k, p) {
				queue = append(queue, p)
				progress = true
			} else {
				rest = append(rest, p)
			}
		}
		waiting = rest
		if progress {
			continue
		}
		// Nothing else comes in: copy the cheap producers that wait.
		rest = waiting[:0]
		for _, p := range waiting {
			switch {
			case !fu.isCheap(p):
				rest = append(rest, p)
			case fu.decide(k, p, true) == outFused:
				push(p)
				progress = true
			}
		}
		waiting = rest
		if progress {
			continue
		}
		// Then make the others the kernel's outputs where they may be.
		rest = waiting[:0]
		for _, p := range waiting {
			ok, why := fu.addOutput(k, p)
			if ok {
				push(p)
				progress = true
				continue
			}
			rest = append(rest, p)
			if why != "" {
				whyNot[p] = why
			}
		}
		waiting = rest
		if !progress {
			break
		}
	}
	for _, p := range waiting {
		if why := whyNot[p]; why != "" {
			fu.logf("keep %s out of %s: %s (%s)", logName(p), logName(k.root), fu.usersText(p), why)
		} else {
			fu.logf("keep %s out of %s: %s", logName(p), logName(k.root), fu.usersText(p))
		}
	}
}

// allUsersIn reports whether every use of p is in k. A copy of a cheap
// instruction does not count: its original may stay and still read p.
func (fu *fuser) allUsersIn(k *kernel, p *ir.Value) bool {
	if fu.result[p.ID] {
		return false
	}
	for _, u := range fu.users[p.ID] {
		if !k.members[u] || len(fu.copies[u.ID]) > 0 {
			return false
		}
	}
	return true
}

// An outcome is what decide did with a producer.
type outcome uint8

const (
	outKept  outcome = iota // logged
	outFused                // fused or copied into the kernel, logged
	outWaits                // has users outside the kernel; not logged yet
)

// decide fuses the producer p into k if a rule allows it; with mayCopy set, a
// cheap p whose other users are outside k is copied into it.
func (fu *fuser) decide(k *kernel, p *ir.Value, mayCopy bool) outcome {
	into := logName(k.root)
	if why := alone(p); why != "" {
		fu.logf("keep %s out of %s: %s", logName(p), into, why)
		return outKept
	}
	if o := fu.kernel[p.ID]; o != nil {
		if fu.rowEpilogue(k, o, p) {
			if !fu.take() {
				fu.logf("keep %s out of %s: out of fuel", logName(p), into)
				return outKept
			}
			fu.logf("fuse %s and its dot kernel into %s: a row kernel over the product's rows", logName(p), into)
			for m := range o.members {
				fu.joined = append(fu.joined, m)
			}
			slices.SortFunc(fu.joined, func(a, b *ir.Value) int { return b.ID - a.ID })
			k.dot = o.dot
			fu.absorb(k, o)
			return outFused
		}
		if fu.mayRowEpilogue(k, o, p) && !fu.allUsersIn(k, p) {
			return outWaits // its other users may still join k
		}
		switch {
		case p == o.dot && !fu.allUsersIn(k, p):
			fu.logf("keep %s out of %s: %s", logName(p), into, fu.usersText(p))
		case p == o.dot:
			fu.logf("keep %s out of %s: a dot only takes an elementwise epilogue", logName(p), into)
		case o.dot != nil:
			fu.logf("keep %s out of %s: a dot kernel ends at its elementwise epilogue", logName(p), into)
		default:
			fu.logf("keep %s out of %s: root of another kernel", logName(p), into)
		}
		return outKept
	}
	all := fu.allUsersIn(k, p)
	if !all && (!mayCopy || !fu.isCheap(p)) {
		return outWaits // another producer may bring its other users in
	}
	if k.dot != nil && slices.Contains(k.dot.Args, p) {
		fu.logf("keep %s out of %s: operand of a dot (read from memory)", logName(p), into)
		return outKept
	}
	var why string
	switch {
	case isReduce(p):
		if k.dot != nil && k.rows == nil {
			fu.logf("keep %s out of %s: a reduction does not fuse into a dot kernel", logName(p), into)
			return outKept
		}
		if fu.fuel == 0 { // before addReduction changes k's row states
			fu.logf("keep %s out of %s: out of fuel", logName(p), into)
			return outKept
		}
		if secondWholeSum(k, p) {
			fu.logf("keep %s out of %s: the kernel already reduces a whole tensor", logName(p), into)
			return outKept
		}
		if r := k.rows; len(k.outputs) > 0 && !resultsFit(cmp.Or(r, newRowShape(p)), k.results()) {
			fu.logf("keep %s out of %s: the kernel's outputs are not computed in its loop", logName(p), into)
			return outKept
		}
		if err := fu.addReduction(k, p); err != nil {
			fu.logf("keep %s out of %s: %v", logName(p), into, err)
			return outKept
		}
		why = "a reduction over the kernel's rows"
	case p.Op == ir.OpDot:
		fu.logf("keep %s out of %s: a dot only takes an elementwise epilogue", logName(p), into)
		return outKept
	case !isLoopOp(p):
		fu.logf("keep %s out of %s: %v is not fusible", logName(p), into, p.Op)
		return outKept
	case k.dot != nil && all && !fu.isCheap(p) && k.root.ID-p.ID >= rematGap:
		// Placed far earlier, beside what computes its operands (linearize's
		// J): pulled into the dot, it would keep them alive until then.
		fu.logf("keep %s out of %s: placed %d instructions before the dot", logName(p), into, k.root.ID-p.ID)
		return outKept
	case !all:
		why = "cheap to recompute"
	case k.reduces:
		why = "producer of a reduction"
	case k.dot != nil:
		why = "producer of a dot epilogue"
	case len(fu.users[p.ID]) == 1:
		why = "its only user"
	default:
		why = "all its users are in the kernel"
	}
	if !fu.take() {
		fu.logf("keep %s out of %s: out of fuel", logName(p), into)
		return outKept
	}
	if all {
		fu.logf("fuse %s into %s: %s", logName(p), into, why)
		fu.kernel[p.ID] = k
	} else {
		fu.logf("duplicate %s into %s: %s", logName(p), into, why)
		fu.copies[p.ID] = append(fu.copies[p.ID], k)
	}
	k.members[p] = true
	if isReduce(p) {
		k.reduces = true
	}
	return outFused
}
