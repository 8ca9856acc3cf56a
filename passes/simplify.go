package passes

import (
	"fmt"

	"xlc/ir"
)

// simplify rewrites f to a fixed point. Afterwards:
//   - no instruction with only splat-constant operands remains, unless
//     folding would hide a runtime choice (fold);
//   - no algebraic identity (x+0, x*1, x/1, neg(neg x), a select with a
//     constant predicate, and the like: identity) and no shape op that does
//     nothing or repeats its operand's kind (shapeFold) remains;
//   - no two instructions are identical (cse.go), and every instruction is
//     used by a result, directly or not (dce.go);
//   - running simplify again changes nothing.
//
// Each sweep visits the instructions once in order, so it is linear in the
// size of f; one sweep normally reaches the fixed point and a second one
// confirms it.
func simplify(f *ir.Func) (bool, error) {
	return fixedPoint(f, true, true)
}

const maxSweeps = 100

// fixedPoint sweeps f until a sweep changes nothing. With rewrite unset a
// sweep only merges identical instructions; with withDCE set, dead
// instructions are dropped after each sweep.
func fixedPoint(f *ir.Func, rewrite, withDCE bool) (bool, error) {
	changedAny := false
	for i := 0; i < maxSweeps; i++ {
		changed := sweep(f, rewrite)
		if withDCE && deadCode(f) {
			changed = true
		}
		if !changed {
			return changedAny, nil
		}
		changedAny = true
	}
	return changedAny, fmt.Errorf("@%s: no fixed point after %d sweeps", f.Name, maxSweeps)
}

// sweeper holds the state of one sweep over a function.
type sweeper struct {
	rewrite bool
	body    []*ir.Value
	repl    []*ir.Value          // by ID: what replaces a removed instruction
	seen    map[string]*ir.Value // CSE table: key -> first instruction
	nextID  int                  // IDs for instructions created during the sweep
	key     []byte
	changed bool
}

// sweep visits f's instructions in order once. Operands are visited before
// their users, so when an instruction is visited its operands are final: it
// is rewritten (when rewrite is set) until no rule applies, then merged with
// an identical earlier instruction or kept.
func sweep(f *ir.Func, rewrite bool) bool {
	f.Renumber()
	s := &sweeper{
		rewrite: rewrite,
		body:    make([]*ir.Value, 0, len(f.Body)),
		repl:    make([]*ir.Value, len(f.Body)),
		seen:    make(map[string]*ir.Value, len(f.Body)),
		nextID:  len(f.Body),
	}
	for _, v := range f.Body {
		for i, a := range v.Args {
			if r := s.replacement(a); r != nil {
				v.Args[i] = r
				s.changed = true
			}
		}
		id := v.ID
		if w := s.visit(v); w != v {
			s.repl[id] = w
			s.changed = true
		}
	}
	for i, r := range f.Results {
		if w := s.replacement(r); w != nil {
			f.Results[i] = w
			s.changed = true
		}
	}
	f.Body = s.body
	f.Renumber()
	return s.changed
}

// replacement returns what replaces v, or nil. Instructions of the old body
// have IDs below len(repl); those created during the sweep, above.
func (s *sweeper) replacement(v *ir.Value) *ir.Value {
	if v.IsParam() || v.ID < 0 || v.ID >= len(s.repl) {
		return nil
	}
	return s.repl[v.ID]
}

// visit returns what v becomes: v itself, placed in the new body, or a value
// already placed (or a parameter) that replaces it.
func (s *sweeper) visit(v *ir.Value) *ir.Value {
	if s.rewrite {
		for {
			w, ok := rewrite(v)
			if !ok {
				break
			}
			s.changed = true
			if w == v {
				continue // rewritten in place; try again
			}
			if w.ID != newID {
				return w // an existing value
			}
			v = w // a new instruction; simplify it in turn
		}
	}
	k := s.cseKey(v)
	if w, ok := s.seen[string(k)]; ok {
		return w
	}
	s.seen[string(k)] = v
	if v.ID == newID {
		v.ID = s.nextID
		s.nextID++
	}
	s.body = append(s.body, v)
	return v
}

// rewrite applies the first rule that matches v. It returns v, changed in
// place, or a replacement: an existing value, or a new instruction whose ID
// is newID and which is not yet placed.
func rewrite(v *ir.Value) (*ir.Value, bool) {
	if w, ok := fold(v); ok {
		return w, true
	}
	if w, ok := identity(v); ok {
		return w, true
	}
	return shapeFold(v)
}
