package passes

import (
	"strconv"

	"xlc/ir"
)

// cse merges identical instructions of f: afterwards no two instructions have
// the same op, operands (by identity), attributes and type, and every use of a
// merged instruction refers to the one kept, the earliest. Every op of the IR
// is a pure function of its operands and attributes, including rng: its
// numbers are counter-based, a function of the key operand, dist, stream and
// type only, so two rng instructions are merged exactly when all of those are
// identical, and then they would have drawn the same numbers anyway. Merged
// duplicates leave their operands in place; dce removes what becomes dead.
func cse(f *ir.Func) (bool, error) {
	return fixedPoint(f, false, false)
}

// newID marks an instruction created during a sweep and not yet placed.
const newID = -1

// cseKey encodes what makes v the value it is: op, operand identities,
// attributes and type. Operands are named by ID (instructions, unique within
// a sweep) or by name (parameters).
func (s *sweeper) cseKey(v *ir.Value) []byte {
	k := append(s.key[:0], byte(v.Op))
	for _, a := range v.Args {
		if a.IsParam() {
			k = append(k, '%')
			k = append(k, a.Name...)
		} else {
			k = append(k, '#')
			k = strconv.AppendInt(k, int64(a.ID), 10)
		}
		k = append(k, ',')
	}
	k = append(k, v.Attrs.Format()...)
	k = append(k, ':')
	k = append(k, v.Type.String()...)
	s.key = k
	return k
}
