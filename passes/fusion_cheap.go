package passes

import (
	"slices"

	"xlc/ir"
)

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

// computeCheap fills fu.cheap in body order. Values already in a kernel (a
// dot's epilogue) are not cheap: they are read.
func (fu *fuser) computeCheap() {
	for _, v := range fu.f.Body {
		var c cheapness
		switch {
		case fu.kernel[v.ID] != nil:
		case v.Op == ir.OpConstant || v.Op == ir.OpIota:
			c = cheapness{ok: true}
		case v.Op == ir.OpBroadcast:
			c = cheapness{ok: true, ops: []*ir.Value{v}}
			if a := v.Args[0]; fu.isCheap(a) {
				c.ops = union(c.ops, fu.cheap[a.ID].ops)
				// A row maximum's input is as large as its broadcast back.
				if l := fu.cheap[a.ID].leaf; l != nil && l.Type.Shape.NumElements() >= v.Type.Shape.NumElements() {
					c.leaf = l
				}
			}
		case v.Op == ir.OpReshape && fu.isCheap(v.Args[0]):
			// Free on its own; copied along with the cheap value it views.
			a := fu.cheap[v.Args[0].ID]
			c = cheapness{ok: true, ops: union([]*ir.Value{v}, a.ops), leaf: a.leaf}
		case v.Op == ir.OpReduceMax && v.Type.DType == ir.F32 && trailingRows(v):
			// A row maximum (softmax's) is recomputed by each row kernel
			// that needs it rather than stored: a pass over a row the
			// kernel reads anyway, with no transcendental. Copied only into
			// kernels whose rows it shares (addReduction).
			a := v.Args[0]
			c = cheapness{ok: true, ops: []*ir.Value{v}, leaf: a}
			if fu.isCheap(a) {
				c.ops = union(c.ops, fu.cheap[a.ID].ops)
				c.leaf = fu.cheap[a.ID].leaf
			}
			c.ok = c.leaf != nil
		case opCost(v) > 0:
			c = cheapness{ok: true, ops: []*ir.Value{v}}
			for _, a := range v.Args {
				leaf := a
				if fu.isCheap(a) {
					c.ops = union(c.ops, fu.cheap[a.ID].ops)
					leaf = fu.cheap[a.ID].leaf
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
		if !c.ok || c.cost() > maxCheapCost || fu.storedSoftmax(v, c) || fu.storedHalf(v) {
			c = cheapness{}
		}
		fu.cheap[v.ID] = c
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
func (fu *fuser) isCheap(v *ir.Value) bool { return !v.IsParam() && fu.cheap[v.ID].ok }

// storedSoftmax reports whether v recomputes a row maximum (a softmax) and
// a dot reads v: the dot reads it from memory, so it is stored anyway, and
// other kernels (the softmax's backward) read it rather than recompute it
// from its input, which would keep the input (attention's scores) alive
// as long as they run.
func (fu *fuser) storedSoftmax(v *ir.Value, c cheapness) bool {
	if !slices.ContainsFunc(c.ops, func(o *ir.Value) bool { return o.Op == ir.OpReduceMax }) {
		return false
	}
	return fu.readByDot(v)
}

// storedHalf reports whether v narrows a value to a half type that a dot
// reads: the dot reads it from memory, so it is stored anyway, and its
// other readers (a softmax's or attention's output read back in the
// backward, precision_softmax.go) read the half copy rather than narrow
// the wide value again, which would keep that alive until they run.
func (fu *fuser) storedHalf(v *ir.Value) bool {
	if v.Op != ir.OpConvert || !v.Type.DType.IsFloat() || v.Type.DType.Size() >= v.Args[0].Type.DType.Size() {
		return false
	}
	return fu.readByDot(v)
}

// readByDot reports whether a dot reads v.
func (fu *fuser) readByDot(v *ir.Value) bool {
	return slices.ContainsFunc(fu.users[v.ID], func(u *ir.Value) bool { return u.Op == ir.OpDot })
}
