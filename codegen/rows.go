package codegen

import (
	"math"
	"slices"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// rowPlan is how a fused callee whose reductions all reduce the same axes
// of one shape is lowered as a row kernel: the parallel range is the rows
// (the kept index space, the reductions' result shape); per row, each
// reduction is computed once, in callee order, and kept with the row
// values derived from it; then one loop over the row's elements computes
// the root (unless the root is itself a row value).
type rowPlan struct {
	shape ir.Shape // the reductions' operand shape
	axes  []int    // the reduced axes, in the reductions' order
	kept  []int    // the other axes, in order
	rows  ir.Shape // shape minus the reduced axes
	// row holds the values with one value per row: the reductions and the
	// elementwise ops and reshapes of them (shaped as rows up to dimensions of
	// size 1, so that they have one value per row in row order), in callee
	// order.
	row []*ir.Value
}

// elementwise reports whether v's element at an index depends only on its
// operands' elements at that index.
func elementwise(v *ir.Value) bool {
	switch v.Op.Class() {
	case ir.ClassUnary, ir.ClassBinary, ir.ClassCompare:
		return true
	}
	return v.Op == ir.OpSelect || v.Op == ir.OpConvert
}

// visitValues calls visit once on each value reachable from roots through
// operands, a value before its operands, and goes on to v's operands only
// where visit(v) says so.
func visitValues(roots []*ir.Value, visit func(v *ir.Value) (descend bool)) {
	seen := map[*ir.Value]bool{}
	var walk func(v *ir.Value)
	walk = func(v *ir.Value) {
		if seen[v] {
			return
		}
		seen[v] = true
		if visit(v) {
			for _, a := range v.Args {
				walk(a)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
}

// planRows returns the row plan of callee c, or nil when c does not have
// the form of a row kernel: at least one reduction, every reduction over the
// same axes of operands of one shape, and every value that depends on a
// reduction either a row value (a reduction, or an elementwise op or a
// reshape whose shape is the rows' up to dimensions of size 1), a
// broadcast of a row value back to the operand shape along the kept axes,
// or an elementwise op of the operand shape; the root depends on a
// reduction.
func planRows(c *ir.Func) *rowPlan {
	var p *rowPlan
	dep := map[*ir.Value]bool{}
	for _, v := range c.Body {
		if v.Op == ir.OpReduceSum || v.Op == ir.OpReduceMax {
			axes := v.Attrs.Ints("axes")
			s := v.Args[0].Type.Shape
			if p == nil {
				if len(axes) == 0 {
					return nil
				}
				p = &rowPlan{shape: s, axes: axes, rows: v.Type.Shape}
				for i := range s {
					if !slices.Contains(axes, i) {
						p.kept = append(p.kept, i)
					}
				}
			} else if !s.Equal(p.shape) || !slices.Equal(axes, p.axes) {
				return nil
			}
			dep[v] = true
			p.row = append(p.row, v)
			continue
		}
		for _, a := range v.Args {
			if dep[a] {
				dep[v] = true
			}
		}
		if !dep[v] {
			continue
		}
		s := v.Type.Shape
		switch {
		case elementwise(v) && s.Equal(p.shape):
		case (elementwise(v) || v.Op == ir.OpReshape) && s.SameSqueezed(p.rows):
			p.row = append(p.row, v)
		case v.Op == ir.OpBroadcast && s.Equal(p.shape) && slices.Contains(p.row, v.Args[0]) &&
			slices.Equal(p.keptOf(v.Args[0].Type.Shape, v.Attrs.Ints("dims")), p.keptOf(p.rows, p.kept)):
		default:
			return nil
		}
	}
	if p == nil || !dep[c.Results[0]] {
		return nil
	}
	// A multi-output fusion's other results are stored per row or per
	// element of the rows.
	for _, r := range c.Results[1:] {
		if s := r.Type.Shape; !s.Equal(p.shape) && !s.SameSqueezed(p.rows) {
			return nil
		}
	}
	return p
}

// keptOf lists, for the dimensions of shape s not of size 1, the axis of
// the reductions' operand each maps to (by dims).
func (p *rowPlan) keptOf(s ir.Shape, dims []int) []int {
	var r []int
	for i, n := range s {
		if n != 1 {
			r = append(r, dims[i])
		}
	}
	return r
}

// emitRows emits the row kernel of plan p with root root, the first of the
// kernel's results: per row, the row values, then the results with one
// value per row are stored, then one loop over the row's elements computes
// and stores the results of the rows' shape.
func (g *kernelBuilder) emitRows(p *rowPlan, root *ir.Value, instrs int) (extent, cost int64) {
	n := int64(p.rows.NumElements())
	if n == 0 {
		return 0, 1
	}
	var sizes []int
	r := int64(1)
	for _, a := range p.axes {
		sizes = append(sizes, p.shape[a])
		r *= int64(p.shape[a])
	}
	var perRow, perElem []int // indexes in g.results
	for k, r := range g.results {
		if slices.Contains(p.row, r) || !r.Type.Shape.Equal(p.shape) {
			perRow = append(perRow, k)
		} else {
			perElem = append(perElem, k)
		}
	}
	g.planRowCaches(p, perElem, r)
	g.split = g.planSplit(p)
	defer func() { g.rowCaches, g.rowCacheOrder, g.rowIx, g.rowPos, g.split = nil, nil, nil, nil, nil }()
	g.forLoop("rowk", g.lo, g.hi, func(row value.Value) {
		rix := atLinear(p.rows, row)
		g.rowVals = map[*ir.Value]value.Value{}
		for _, w := range p.row {
			// Each at an index of its own shape: same linear index.
			wix := rix
			if !w.Type.Shape.Equal(p.rows) {
				wix = atLinear(w.Type.Shape, row)
			}
			if w.Op == ir.OpReduceMax && w.Type.DType.IsFloat() {
				g.rowVals[w] = g.rowMax(w, wix)
			} else {
				g.rowVals[w] = g.elemOp(w, wix)
			}
		}
		for _, k := range perRow {
			r := g.results[k]
			g.storeAt(r.Type.DType, g.elem(r, atLinear(r.Type.Shape, row)), g.outs[k], row)
		}
		if len(perElem) == 0 {
			return
		}
		kept := g.dims(rix)
		g.rowLoop("elt", sizes, kept, p.axes[len(p.axes)-1] == len(p.shape)-1, func(ri []value.Value) {
			full := make([]value.Value, len(p.shape))
			for i, a := range p.kept {
				full[a] = kept[i]
			}
			for i, a := range p.axes {
				full[a] = ri[i]
			}
			ix := atDims(p.shape, full)
			if g.rowCaches != nil {
				g.rowIx, g.rowPos = ix, g.rowLocal(sizes, ri)
			}
			g.storeResults(ix, g.linear(ix), perElem)
		})
	})
	return n, 1 + int64(instrs)*max(r, 1)
}

// floatKeys are the order keys of floats of type t (rowMax): it, their
// bits' integer type of width w; ic, a constant of it; key, the key of a
// float's bits (its own inverse); bits, a float's bits as it holds them.
type floatKeys struct {
	it   *types.IntType
	w    int64
	ic   func(c int64) value.Value
	key  func(b value.Value) value.Value
	bits func(f float64) int64
}

func (g *kernelBuilder) floatKeys(t types.Type) floatKeys {
	k := floatKeys{it: types.I64, w: 64}
	if t.Equal(types.Float) {
		k.it, k.w = types.I32, 32
	}
	k.ic = func(c int64) value.Value { return constant.NewInt(k.it, c) }
	k.key = func(b value.Value) value.Value {
		return g.b.NewXor(b, g.b.NewLShr(g.b.NewAShr(b, k.ic(k.w-1)), k.ic(1)))
	}
	k.bits = func(f float64) int64 {
		if k.w == 32 {
			return int64(int32(math.Float32bits(float32(f))))
		}
		return int64(math.Float64bits(f))
	}
	return k
}

// rowMax computes one element of a float reduce_max v at ix (v's shape)
// with elemReduce's result in a form opt vectorizes. The fold of math.Max
// from -inf depends only on the set of elements, so it is two integer
// reductions, which LLVM reassociates: the maximum of the keys
// b ^ ((b >>a (w-1)) >>l 1) of the elements' bits b, whose signed order is
// the float order with -0 < +0 (a NaN's key is the integer minimum), and a
// flag of whether some element is NaN. The result is the float of the
// maximum key (the key map is its own inverse), or NaN when some element
// is NaN and the maximum is not +inf.
func (g *kernelBuilder) rowMax(v *ir.Value, ix *index) value.Value {
	x := v.Args[0]
	t := computeType(v.Type.DType)
	fk := g.floatKeys(t)
	it, w, ic, key, bits := fk.it, fk.w, fk.ic, fk.key, fk.bits
	minKey := ic(-1 << (w - 1))
	reduced := make([]bool, x.Type.Rank())
	var sizes []int
	for _, a := range v.Attrs.Ints("axes") {
		reduced[a] = true
		sizes = append(sizes, x.Type.Shape[a])
	}
	// The flag is as wide as a key, the compare's mask or'ed in: a vector
	// of flags then needs no narrowing.
	kacc, nacc := g.alloca(it), g.alloca(it)
	g.b.NewStore(key(ic(bits(math.Inf(-1)))), kacc)
	g.b.NewStore(ic(0), nacc)
	kept := g.dims(ix)
	g.rowLoop("rmax", sizes, kept, reduced[len(reduced)-1], func(ri []value.Value) {
		e := g.elem(x, atDims(x.Type.Shape, interleave(reduced, kept, ri)))
		nan := g.b.NewFCmp(enum.FPredUNO, e, e)
		ke := g.b.NewSelect(nan, minKey, key(g.b.NewBitCast(e, it)))
		a := g.b.NewLoad(it, kacc)
		g.b.NewStore(g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, ke, a), ke, a), kacc)
		g.b.NewStore(g.b.NewOr(g.b.NewLoad(it, nacc), g.b.NewSExt(nan, it)), nacc)
	})
	km := g.b.NewLoad(it, kacc)
	m := g.b.NewBitCast(key(km), t)
	anyNaN := g.b.NewICmp(enum.IPredNE, g.b.NewLoad(it, nacc), ic(0))
	notInf := g.b.NewICmp(enum.IPredNE, km, ic(bits(math.Inf(1))))
	return g.b.NewSelect(g.b.NewAnd(anyNaN, notInf), fconst(t, math.NaN()), m)
}
