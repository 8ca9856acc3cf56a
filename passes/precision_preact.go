package passes

import (
	"fmt"
	"io"
	"strings"

	"xlc/ir"
)

// halfPreactivations rounds each pre-activation to the half type once: the
// f32 result h of a half product, or of an elementwise op on one whose
// other operands are fixed (a bias add), read only by elementwise ops,
// within rematGap instructions of it (an activation) and again, itself or
// values computed from it alone (erf's scaled input), rematGap or more
// after it (the activation's gradient). Its readers read
// convert(convert(h, half), f32) instead, so the step keeps h in half from
// the forward to the backward, as PyTorch's autocast keeps a linear
// layer's half output, and the activation and its gradient see the same
// values.
func halfPreactivations(f *ir.Func, half ir.DType, log io.Writer) {
	users, result := readersOf(f)
	pos := map[*ir.Value]int{}
	for i, v := range f.Body {
		pos[v] = i
	}
	back := map[*ir.Value]*ir.Value{}
	var body []*ir.Value
	for _, v := range f.Body {
		for j, a := range v.Args {
			if b := back[a]; b != nil {
				v.Args[j] = b
			}
		}
		body = append(body, v)
		us := users[v]
		rounded := len(us) == 1 && us[0].Op == ir.OpConvert && us[0].Type.DType == half
		if result[v] || rounded || !preactivation(v, half, users) || len(us) == 0 ||
			pos[us[0]]-pos[v] >= rematGap || !readLate(v, users, pos) {
			continue
		}
		var refs []string
		for _, u := range us {
			if !rematElementwise(u) {
				refs = nil
				break
			}
			refs = append(refs, u.Ref())
		}
		if refs == nil {
			continue
		}
		c := &ir.Value{Op: ir.OpConvert, Args: []*ir.Value{v}, Type: ir.Type{DType: half, Shape: v.Type.Shape.Clone()}}
		back[v] = &ir.Value{Op: ir.OpConvert, Args: []*ir.Value{c}, Type: cloneType(v.Type)}
		body = append(body, c, back[v])
		fmt.Fprintf(log, "half %s (pre-activation): stored in %v, %s read it back\n", v.Ref(), half, strings.Join(refs, ", "))
	}
	f.Body = body
}

// preactivation reports whether v is an f32 value computed by a half
// product, or by one elementwise op (a bias add) from a half product that
// only it reads and from fixed values; a product that such an op alone
// reads is not one itself.
func preactivation(v *ir.Value, half ir.DType, users map[*ir.Value][]*ir.Value) bool {
	halfDot := func(d *ir.Value) bool {
		return d.Op == ir.OpDot && d.Type.DType == ir.F32 && d.Args[0].Type.DType == half && d.Args[1].Type.DType == half
	}
	biasAdd := func(u *ir.Value) bool {
		if u.Type.DType != ir.F32 || !u.Op.IsElementwise() || u.Op == ir.OpConvert {
			return false
		}
		dots := 0
		for _, a := range u.Args {
			switch {
			case halfDot(a) && len(users[a]) == 1:
				dots++
			case !fixed(a):
				return false
			}
		}
		return dots == 1
	}
	if halfDot(v) {
		us := users[v]
		return len(us) != 1 || !biasAdd(us[0])
	}
	return biasAdd(v)
}

// readLate reports whether v, or a value computed elementwise from v and
// fixed values alone, is read rematGap or more instructions after v.
func readLate(v *ir.Value, users map[*ir.Value][]*ir.Value, pos map[*ir.Value]int) bool {
	from := map[*ir.Value]bool{v: true}
	queue := []*ir.Value{v}
	for i := 0; i < len(queue) && i < maxRematOps; i++ {
		for _, u := range users[queue[i]] {
			if pos[u]-pos[v] >= rematGap {
				return true
			}
			if from[u] || !rematElementwise(u) {
				continue
			}
			alone := true
			for _, a := range u.Args {
				alone = alone && (from[a] || fixed(a))
			}
			if alone {
				from[u] = true
				queue = append(queue, u)
			}
		}
	}
	return false
}

// fixed reports whether v is a constant, or a broadcast (or reshape) of a
// parameter or constant, such as a bias: nothing the step computes.
func fixed(v *ir.Value) bool {
	if v.Op == ir.OpConstant {
		return true
	}
	if v.Op != ir.OpBroadcast {
		return false
	}
	for v.Op == ir.OpBroadcast || v.Op == ir.OpReshape {
		v = v.Args[0]
	}
	return v.IsParam() || v.Op == ir.OpConstant
}
