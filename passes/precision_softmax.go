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
// already saw them. conv maps each value to its half copy.
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
	back := map[*ir.Value]*ir.Value{}
	readers := map[*ir.Value][]string{}
	var order []*ir.Value
	var body []*ir.Value
	for i, v := range f.Body {
		for j, a := range v.Args {
			h, ok := conv[a]
			if !ok || v == h || v.Op == ir.OpDot || !softmaxOutput(a) {
				continue
			}
			if d, ok := firstDot[h]; !ok || i < d {
				continue
			}
			if back[a] == nil {
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
		fmt.Fprintf(log, "half %s (softmax output): %s read it back from %v after the product\n",
			a.Ref(), strings.Join(readers[a], ", "), conv[a].Type.DType)
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
