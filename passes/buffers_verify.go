package passes

import (
	"fmt"
	"slices"

	"xlc/ir"
)

// Verify proves that the plan is sound for f: every buffer is big enough
// and inside its region, every alias is where its operand is, parameter
// buffers are disjoint, a result written into a parameter's buffer is
// defined only after the parameter's class is dead (or by an instruction
// that reads it at the index it writes), and no two storage classes live at
// the same time overlap in the arena. Liveness is derived again from f, not
// taken from the plan. The arena check is a sweep over time with the live
// ranges ordered by offset: O(n log n) in the number of instructions.
func (p *BufferPlan) Verify(f *ir.Func) error {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("buffers: @%s: "+format, append([]any{f.Name}, args...)...)
	}
	n := len(f.Body)
	if len(p.Loc) != n || len(p.Bytes) != n || len(p.ParamOffset) != len(f.Params) {
		return errf("the plan is for %d instructions and %d parameters, the function has %d and %d",
			len(p.Loc), len(p.ParamOffset), n, len(f.Params))
	}
	lv, err := liveness(f)
	if err != nil {
		return err
	}

	// Parameter buffers: aligned, inside the region, disjoint.
	order := make([]int, len(f.Params))
	for i, q := range f.Params {
		order[i] = i
		off := p.ParamOffset[i]
		if off < 0 || off%64 != 0 || off+bufferBytes(q) > p.ParamBytes {
			return errf("parameter %%%s at %d (%d bytes) is misaligned or outside the region of %d bytes", q.Name, off, bufferBytes(q), p.ParamBytes)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return p.ParamOffset[a] - p.ParamOffset[b] })
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		if p.ParamOffset[a]+bufferBytes(f.Params[a]) > p.ParamOffset[b] {
			return errf("parameters %%%s and %%%s overlap", f.Params[a].Name, f.Params[b].Name)
		}
	}

	// Every instruction's location; the classes placed in the arena.
	pidx := paramIndexes(f)
	locOf := func(v *ir.Value) Loc {
		if v.IsParam() {
			return Loc{Param: pidx[v.Name]}
		}
		return p.Loc[lv.index[v]]
	}
	inParam := map[int]int{} // parameter → the instruction root in its buffer
	var arena []int          // roots in the arena, in time order
	for i, v := range f.Body {
		l := p.Loc[i]
		if isAlias(v) {
			if want := locOf(lv.root[v]); l != want {
				return errf("%%%d (%v) is at %+v, but the root of its storage is at %+v", i, v.Op, l, want)
			}
			continue
		}
		need := bufferBytes(v)
		if p.Bytes[i] < need {
			return errf("%%%d has %d bytes, needs %d", i, p.Bytes[i], need)
		}
		if l.Param >= 0 {
			if l.Param >= len(f.Params) {
				return errf("%%%d is in parameter #%d, which does not exist", i, l.Param)
			}
			q := f.Params[l.Param]
			if bufferBytes(q) < need {
				return errf("%%%d needs %d bytes, parameter %%%s has %d", i, need, q.Name, bufferBytes(q))
			}
			if j, dup := inParam[l.Param]; dup {
				return errf("%%%d and %%%d are both in parameter %%%s", j, i, q.Name)
			}
			inParam[l.Param] = i
			last, t := lv.last[q], lv.def[v]
			if last > t || last == t && !inPlaceSafe(v, q, lv) {
				return errf("%%%d is written into parameter %%%s, which is still live (last use at %d)", i, q.Name, last)
			}
			continue
		}
		if l.Offset < 0 || l.Offset%64 != 0 || l.Offset+p.Bytes[i] > p.ArenaBytes {
			return errf("%%%d at arena offset %d (%d bytes) is misaligned or outside the arena of %d bytes", i, l.Offset, p.Bytes[i], p.ArenaBytes)
		}
		arena = append(arena, i)
	}
	if p.PeakBytes != p.ParamBytes+p.ArenaBytes {
		return errf("peak %d is not params %d + arena %d", p.PeakBytes, p.ParamBytes, p.ArenaBytes)
	}
	results := make(map[string]*ir.Value, len(f.Results))
	for k, r := range f.Results {
		if k < len(f.ResultNames) {
			results[f.ResultNames[k]] = r
		}
	}
	for _, name := range p.InPlace {
		pi, r := indexOr(pidx, name), results[name]
		if pi < 0 || r == nil {
			return errf("in-place result %q names no parameter and result", name)
		}
		if root := lv.root[r]; root != f.Params[pi] && locOf(root) != (Loc{Param: pi}) {
			return errf("result %q is said to be in place, but is not in %%%s's buffer", name, name)
		}
	}

	// The sweep: at time t, drop the classes whose last use is before t,
	// then add the class defined at t, checking its neighbours by offset.
	expire := make([][]int, n+1)
	var live treap
	done := 0 // times whose expiring classes are dropped
	for _, i := range arena {
		for t := lv.def[f.Body[i]]; done < t; done++ {
			for _, j := range expire[done] {
				live.remove(p.Loc[j].Offset)
			}
		}
		off, end := p.Loc[i].Offset, p.Loc[i].Offset+p.Bytes[i]
		if j, ok := live.overlap(off, end); ok {
			return errf("%%%d [%d,%d) and %%%d [%d,%d) are live at once and overlap in the arena",
				j, p.Loc[j].Offset, p.Loc[j].Offset+p.Bytes[j], i, off, end)
		}
		live.insert(off, end, i)
		last := lv.last[f.Body[i]]
		expire[last] = append(expire[last], i)
	}
	return nil
}

// treap is a randomized balanced search tree of disjoint byte ranges keyed
// by their start.
type treap struct {
	root *tnode
	seed uint32
}

type tnode struct {
	off, end, id int
	prio         uint32
	l, r         *tnode
}

// split cuts t into the nodes with off < key and those with off >= key.
func split(t *tnode, key int) (*tnode, *tnode) {
	if t == nil {
		return nil, nil
	}
	if t.off < key {
		l, r := split(t.r, key)
		t.r = l
		return t, r
	}
	l, r := split(t.l, key)
	t.l = r
	return l, t
}

func merge(a, b *tnode) *tnode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if a.prio > b.prio {
		a.r = merge(a.r, b)
		return a
	}
	b.l = merge(a, b.l)
	return b
}

// overlap reports a live range that intersects [off, end), if any: the
// ranges being disjoint, only the last one starting before end can.
func (t *treap) overlap(off, end int) (id int, ok bool) {
	var cand *tnode
	for n := t.root; n != nil; {
		if n.off < end {
			cand = n
			n = n.r
		} else {
			n = n.l
		}
	}
	if cand != nil && cand.end > off {
		return cand.id, true
	}
	return 0, false
}

func (t *treap) insert(off, end, id int) {
	t.seed = t.seed*1664525 + 1013904223
	l, r := split(t.root, off)
	t.root = merge(merge(l, &tnode{off: off, end: end, id: id, prio: t.seed}), r)
}

func (t *treap) remove(off int) {
	l, r := split(t.root, off)
	_, r = split(r, off+1)
	t.root = merge(l, r)
}
