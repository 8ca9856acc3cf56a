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
// Dot epilogues (dotEpilogues, in body order): a dot with one user takes the
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
//     computeCheap) is copied into the kernel;
//   - a reduce_sum or reduce_max whose users are all in the kernel, if every
//     reduction of the kernel reduces the same axes of the same shape (its
//     rows) and the reduced values only come back through broadcasts along
//     the reduced axes (addReduction): softmax and layer norm become one kernel
//     each, the reduction being the root or not;
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

// Cheap values are copied into every kernel that uses them instead of being
// computed once and read back from memory: constants, iotas, broadcasts
// (their operand is smaller than they are, or they are free) and short
// chains of elementwise ops that read at most one value of their own size
// besides cheap ones. Recomputing x − mean, (x − mean)·rstd or GELU's
// tanh(c·(x + a·x³)) in each user reads no more than reading the stored
// result would, and saves writing it. The chain's cost counts each simple
// op 1 and each f32 exp, log, tanh or erf 4 (the backends compute those in
// a few vector instructions; other transcendentals are not cheap).
const maxCheapCost = 16

// cheapness is what computeCheap records per value.
type cheapness struct {
	ok   bool
	ops  []*ir.Value // the cheap instructions a copy recomputes, itself included
	leaf *ir.Value   // the one value of its own size a copy reads, if any
}

// cost is the cost of recomputing c's instructions once each.
func (c cheapness) cost() int {
	n := 0
	for _, v := range c.ops {
		switch v.Op {
		case ir.OpBroadcast:
			n++
		case ir.OpReduceMax:
			n += 2
		default:
			n += opCost(v)
		}
	}
	return n
}

// opCost is the cost of one elementwise op v in a cheap chain, or 0 if v may
// not be in one.
func opCost(v *ir.Value) int {
	switch v.Op {
	case ir.OpNeg, ir.OpAbs, ir.OpSign, ir.OpNot, ir.OpStopGradient,
		ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv, ir.OpMax, ir.OpMin,
		ir.OpAnd, ir.OpOr, ir.OpEq, ir.OpNe, ir.OpLt, ir.OpLe, ir.OpGt, ir.OpGe,
		ir.OpSelect, ir.OpConvert:
		return 1
	case ir.OpExp, ir.OpLog, ir.OpTanh, ir.OpErf:
		if v.Type.DType == ir.F32 {
			return 4
		}
	}
	return 0
}

// computeCheap fills z.cheap in body order. Values already in a kernel (a
// dot's epilogue) are not cheap: they are read.
func (z *fuser) computeCheap() {
	for _, v := range z.f.Body {
		var c cheapness
		switch {
		case z.kernel[v.ID] != nil:
		case v.Op == ir.OpConstant || v.Op == ir.OpIota:
			c = cheapness{ok: true}
		case v.Op == ir.OpBroadcast:
			c = cheapness{ok: true, ops: []*ir.Value{v}}
			if a := v.Args[0]; z.isCheap(a) {
				c.ops = union(c.ops, z.cheap[a.ID].ops)
				// A row maximum's input is as large as its broadcast back.
				if l := z.cheap[a.ID].leaf; l != nil && l.Type.Shape.NumElements() >= v.Type.Shape.NumElements() {
					c.leaf = l
				}
			}
		case v.Op == ir.OpReshape && z.isCheap(v.Args[0]):
			// Free on its own; copied along with the cheap value it views.
			a := z.cheap[v.Args[0].ID]
			c = cheapness{ok: true, ops: union([]*ir.Value{v}, a.ops), leaf: a.leaf}
		case v.Op == ir.OpReduceMax && v.Type.DType == ir.F32 && trailingRows(v):
			// A row maximum (softmax's) is recomputed by each row kernel
			// that needs it rather than stored: a pass over a row the
			// kernel reads anyway, with no transcendental. Copied only into
			// kernels whose rows it shares (addReduction).
			a := v.Args[0]
			c = cheapness{ok: true, ops: []*ir.Value{v}, leaf: a}
			if z.isCheap(a) {
				c.ops = union(c.ops, z.cheap[a.ID].ops)
				c.leaf = z.cheap[a.ID].leaf
			}
			c.ok = c.leaf != nil
		case opCost(v) > 0:
			c = cheapness{ok: true, ops: []*ir.Value{v}}
			for _, a := range v.Args {
				leaf := a
				if z.isCheap(a) {
					c.ops = union(c.ops, z.cheap[a.ID].ops)
					leaf = z.cheap[a.ID].leaf
				}
				switch {
				case leaf == nil || leaf == c.leaf:
				case c.leaf == nil:
					c.leaf = leaf
				default:
					c.ok = false // a second value of its size
				}
			}
		}
		if !c.ok || c.cost() > maxCheapCost {
			c = cheapness{}
		}
		z.cheap[v.ID] = c
	}
}

// trailingRows reports whether the reduction v reduces contiguous rows: its
// axes are the last ones of its operand and it keeps at least two rows.
// Other reductions (a bias gradient's column sums, a global maximum) would
// be recomputed in full by every kernel that copied them.
func trailingRows(v *ir.Value) bool {
	axes := v.Attrs.Ints("axes")
	r := v.Args[0].Type.Rank()
	for i, a := range axes {
		if a != r-len(axes)+i {
			return false
		}
	}
	return len(axes) > 0 && v.Type.Shape.NumElements() > 1
}

// union is a with the values of b it lacks (short lists).
func union(a, b []*ir.Value) []*ir.Value {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// isCheap reports whether v is copied into each kernel that uses it.
func (z *fuser) isCheap(v *ir.Value) bool { return !v.IsParam() && z.cheap[v.ID].ok }

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
func (z *fuser) usersText(v *ir.Value) string {
	n := len(z.users[v.ID])
	switch {
	case z.result[v.ID]:
		return "a result of the function"
	case n == 2:
		return "two users"
	}
	return fmt.Sprintf("%d users", n)
}

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
func (z *fuser) dotEpilogues() {
	for _, d := range z.f.Body {
		if d.Op != ir.OpDot {
			continue
		}
		k := &kernel{root: d, members: map[*ir.Value]bool{d: true}, dot: d}
		z.kernel[d.ID] = k
		if z.result[d.ID] || len(z.users[d.ID]) == 0 {
			z.logf("keep %s: %s", name(d), z.usersText(d))
			continue
		}
		eligible := func(u *ir.Value, in map[*ir.Value]bool) bool {
			if !u.Op.IsElementwise() || !u.Type.Shape.Equal(d.Type.Shape) || z.kernel[u.ID] != nil {
				return false
			}
			for _, a := range u.Args {
				if !in[a] && z.dependsOn(a, in, d.ID) {
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
				for _, u := range z.users[m.ID] {
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
			if z.exits(order, in) == 1 && (z.fuel < 0 || len(order)-1 <= z.fuel) {
				best = len(order)
			}
		}
		if best == 1 && len(z.users[d.ID]) > 1 {
			z.logf("keep %s: %s", name(d), z.usersText(d))
			continue
		}
		if best == 1 {
			u := z.users[d.ID][0]
			if z.transposedResult(d, u) {
				if z.take() {
					z.logf("fuse %s into %s: the dot writes its result in the transposed order", name(u), name(d))
					k.members[u] = true
					z.kernel[u.ID] = k
					k.root = u
				} else {
					z.logf("keep %s out of %s: out of fuel", name(u), name(d))
				}
				continue
			}
			if !u.Op.IsElementwise() || !u.Type.Shape.Equal(d.Type.Shape) {
				z.logf("keep %s: its user %s is not elementwise over its output", name(d), name(u))
			} else if z.fuel == 0 {
				z.logf("keep %s: out of fuel", name(d))
			} else {
				z.logf("keep %s: no elementwise epilogue with a single output", name(d))
			}
			continue
		}
		order = order[:best]
		slices.SortFunc(order, func(a, b *ir.Value) int { return a.ID - b.ID })
		for _, m := range order[1:] {
			z.take()
			z.logf("fuse %s into %s: elementwise epilogue of a dot", name(m), name(d))
			k.members[m] = true
			z.kernel[m.ID] = k
		}
		k.root = order[len(order)-1]
		for _, m := range order {
			if z.result[m.ID] || slices.ContainsFunc(z.users[m.ID], func(u *ir.Value) bool { return !k.members[u] }) {
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
func (z *fuser) rowEpilogue(k, o *kernel, p *ir.Value) bool {
	if !z.mayRowEpilogue(k, o, p) || k.rows == nil {
		return false
	}
	r := p.Type.Rank()
	return k.rows.shape.Equal(p.Type.Shape) && len(k.rows.axes) == 1 && k.rows.axes[0] == r-1 && z.allUsersIn(k, p)
}

// mayRowEpilogue is what rowEpilogue checks that does not change as k
// grows: the kinds of k and o, p and k's root.
func (z *fuser) mayRowEpilogue(k, o *kernel, p *ir.Value) bool {
	return o.dot != nil && p == o.root && k.dot == nil && len(k.outputs) == 0 && len(o.outputs) == 0 &&
		p.Op != ir.OpTranspose && p.Type.DType == ir.F32 && o.dot.Type.DType == ir.F32 && p.Type.Shape.Equal(o.dot.Type.Shape) &&
		k.root.Type.Shape.Equal(p.Type.Shape) && k.root.Type.DType == ir.F32 && !z.result[p.ID]
}

// transposedResult reports whether u, the one user of the dot d, is a
// transpose that a matrix product can write directly
// (ir.TransposedDotStrides): attention's head merge.
func (z *fuser) transposedResult(d, u *ir.Value) bool {
	if u.Op != ir.OpTranspose || z.kernel[u.ID] != nil {
		return false
	}
	lb, _, lc, _ := ir.DotDims(d.Attrs)
	_, ok := ir.TransposedDotStrides(d.Type.Shape, len(lb), d.Args[0].Type.Rank()-len(lb)-len(lc), u.Attrs.Ints("perm"))
	return ok
}

// exits counts the members of a group that are used outside it.
func (z *fuser) exits(members []*ir.Value, in map[*ir.Value]bool) int {
	n := 0
	for _, m := range members {
		if z.result[m.ID] || slices.ContainsFunc(z.users[m.ID], func(u *ir.Value) bool { return !in[u] }) {
			n++
		}
	}
	return n
}

// dependsOn reports whether v is computed from a member of in; only values
// after the instruction numbered from can be. A search that grows too large
// answers true, which only keeps an epilogue smaller.
func (z *fuser) dependsOn(v *ir.Value, in map[*ir.Value]bool, from int) bool {
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

// grow visits f's instructions from the last to the first; each one not yet
// in a kernel roots a new kernel, which then takes its producers.
func (z *fuser) grow() {
	body := z.f.Body
	for i := len(body) - 1; i >= 0; i-- {
		v := body[i]
		k := z.kernel[v.ID]
		if k != nil && k.root != v {
			continue // inside a kernel
		}
		if z.isCheap(v) {
			z.needed[v.ID] = z.isNeeded(v)
			if !z.needed[v.ID] {
				continue
			}
		}
		if k == nil && v.Op == ir.OpReshape {
			// A reshape costs nothing on its own (the backends alias its
			// operand's buffer); as a kernel's root it would only turn a row
			// kernel's output into another shape (a flat log-softmax made
			// the CPU lower its rows element by element: 23 s a batch).
			z.logf("keep %s alone: free on its own, a copy as a kernel root", name(v))
			continue
		}
		if k == nil {
			k = &kernel{root: v, members: map[*ir.Value]bool{v: true}, reduces: isReduce(v)}
			z.kernel[v.ID] = k
			if k.reduces {
				if err := z.addReduction(k, v); err != nil {
					panic(err) // a lone reduction is a row kernel
				}
			}
		}
		if why := alone(v); why != "" {
			for _, a := range v.Args {
				if !a.IsParam() {
					z.logf("keep %s out of %s: %s", name(a), name(v), why)
				}
			}
			continue
		}
		z.fill(k)
	}
}

// isNeeded reports whether the cheap instruction v must stay in f: it is a
// result, or some kernel holding one of its users (the user itself, or a
// copy of it) does not hold v too, so it reads v.
func (z *fuser) isNeeded(v *ir.Value) bool {
	if z.result[v.ID] || len(z.users[v.ID]) == 0 {
		return true
	}
	for _, u := range z.users[v.ID] {
		holders := z.copies[u.ID]
		if k := z.kernel[u.ID]; k != nil {
			holders = append(holders[:len(holders):len(holders)], k)
		} else if !z.isCheap(u) || z.needed[u.ID] {
			return true // u stays in f on its own (a reshape) and reads v
		}
		for _, k := range holders {
			if !k.members[v] {
				return true
			}
		}
	}
	return false
}

// fill adds to k its fusible producers, repeatedly: a producer with users
// outside k waits until no other producer can be added.
func (z *fuser) fill(k *kernel) {
	var queue, waiting []*ir.Value
	queued := map[*ir.Value]bool{}
	whyNot := map[*ir.Value]string{} // why a waiting producer is not an output
	push := func(m *ir.Value) {
		for _, a := range m.Args {
			switch {
			case a.IsParam() || k.members[a] || queued[a]:
			case m == k.dot:
				queued[a] = true
				z.logf("keep %s out of %s: operand of a dot (read from memory)", name(a), name(m))
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
			switch z.decide(k, p, false) {
			case fused:
				push(p)
				for _, m := range z.joined { // a dot kernel that joined k
					push(m)
				}
				z.joined = z.joined[:0]
			case waits:
				waiting = append(waiting, p)
			}
		}
		progress := false
		rest := waiting[:0]
		for _, p := range waiting {
			if z.allUsersIn(k, p) {
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
			case !z.isCheap(p):
				rest = append(rest, p)
			case z.decide(k, p, true) == fused:
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
			ok, why := z.addOutput(k, p)
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
			z.logf("keep %s out of %s: %s (%s)", name(p), name(k.root), z.usersText(p), why)
		} else {
			z.logf("keep %s out of %s: %s", name(p), name(k.root), z.usersText(p))
		}
	}
}

// allUsersIn reports whether every use of p is in k. A copy of a cheap
// instruction does not count: its original may stay and still read p.
func (z *fuser) allUsersIn(k *kernel, p *ir.Value) bool {
	if z.result[p.ID] {
		return false
	}
	for _, u := range z.users[p.ID] {
		if !k.members[u] || len(z.copies[u.ID]) > 0 {
			return false
		}
	}
	return true
}

type outcome uint8

const (
	kept  outcome = iota // logged
	fused                // fused or copied into the kernel, logged
	waits                // has users outside the kernel; not logged yet
)

// decide fuses the producer p into k if a rule allows it; with copy set, a
// cheap p whose other users are outside k is copied into it.
func (z *fuser) decide(k *kernel, p *ir.Value, copy bool) outcome {
	into := name(k.root)
	if why := alone(p); why != "" {
		z.logf("keep %s out of %s: %s", name(p), into, why)
		return kept
	}
	if o := z.kernel[p.ID]; o != nil {
		if z.rowEpilogue(k, o, p) {
			if !z.take() {
				z.logf("keep %s out of %s: out of fuel", name(p), into)
				return kept
			}
			z.logf("fuse %s and its dot kernel into %s: a row kernel over the product's rows", name(p), into)
			for m := range o.members {
				z.joined = append(z.joined, m)
			}
			slices.SortFunc(z.joined, func(a, b *ir.Value) int { return b.ID - a.ID })
			k.dot = o.dot
			z.absorb(k, o)
			return fused
		}
		if z.mayRowEpilogue(k, o, p) && !z.allUsersIn(k, p) {
			return waits // its other users may still join k
		}
		switch {
		case p == o.dot && !z.allUsersIn(k, p):
			z.logf("keep %s out of %s: %s", name(p), into, z.usersText(p))
		case p == o.dot:
			z.logf("keep %s out of %s: a dot only takes an elementwise epilogue", name(p), into)
		case o.dot != nil:
			z.logf("keep %s out of %s: a dot kernel ends at its elementwise epilogue", name(p), into)
		default:
			z.logf("keep %s out of %s: root of another kernel", name(p), into)
		}
		return kept
	}
	all := z.allUsersIn(k, p)
	if !all && (!copy || !z.isCheap(p)) {
		return waits // another producer may bring its other users in
	}
	if k.dot != nil && slices.Contains(k.dot.Args, p) {
		z.logf("keep %s out of %s: operand of a dot (read from memory)", name(p), into)
		return kept
	}
	var why string
	switch {
	case isReduce(p):
		if k.dot != nil && k.rows == nil {
			z.logf("keep %s out of %s: a reduction does not fuse into a dot kernel", name(p), into)
			return kept
		}
		if z.fuel == 0 { // before addReduction changes k's row states
			z.logf("keep %s out of %s: out of fuel", name(p), into)
			return kept
		}
		if secondWholeSum(k, p) {
			z.logf("keep %s out of %s: the kernel already reduces a whole tensor", name(p), into)
			return kept
		}
		if r := k.rows; len(k.outputs) > 0 && !resultsFit(cmp.Or(r, newRows(p)), k.results()) {
			z.logf("keep %s out of %s: the kernel's outputs are not computed in its loop", name(p), into)
			return kept
		}
		if err := z.addReduction(k, p); err != nil {
			z.logf("keep %s out of %s: %v", name(p), into, err)
			return kept
		}
		why = "a reduction over the kernel's rows"
	case p.Op == ir.OpDot:
		z.logf("keep %s out of %s: a dot only takes an elementwise epilogue", name(p), into)
		return kept
	case !isLoopOp(p):
		z.logf("keep %s out of %s: %v is not fusible", name(p), into, p.Op)
		return kept
	case !all:
		why = "cheap to recompute"
	case k.reduces:
		why = "producer of a reduction"
	case k.dot != nil:
		why = "producer of a dot epilogue"
	case len(z.users[p.ID]) == 1:
		why = "its only user"
	default:
		why = "all its users are in the kernel"
	}
	if !z.take() {
		z.logf("keep %s out of %s: out of fuel", name(p), into)
		return kept
	}
	if all {
		z.logf("fuse %s into %s: %s", name(p), into, why)
		z.kernel[p.ID] = k
	} else {
		z.logf("duplicate %s into %s: %s", name(p), into, why)
		z.copies[p.ID] = append(z.copies[p.ID], k)
	}
	k.members[p] = true
	if isReduce(p) {
		k.reduces = true
	}
	return fused
}

// A row state says how a value inside a reduce kernel relates to the
// kernel's rows: free (computed from values read from outside the kernel,
// no reduction on its way), reduced (one element per row) or spread (a
// reduced value broadcast back along the rows).
type rowState uint8

const (
	free rowState = iota
	reduced
	spread
)

// rows is the row structure of a reduce kernel: its reductions reduce axes
// of operands of shape rows, leaving shape reduced (the kept axes).
type rows struct {
	first         *ir.Value // the first reduction, for messages
	shape, rshape ir.Shape
	axes, kept    []int
}

// newRows is the row structure of a kernel whose first reduction is p.
func newRows(p *ir.Value) *rows {
	x, a := p.Args[0], p.Attrs.Ints("axes")
	r := &rows{first: p, shape: x.Type.Shape, axes: a}
	for i := range r.shape {
		if !slices.Contains(a, i) {
			r.kept = append(r.kept, i)
			r.rshape = append(r.rshape, r.shape[i])
		}
	}
	return r
}

// addReduction adds the reduction p to k if k stays a row kernel: all its
// reductions reduce the same axes of operands of one shape, a reduced value
// is used only by elementwise ops, reshapes and broadcasts that put it back
// along the reduced axes, and no value mixes reduced and spread ones. The
// states of k's members are kept up to date incrementally: only the members
// whose state changes are visited, so a kernel that gathers many reductions
// costs time linear in its size.
func (z *fuser) addReduction(k *kernel, p *ir.Value) error {
	x := p.Args[0]
	if k.state[x] == reduced {
		return fmt.Errorf("%s reduces values already reduced", name(p))
	}
	a := p.Attrs.Ints("axes")
	r := k.rows
	if r == nil {
		r = newRows(p)
	} else if !r.shape.Equal(x.Type.Shape) || !slices.Equal(r.axes, a) {
		return fmt.Errorf("%s reduces axes %v of %v, %s axes %v of %v: not the same rows", name(r.first), ir.Shape(r.axes), r.shape, name(p), ir.Shape(a), x.Type.Shape)
	}
	if k.state == nil {
		k.state = map[*ir.Value]rowState{}
	}
	type change struct {
		v   *ir.Value
		old rowState
	}
	undo := []change{{p, k.state[p]}}
	k.state[p] = reduced
	work := []*ir.Value{p}
	for len(work) > 0 {
		v := work[len(work)-1]
		work = work[:len(work)-1]
		for _, u := range z.users[v.ID] {
			if !k.members[u] {
				continue
			}
			s, err := rowStateOf(u, k.state, r)
			if err != nil {
				for i := len(undo) - 1; i >= 0; i-- {
					k.state[undo[i].v] = undo[i].old
				}
				return err
			}
			if s != k.state[u] {
				undo = append(undo, change{u, k.state[u]})
				k.state[u] = s
				work = append(work, u)
			}
		}
	}
	k.rows = r
	return nil
}

// rowStateOf is the row state of the member m of a row kernel with rows r,
// given its operands' states.
func rowStateOf(m *ir.Value, state map[*ir.Value]rowState, r *rows) (rowState, error) {
	switch {
	case isReduce(m):
		if state[m.Args[0]] == reduced {
			return 0, fmt.Errorf("%s reduces values already reduced", name(m))
		}
		return reduced, nil
	case m.Op == ir.OpBroadcast:
		switch state[m.Args[0]] {
		case reduced:
			if !m.Args[0].Type.Shape.Equal(r.rshape) || !m.Type.Shape.Equal(r.shape) || !slices.Equal(m.Attrs.Ints("dims"), r.kept) {
				return 0, fmt.Errorf("%s does not put reduced values back along the reduced axes", name(m))
			}
			return spread, nil
		case spread:
			return 0, fmt.Errorf("%s broadcasts values spread along the rows", name(m))
		}
		return free, nil
	case m.Op == ir.OpReshape:
		return state[m.Args[0]], nil
	case m.Op.IsElementwise():
		s := free
		for _, a := range m.Args {
			if t := state[a]; t != free {
				if s != free && s != t {
					return 0, fmt.Errorf("%s mixes reduced values and values spread along the rows", name(m))
				}
				s = t
			}
		}
		return s, nil
	}
	for _, a := range m.Args {
		if state[a] != free {
			return 0, fmt.Errorf("%s moves values computed from a reduction", name(m))
		}
	}
	return free, nil
}
