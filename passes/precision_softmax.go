package passes

import (
	"fmt"
	"io"
	"strings"

	"xlc/ir"
)

// readSoftmaxFromHalf makes the readers of a softmax's output p (or of its
// masked copy select(m, p, 0)) that come after a product reading its half
// copy h read convert(h) instead: the backward of attention then keeps h,
// not p in f32 (or the scores it is recomputed from), from the forward to
// the backward. Its values are p rounded to the half type, as the product
// already saw them. Attention's output O = P·V, as the heads' merge lays
// it out, is read back the same way from the half copy of its reshape,
// the output projection's operand (D's sum, attention-d, reads it in the
// backward). conv maps each value to its half copy.
func readSoftmaxFromHalf(f *ir.Func, conv map[*ir.Value]*ir.Value, log io.Writer) {
	firstDot := map[*ir.Value]int{}
	for i, v := range f.Body {
		if v.Op != ir.OpDot {
			continue
		}
		for _, a := range v.Args {
			if _, ok := firstDot[a]; !ok {
				firstDot[a] = i
			}
		}
	}
	// via[a] is the reshape of attention output a that has a half copy.
	via := map[*ir.Value]*ir.Value{}
	for _, v := range f.Body {
		if v.Op == ir.OpReshape && conv[v] != nil && attentionOutput(v.Args[0]) {
			via[v.Args[0]] = v
		}
	}
	back := map[*ir.Value]*ir.Value{}
	readers := map[*ir.Value][]string{}
	var order []*ir.Value
	var body []*ir.Value
	for i, v := range f.Body {
		for j, a := range v.Args {
			r := via[a]
			src := a
			switch {
			case r != nil && v != r:
				src = r
			case !softmaxOutput(a):
				continue
			}
			h, ok := conv[src]
			if !ok || v == h || v.Op == ir.OpDot {
				continue
			}
			if d, ok := firstDot[h]; !ok || i < d {
				continue
			}
			if back[a] == nil {
				if src != a {
					h = &ir.Value{Op: ir.OpReshape, Args: []*ir.Value{h}, Type: ir.Type{DType: h.Type.DType, Shape: a.Type.Shape}}
					body = append(body, h)
				}
				back[a] = &ir.Value{Op: ir.OpConvert, Args: []*ir.Value{h}, Type: cloneType(a.Type)}
				body = append(body, back[a])
				order = append(order, a)
			}
			readers[a] = append(readers[a], v.Ref())
			v.Args[j] = back[a]
		}
		body = append(body, v)
	}
	f.Body = body
	for _, a := range order {
		what := "softmax output"
		if via[a] != nil {
			what = "attention output"
		}
		fmt.Fprintf(log, "half %s (%s): %s read it back from %v after the product\n",
			a.Ref(), what, strings.Join(readers[a], ", "), back[a].Args[0].Type.DType)
	}
}

// softmaxOutput reports whether v is a softmax's output p (softmaxParts)
// or its masked copy select(m, p, 0).
func softmaxOutput(v *ir.Value) bool {
	if v.Op == ir.OpSelect && isConst(v.Args[2], 0) {
		v = v.Args[1]
	}
	z, _, _ := softmaxParts(v)
	return z != nil
}

// attentionOutput reports whether v is a product P·V of probabilities
// (chainOf, softmaxOutput), maybe transposed, its operands read in the
// half type.
func attentionOutput(v *ir.Value) bool {
	if v.Op == ir.OpTranspose {
		v = v.Args[0]
	}
	if v.Op != ir.OpDot || v.Args[0].Op != ir.OpConvert {
		return false
	}
	return softmaxOutput(chainOf(v.Args[0].Args[0]).base)
}
