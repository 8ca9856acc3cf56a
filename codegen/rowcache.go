package codegen

import (
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Row caches. In a row kernel a costly value of the rows' shape is often
// needed twice per element: inside a reduction (softmax's exp(x − max),
// summed) and again by the loop that writes the row (divided by the sum).
// Recomputing it doubles the transcendentals. Instead, the reduction's loop
// stores each element it computes into a stack array the size of one row,
// and the writing loop loads it back: the same float operations, once.

// maxCachedRow is the most elements of a row a cache holds (16 KiB of
// floats per cached value).
const maxCachedRow = 4096

// maxRowCaches bounds the cached values per kernel.
const maxRowCaches = 4

// rowCache is the cache of one value: its row array and whether a
// reduction's loop fills it.
type rowCache struct {
	typ    types.Type  // [row length x float]
	arr    value.Value // its stack slot
	filled bool
}

// at addresses element i of the cache.
func (g *kernelBuilder) cacheAt(c *rowCache, i value.Value) value.Value {
	return g.b.NewGetElementPtr(c.typ, c.arr, i64c(0), i)
}

// planRowCaches picks the values of kernel g's row plan p worth caching: f32
// values of the rows' shape, computed with a transcendental, that both a
// reduction's operand and a result written per element are computed from.
func (g *kernelBuilder) planRowCaches(p *rowPlan, perElem []int, rowLen int64) {
	g.rowCaches, g.rowCacheOrder = nil, nil
	if rowLen > maxCachedRow || len(perElem) == 0 {
		return
	}
	row := map[*ir.Value]bool{}
	for _, w := range p.row {
		row[w] = true
	}
	// reach marks the full-shape values an expression is computed from
	// elementwise (at its own index), stopping at row values and buffers.
	reach := func(roots []*ir.Value) (map[*ir.Value]bool, []*ir.Value) {
		in := map[*ir.Value]bool{}
		var order []*ir.Value
		visitValues(roots, func(v *ir.Value) bool {
			if _, ok := g.ptrs[v]; ok || row[v] || !v.Type.Shape.Equal(p.shape) {
				return false
			}
			in[v] = true
			order = append(order, v)
			return elementwise(v)
		})
		return in, order
	}
	var ops, outs []*ir.Value
	for _, w := range p.row {
		if w.Op == ir.OpReduceSum {
			ops = append(ops, w.Args[0])
		}
	}
	for _, k := range perElem {
		outs = append(outs, g.results[k])
	}
	_, inRed := reach(ops) // in a deterministic order: the module's text is its cache key
	inOut, _ := reach(outs)
	for _, v := range inRed {
		if inOut[v] && v.Type.DType == ir.F32 && costly(v, row) && len(g.rowCacheOrder) < maxRowCaches {
			if g.rowCaches == nil {
				g.rowCaches = map[*ir.Value]*rowCache{}
			}
			t := types.NewArray(uint64(rowLen), types.Float)
			g.rowCaches[v] = &rowCache{typ: t, arr: g.alloca(t)}
			g.rowCacheOrder = append(g.rowCacheOrder, v)
		}
	}
}

// costly reports whether v is computed (elementwise, up to row values)
// with an exp, log, tanh or erf.
func costly(v *ir.Value, row map[*ir.Value]bool) bool {
	switch v.Op {
	case ir.OpExp, ir.OpLog, ir.OpTanh, ir.OpErf:
		return true
	}
	if row[v] || !elementwise(v) {
		return false
	}
	for _, a := range v.Args {
		if costly(a, row) {
			return true
		}
	}
	return false
}

// rowLocal is the index within one row of the reduced-axes indices ri
// (sizes, the reduced axes' sizes, in order).
func (g *kernelBuilder) rowLocal(sizes []int, ri []value.Value) value.Value {
	var lin value.Value = i64c(0)
	for k, r := range ri {
		if k == 0 {
			lin = r
			continue
		}
		lin = g.b.NewAdd(g.b.NewMul(lin, i64c(int64(sizes[k]))), r)
	}
	return lin
}

// fillRowCaches stores, inside a reduction's loop at the row position
// local, the cached values that the loop computed at the index ix (every
// reduction of the row runs before the writing loop, so a cache one of them
// fills is full there; a second one storing the same values is harmless).
func (g *kernelBuilder) fillRowCaches(ix *index, local value.Value) {
	for _, v := range g.rowCacheOrder {
		c := g.rowCaches[v]
		x, ok := g.cache[elemKey{v, ix}]
		if !ok {
			continue
		}
		c.filled = true
		g.b.NewStore(x, g.cacheAt(c, local))
	}
}

// cachedAt loads v's cached element when the writing loop asks for it at
// its own index.
func (g *kernelBuilder) cachedAt(v *ir.Value, ix *index) (value.Value, bool) {
	c, ok := g.rowCaches[v]
	if !ok || !c.filled || ix != g.rowIx {
		return nil, false
	}
	return g.b.NewLoad(types.Float, g.cacheAt(c, g.rowPos)), true
}
