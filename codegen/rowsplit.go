package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Causal attention's row kernels (softmax and its gradient) read scores
// that hold one constant above the diagonal (−1e9, selected by the scores'
// kernel) and select 0 there themselves. A row kernel over one axis that a
// triangle relates to a kept axis runs each loop over a row in two parts,
// split at the triangle's edge and in the row's order. In the part outside
// the triangle an operand known to hold a constant there (its fill) is that
// constant, and a select on the triangle is its other branch: the part's
// values are the same for every element, opt hoists them out of the loop,
// and the masked half costs an add or a store per element, not an exp.
// Inside it, a select on the triangle is its first branch, with no compare
// of the indices.

// rowSplit is a row kernel's split: the triangle t, over the rows'
// operand shape, relates the reduced axis red to the kept axis kept (at
// keptPos among the plan's kept axes).
type rowSplit struct {
	t         triangle
	shape     ir.Shape
	red, kept int
	keptPos   int
	outside   bool        // while emitting the part outside t
	j, k      value.Value // there: the loop's index, the row's index along kept
}

// planSplit returns the split of row plan p, or nil when its rows reduce
// more than one axis or no triangle of an operand's fill or of a select in
// the kernel relates the reduced axis to a kept one.
func (g *kernelBuilder) planSplit(p *rowPlan) *rowSplit {
	if len(p.axes) != 1 {
		return nil
	}
	return g.splitFor(p.shape, p.axes[0], p.kept)
}

// splitFor returns the split of loops over axis red of shape, the axes
// kept indexing each loop, or nil when no triangle of an operand's fill
// or of a select in the kernel's results relates red to a kept axis.
func (g *kernelBuilder) splitFor(shape ir.Shape, red int, kept []int) *rowSplit {
	var cands []triangle
	visitValues(g.results, func(v *ir.Value) bool {
		if f, ok := g.fills[v]; ok && v.Type.Shape.Equal(shape) {
			cands = append(cands, f.t)
		}
		if v.Op == ir.OpSelect && v.Type.Shape.Equal(shape) {
			if t, ok := predTriangle(v.Args[0]); ok {
				cands = append(cands, t)
			}
		}
		return true
	})
	for _, t := range cands {
		other := t.A
		if other == red {
			other = t.B
		} else if t.B != red {
			continue
		}
		pos := slices.Index(kept, other)
		if pos < 0 {
			continue
		}
		return &rowSplit{t: t, shape: shape, red: red, kept: other, keptPos: pos}
	}
	return nil
}

// rowLoop runs body over the elements of the current row (ri: the reduced
// axes' indices), kept being the row's indices along the plan's kept axes:
// nestedLoops, or with a split its two parts. The innermost loop takes row
// hints when it walks the operands' last axis (contiguous: forcing a
// vector width on a strided loop would make it gather).
func (g *kernelBuilder) rowLoop(name string, sizes []int, kept []value.Value, contiguous bool, body func(ri []value.Value)) {
	var hints []metadata.Field
	if contiguous {
		hints = g.mod.rowHints()
	}
	s := g.split
	if s == nil {
		g.nestedLoopsHinted(name, sizes, hints, body)
		return
	}
	g.splitLoop(name, i64c(0), i64c(int64(sizes[0])), kept[s.keptPos], hints, func(j value.Value) {
		body([]value.Value{j})
	})
}

// splitLoop runs body over [from, to) along the split's reduced axis, k
// being the index along its kept one, in two loops divided at the
// triangle's edge (clamped to the range), in order, each with hints.
func (g *kernelBuilder) splitLoop(name string, from, to, k value.Value, hints []metadata.Field, body func(j value.Value)) {
	s := g.split
	// Inside t: k − j ≥ C (j < k − C + 1) when kept is t.A, else
	// j − k ≥ C (j ≥ k + C).
	lowInside := s.t.A == s.kept
	c := int64(s.t.C)
	if lowInside {
		c = 1 - c
	}
	edge := g.b.NewAdd(k, i64c(c))
	e := g.min64(g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, edge, from), from, edge), to)
	part := func(from, to value.Value, outside bool) {
		suffix := ".in"
		if outside {
			suffix = ".out"
		}
		g.hintedLoop(name+suffix, from, to, i64c(1), hints, func(j value.Value) {
			s.outside, s.j, s.k = outside, j, k
			body(j)
			s.outside, s.j, s.k = false, nil, nil
		})
	}
	part(from, e, !lowInside)
	part(e, to, lowInside)
}

// outsideAt reports whether ix is the element of the row loop's part
// outside the split's triangle that the loop is at: ix addresses the rows'
// operand shape with the loop's index along the reduced axis and the
// row's along the kept one (the only two t constrains).
func (g *kernelBuilder) outsideAt(ix *index) bool {
	return g.split != nil && g.split.outside && g.atLoop(ix)
}

// atLoop reports whether ix is the element the split row loop is at, in
// either part (g.split is not nil): a select on the triangle is then one
// of its branches.
func (g *kernelBuilder) atLoop(ix *index) bool {
	s := g.split
	return s.j != nil && ix.dims != nil && ix.shape.Equal(s.shape) && ix.dims[s.red] == s.j && ix.dims[s.kept] == s.k
}
