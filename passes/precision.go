package passes

import (
	"fmt"
	"io"
	"slices"

	"xlc/ir"
)

// precision gives the matmuls the half type Options.Precision (bf16 or
// f16), like TF's automatic mixed precision allow list: a matrix product
// (a free dim above size 1 on each side) of f32 operands reads them
// converted to the half type, once per value, and sums and returns f32
// (out=f32); a conversion from the half type is read through, so no pair
// of conversions is left. The rest stays f32: reductions, exp, log, the
// norms and their epsilons, the loss, the optimizer, parameters and state
// (master weights). Constants that would overflow the half type in an
// operand are clamped (precision_clamp.go); a softmax's later readers read
// its half copy back (precision_softmax.go); pre-activations are kept in
// half (precision_preact.go). Options.PrecisionLog gets each decision.
func precision(f *ir.Func, opt Options) (bool, error) {
	half := opt.Precision
	if half != ir.BF16 && half != ir.F16 {
		return false, fmt.Errorf("precision: want bf16 or f16, have %v", half)
	}
	log := opt.PrecisionLog
	if log == nil {
		log = io.Discard
	}
	conv := map[*ir.Value]*ir.Value{}
	var body []*ir.Value
	cl := &clamper{half: half, log: log, memo: map[*ir.Value]*ir.Value{},
		emit: func(v *ir.Value) { body = append(body, v) }}
	// halfOf is a's value in the half type for dot, converted on first use.
	halfOf := func(a, dot *ir.Value) *ir.Value {
		if c, ok := conv[a]; ok {
			return c
		}
		c := convertedFrom(a, half)
		if c == nil {
			c = &ir.Value{Op: ir.OpConvert, Args: []*ir.Value{cl.clamp(a, dot, 8)}, Type: ir.Type{DType: half, Shape: a.Type.Shape}}
			body = append(body, c)
		}
		conv[a] = c
		return c
	}
	changed := false
	for _, v := range f.Body {
		if v.Op == ir.OpDot {
			if why := keepDot(v); why != "" {
				fmt.Fprintf(log, "keep %s: %s\n", v.Ref(), why)
			} else {
				fmt.Fprintf(log, "half %s (dot %v): reads %s and %s in %v, sums in f32\n", v.Ref(), v.Type, v.Args[0].Ref(), v.Args[1].Ref(), half)
				v.Args = []*ir.Value{halfOf(v.Args[0], v), halfOf(v.Args[1], v)}
				v.Attrs = v.Attrs.Set("out", v.Type.DType.String())
				changed = true
			}
		}
		body = append(body, v)
	}
	f.Body = body
	readSoftmaxFromHalf(f, conv, log)
	halfPreactivations(f, half, log)
	deadCode(f) // a conversion from the half type no dot reads any more
	f.Renumber()
	return changed, nil
}

// keepDot says why dot v stays as it is, or "" when it is a matrix
// product of f32 operands.
func keepDot(v *ir.Value) string {
	a, b := v.Args[0], v.Args[1]
	if _, ok := v.Attrs.Get("out"); ok {
		return "its precision is set already"
	}
	if a.Type.DType != ir.F32 || b.Type.DType != ir.F32 {
		return fmt.Sprintf("operands are %v, not f32", a.Type.DType)
	}
	lb, rb, lc, rc := ir.DotDims(v.Attrs)
	wide := func(t ir.Type, batch, contract []int) bool {
		return slices.ContainsFunc(ir.DotFree(t.Rank(), batch, contract), func(d int) bool { return t.Shape[d] > 1 })
	}
	if !wide(a.Type, lb, lc) || !wide(b.Type, rb, rc) {
		return "a sum of products, not a matrix product: a reduction, in f32"
	}
	return ""
}

// convertedFrom returns x when v converts x of dtype d to another type
// (d to f32 and back is exact), else nil.
func convertedFrom(v *ir.Value, d ir.DType) *ir.Value {
	if v.Op == ir.OpConvert && v.Args[0].Type.DType == d {
		return v.Args[0]
	}
	return nil
}
