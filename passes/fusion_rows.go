package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// A row state says how a value inside a reduce kernel relates to the
// kernel's rows: rowFree (computed from values read from outside the
// kernel, no reduction on its way), rowReduced (one element per row) or
// rowSpread (a reduced value broadcast back along the rows).
type rowState uint8

const (
	rowFree rowState = iota
	rowReduced
	rowSpread
)

// rowShape is the row structure of a reduce kernel: its reductions reduce
// axes of operands of shape shape, leaving shape rshape (the kept axes).
type rowShape struct {
	first         *ir.Value // the first reduction, for messages
	shape, rshape ir.Shape
	axes, kept    []int
}

// newRowShape is the row structure of a kernel whose first reduction is p.
func newRowShape(p *ir.Value) *rowShape {
	x, a := p.Args[0], p.Attrs.Ints("axes")
	r := &rowShape{first: p, shape: x.Type.Shape, axes: a}
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
func (fu *fuser) addReduction(k *kernel, p *ir.Value) error {
	x := p.Args[0]
	if k.state[x] == rowReduced {
		return fmt.Errorf("%s reduces values already reduced", logName(p))
	}
	a := p.Attrs.Ints("axes")
	r := k.rows
	if r == nil {
		r = newRowShape(p)
	} else if !r.shape.Equal(x.Type.Shape) || !slices.Equal(r.axes, a) {
		return fmt.Errorf("%s reduces axes %v of %v, %s axes %v of %v: not the same rows", logName(r.first), ir.Shape(r.axes), r.shape, logName(p), ir.Shape(a), x.Type.Shape)
	}
	if k.state == nil {
		k.state = map[*ir.Value]rowState{}
	}
	type change struct {
		v   *ir.Value
		old rowState
	}
	undo := []change{{p, k.state[p]}}
	k.state[p] = rowReduced
	work := []*ir.Value{p}
	for len(work) > 0 {
		v := work[len(work)-1]
		work = work[:len(work)-1]
		for _, u := range fu.users[v.ID] {
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
func rowStateOf(m *ir.Value, state map[*ir.Value]rowState, r *rowShape) (rowState, error) {
	switch {
	case isReduce(m):
		if state[m.Args[0]] == rowReduced {
			return 0, fmt.Errorf("%s reduces values already reduced", logName(m))
		}
		return rowReduced, nil
	case m.Op == ir.OpBroadcast:
		switch state[m.Args[0]] {
		case rowReduced:
			if !m.Args[0].Type.Shape.Equal(r.rshape) || !m.Type.Shape.Equal(r.shape) || !slices.Equal(m.Attrs.Ints("dims"), r.kept) {
				return 0, fmt.Errorf("%s does not put reduced values back along the reduced axes", logName(m))
			}
			return rowSpread, nil
		case rowSpread:
			return 0, fmt.Errorf("%s broadcasts values spread along the rows", logName(m))
		}
		return rowFree, nil
	case m.Op == ir.OpReshape:
		return state[m.Args[0]], nil
	case m.Op.IsElementwise():
		s := rowFree
		for _, a := range m.Args {
			if t := state[a]; t != rowFree {
				if s != rowFree && s != t {
					return 0, fmt.Errorf("%s mixes reduced values and values spread along the rows", logName(m))
				}
				s = t
			}
		}
		return s, nil
	}
	for _, a := range m.Args {
		if state[a] != rowFree {
			return 0, fmt.Errorf("%s moves values computed from a reduction", logName(m))
		}
	}
	return rowFree, nil
}
