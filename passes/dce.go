package passes

import "xlc/ir"

// dce removes dead code from f: afterwards every instruction is used by a
// result, directly or through other instructions. Parameters are kept, used
// or not: they are the function's signature.
func dce(f *ir.Func) (bool, error) {
	return deadCode(f), nil
}

// deadCode drops the instructions of f that no result depends on and reports
// whether there were any. It marks from the results backwards over the body,
// so it is linear in the size of f.
func deadCode(f *ir.Func) bool {
	f.Renumber()
	live := make([]bool, len(f.Body))
	mark := func(v *ir.Value) {
		if !v.IsParam() && v.ID >= 0 && v.ID < len(live) && f.Body[v.ID] == v {
			live[v.ID] = true
		}
	}
	for _, r := range f.Results {
		mark(r)
	}
	n := 0
	for i := len(f.Body) - 1; i >= 0; i-- {
		if live[i] {
			n++
			for _, a := range f.Body[i].Args {
				mark(a)
			}
		}
	}
	if n == len(f.Body) {
		return false
	}
	body := f.Body[:0]
	for i, v := range f.Body {
		if live[i] {
			body = append(body, v)
		}
	}
	clear(f.Body[len(body):])
	f.Body = body
	f.Renumber()
	return true
}
