package codegen

import (
	"fmt"
	"math"
	"slices"

	"xlc/ir"
	"xlc/runtime/interp"
)

// Causal attention multiplies by matrices that are zero above the
// diagonal (softmax's probabilities and the scores' gradient, each a
// select of the mask against 0) and computes scores it then masks. The
// fast dot skips that half (DotSpec's bands) when the kernel can tell:
// an operand read from memory is the result of such a select (zeroTriangle,
// across kernels), or the dot kernel's own epilogue selects against the
// mask (neededTriangle). A select discards its other branch, so skipping
// a product's unneeded elements cannot change any result, NaN and infinity
// included. Skipping an operand's zeros drops terms 0·x: where the other
// operand holds an infinity or NaN there, the interpreter's sum is NaN and
// the kernel's is not. Such a value reaches the loss through other terms
// anyway (attention's V, dO and K rows are each also read unmasked, on
// the diagonal), so the same steps are non-finite, and the train step's
// finiteness check skips them on both.

// triangle is the set of a value's elements whose indices along axes A
// and B satisfy idx[A] − idx[B] ≥ C.
type triangle struct{ A, B, C int }

func (t triangle) String() string { return fmt.Sprintf("i%d-i%d>=%d", t.A, t.B, t.C) }

// predTriangle returns the triangle where the bool value p is true: a
// comparison of two integer iotas of one shape along different axes,
// possibly broadcast (along other axes: a dim of size 1 expanded would make
// its index 0 everywhere).
func predTriangle(p *ir.Value) (triangle, bool) {
	switch p.Op {
	case ir.OpBroadcast:
		t, ok := predTriangle(p.Args[0])
		dims := p.Attrs.Ints("dims")
		if !ok || t.A >= len(dims) || t.B >= len(dims) {
			return triangle{}, false
		}
		in, out := p.Args[0].Type.Shape, p.Type.Shape
		if in[t.A] != out[dims[t.A]] || in[t.B] != out[dims[t.B]] {
			return triangle{}, false
		}
		return triangle{dims[t.A], dims[t.B], t.C}, true
	case ir.OpGe, ir.OpGt, ir.OpLe, ir.OpLt:
		x, y := p.Args[0], p.Args[1]
		// Float iotas are inexact past their mantissa (bf16 past 256).
		if x.Op != ir.OpIota || y.Op != ir.OpIota || x.Type.DType.IsFloat() {
			return triangle{}, false
		}
		ax, ay := x.Attrs.Int("axis"), y.Attrs.Int("axis")
		if ax == ay {
			return triangle{}, false
		}
		switch p.Op {
		case ir.OpGe: // ix ≥ iy
			return triangle{ax, ay, 0}, true
		case ir.OpGt: // ix − iy ≥ 1
			return triangle{ax, ay, 1}, true
		case ir.OpLe: // iy ≥ ix
			return triangle{ay, ax, 0}, true
		default: // iy − ix ≥ 1
			return triangle{ay, ax, 1}, true
		}
	}
	return triangle{}, false
}

// fill is what a value holds outside a triangle: the constant c.
type fill struct {
	t triangle
	c float64
}

// noteFills records in g.fills the fill of each of vs that holds a
// constant outside a triangle (fillTriangle): values an attention kernel
// computes into a buffer of its own and then reads as a product's operand,
// whose bands come from that fill. nil entries are skipped.
func (g *kernelBuilder) noteFills(vs ...*ir.Value) {
	for _, v := range vs {
		if v == nil {
			continue
		}
		if f, ok := fillTriangle(v); ok {
			if g.fills == nil {
				g.fills = map[*ir.Value]fill{}
			}
			g.fills[v] = f
		}
	}
}

// fillTriangle returns the triangle outside which the float value v holds
// one constant, and the constant: v selects a splat constant outside it,
// or selects between such a value and that constant, or multiplies or
// divides such a value by a finite constant, or is a conversion or a
// transpose of one, or the result of a fusion whose callee computes one.
func fillTriangle(v *ir.Value) (fill, bool) {
	d := v.Type.DType
	if !d.IsFloat() {
		return fill{}, false
	}
	switch v.Op {
	case ir.OpSelect:
		if c, ok := splatValue(v.Args[2]); ok {
			if t, ok := predTriangle(v.Args[0]); ok {
				return fill{t, interp.Round(d, c)}, true
			}
		}
		// Both branches hold the same constant outside one triangle
		// (dropout of masked probabilities).
		for i := 1; i <= 2; i++ {
			c, ok := splatValue(v.Args[3-i])
			f, okf := fillTriangle(v.Args[i])
			if ok && okf && math.Float64bits(interp.Round(d, c)) == math.Float64bits(f.c) {
				return f, true
			}
		}
	case ir.OpDiv:
		if x, ok := splatValue(v.Args[1]); ok && x-x == 0 && x != 0 {
			if f, ok := fillTriangle(v.Args[0]); ok {
				// Division of values of d is correctly rounded in float64.
				return fill{f.t, interp.Round(d, f.c/interp.Round(d, x))}, true
			}
		}
	case ir.OpMul:
		for i, a := range v.Args {
			if finiteConst(v.Args[1-i]) {
				if f, ok := fillTriangle(a); ok {
					// The product of two values of d is exact in float64.
					k, _ := splatValue(v.Args[1-i])
					return fill{f.t, interp.Round(d, f.c*interp.Round(d, k))}, true
				}
			}
		}
	case ir.OpConvert:
		if f, ok := fillTriangle(v.Args[0]); ok {
			return fill{f.t, interp.Round(d, f.c)}, true
		}
	case ir.OpTranspose:
		f, ok := fillTriangle(v.Args[0])
		if !ok {
			return f, false
		}
		perm := v.Attrs.Ints("perm")
		return fill{triangle{slices.Index(perm, f.t.A), slices.Index(perm, f.t.B), f.t.C}, f.c}, true
	case ir.OpFusion:
		return fillTriangle(v.Callee.Results[0])
	case ir.OpOutput:
		return fillTriangle(v.Args[0].Callee.Results[v.Attrs.Int("index")])
	}
	return fill{}, false
}

// zeroTriangle returns a triangle outside which v is zero (fillTriangle).
func zeroTriangle(v *ir.Value) (triangle, bool) {
	f, ok := fillTriangle(v)
	return f.t, ok && f.c == 0
}

// splatValue returns the value of a splat constant, possibly broadcast.
func splatValue(v *ir.Value) (float64, bool) {
	for v.Op == ir.OpBroadcast {
		v = v.Args[0]
	}
	if v.Op != ir.OpConstant {
		return 0, false
	}
	return v.Attrs.Float("value"), true
}

func isZeroConst(v *ir.Value) bool {
	x, ok := splatValue(v)
	return ok && x == 0
}

func finiteConst(v *ir.Value) bool {
	x, ok := splatValue(v)
	return ok && x-x == 0
}

// neededTriangle returns a triangle outside which no result of a kernel
// (body, results) depends on dot's elements: every path from dot to a
// result, through elementwise ops of dot's shape, meets the selected
// branch of a select whose predicate is that triangle.
func neededTriangle(dot *ir.Value, body, results []*ir.Value) (triangle, bool) {
	users := map[*ir.Value][]*ir.Value{}
	for _, v := range body {
		for _, a := range v.Args {
			if !slices.Contains(users[a], v) {
				users[a] = append(users[a], v)
			}
		}
	}
	var t triangle
	found := false
	seen := map[*ir.Value]bool{dot: true}
	stack := []*ir.Value{dot}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if slices.Contains(results, v) {
			return triangle{}, false
		}
		for _, u := range users[v] {
			if u.Op == ir.OpSelect && u.Args[1] == v && u.Args[0] != v && u.Args[2] != v {
				if pt, ok := predTriangle(u.Args[0]); ok && (!found || pt == t) {
					t, found = pt, true
					continue
				}
			}
			if !elementwise(u) || !u.Type.Shape.Equal(dot.Type.Shape) {
				return triangle{}, false
			}
			if !seen[u] {
				seen[u] = true
				stack = append(stack, u)
			}
		}
	}
	return t, found
}

// band returns t as a DotBand of index pairs (r, s) of a value of shape
// sh, where r is the index of the dims rows (merged) and s of the dims
// cols: t must relate one dim of each, the only one of size above 1 in
// its list.
func (t triangle) band(sh ir.Shape, rows, cols []int) (DotBand, bool) {
	only := func(dims []int, ax int) bool {
		if !slices.Contains(dims, ax) {
			return false
		}
		for _, d := range dims {
			if d != ax && sh[d] != 1 {
				return false
			}
		}
		return true
	}
	switch {
	case only(rows, t.A) && only(cols, t.B): // r − s ≥ C
		return DotBand{On: true, D: t.C}, true
	case only(cols, t.A) && only(rows, t.B): // s − r ≥ C
		return DotBand{On: true, Upper: true, D: -t.C}, true
	}
	return DotBand{}, false
}

// dotBands sets the bands of spec, the fast dot computing dot: those of
// its operands read from memory that fills says are zero outside a
// triangle, and, when results is not nil, the one outside which the
// kernel's results (body's) do not need the product.
func dotBands(spec *DotSpec, dot *ir.Value, fills map[*ir.Value]fill, body, results []*ir.Value) {
	a, b := dot.Args[0], dot.Args[1]
	lb, rb, lc, rc := ir.DotDims(dot.Attrs)
	if f, ok := fills[a]; ok && f.c == 0 {
		spec.BandA, _ = f.t.band(a.Type.Shape, ir.DotFree(a.Type.Rank(), lb, lc), lc)
	}
	if f, ok := fills[b]; ok && f.c == 0 {
		spec.BandB, _ = f.t.band(b.Type.Shape, rc, ir.DotFree(b.Type.Rank(), rb, rc))
	}
	if results == nil {
		return
	}
	if t, ok := neededTriangle(dot, body, results); ok {
		nb, nm := len(lb), a.Type.Rank()-len(lb)-len(lc)
		var m, n []int
		for i := nb; i < dot.Type.Rank(); i++ {
			if i < nb+nm {
				m = append(m, i)
			} else {
				n = append(n, i)
			}
		}
		spec.BandC, _ = t.band(dot.Type.Shape, m, n)
	}
}

// operandFills returns, for each operand of instruction v that holds a
// constant outside a triangle, its fill, keyed by the value the kernel
// reads it as (a fused callee's parameter, else the operand).
func operandFills(v *ir.Value) map[*ir.Value]fill {
	var z map[*ir.Value]fill
	for i, a := range v.Args {
		f, ok := fillTriangle(a)
		if !ok {
			continue
		}
		if z == nil {
			z = map[*ir.Value]fill{}
		}
		if v.Op == ir.OpFusion {
			z[v.Callee.Params[i]] = f
		} else {
			z[a] = f
		}
	}
	return z
}
