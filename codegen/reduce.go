package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// accType is the type sums of dtype d accumulate in: double for floats (as
// the interpreter), the integer type itself otherwise (sums wrap).
func accType(d ir.DType) types.Type {
	if d.IsFloat() {
		return types.Double
	}
	return computeType(d)
}

// accumulate adds the compute value x of dtype d into the accumulator value
// acc (of accType(d)). Float sums may be reassociated (reassoc), so that
// opt vectorizes a loop of them into partial sums: the result differs from
// the interpreter's left-to-right sum by double rounding errors only (below
// an f32 result's rounding; for f64 sums, within the tests' tolerance).
func (g *kernelBuilder) accumulate(d ir.DType, acc, x value.Value) value.Value {
	if d.IsFloat() {
		add := g.b.NewFAdd(acc, g.toDouble(x))
		add.FastMathFlags = []enum.FastMathFlag{enum.FastMathFlagReassoc}
		return add
	}
	return g.b.NewAdd(acc, x)
}

// finishSum rounds an accumulated sum to d's compute value.
func (g *kernelBuilder) finishSum(d ir.DType, acc value.Value) value.Value {
	if d.IsFloat() {
		return g.roundDouble(d, acc)
	}
	return acc
}

// nestedLoops runs body over every combination of loop indices for the
// given sizes, the last innermost.
func (g *kernelBuilder) nestedLoops(name string, sizes []int, body func(ix []value.Value)) {
	g.nestedLoopsHinted(name, sizes, nil, body)
}

// nestedLoopsHinted is nestedLoops with hints on the innermost loop.
func (g *kernelBuilder) nestedLoopsHinted(name string, sizes []int, hints []metadata.Field, body func(ix []value.Value)) {
	var rec func(k int, ix []value.Value)
	rec = func(k int, ix []value.Value) {
		if k == len(sizes) {
			body(ix)
			return
		}
		var h []metadata.Field
		if k == len(sizes)-1 {
			h = hints
		}
		g.hintedLoop(name, i64c(0), i64c(int64(sizes[k])), i64c(1), h, func(i value.Value) {
			rec(k+1, append(ix, i))
		})
	}
	rec(0, nil)
}

// emitFlat emits a kernel whose parallel range is the flattened result,
// each call computing its elements one by one (reduce and dot roots, which
// loop inside every element).
func (g *kernelBuilder) emitFlat(v *ir.Value) (extent, cost int64) {
	n := int64(v.Type.Shape.NumElements())
	if n == 0 {
		return 0, 1
	}
	g.forLoop("out", g.lo, g.hi, func(o value.Value) {
		g.storeAt(g.res.Type.DType, g.elem(v, atLinear(v.Type.Shape, o)), g.out, o)
	})
	red := int64(v.Args[0].Type.Shape.NumElements()) / n
	return n, 1 + red
}

// elemReduce computes one element of a reduce: a loop over the reduced axes
// in order (the last innermost), as the interpreter sums them, though opt
// may reassociate the float sums (see accumulate). Sums accumulate in
// double for floats; max starts from -inf (the integer minimum) and
// propagates NaN as Go's math.Max.
func (g *kernelBuilder) elemReduce(v *ir.Value, ix *index) value.Value {
	x := v.Args[0]
	d := v.Type.DType
	reduced := make([]bool, x.Type.Rank())
	var sizes []int
	for _, a := range v.Attrs.Ints("axes") {
		reduced[a] = true
		sizes = append(sizes, x.Type.Shape[a])
	}
	isMax := v.Op == ir.OpReduceMax
	at := accType(d)
	if isMax {
		at = computeType(d)
	}
	acc := g.alloca(at)
	kept := g.dims(ix)
	if isMax {
		g.b.NewStore(minValue(d), acc)
	} else {
		g.b.NewStore(zeroAcc(d), acc)
	}
	g.rowLoop("red", sizes, kept, reduced[len(reduced)-1], func(ri []value.Value) {
		xi := atDims(x.Type.Shape, interleave(reduced, kept, ri))
		e := g.elem(x, xi)
		if g.rowCaches != nil {
			g.fillRowCaches(xi, g.rowLocal(sizes, ri))
		}
		a := g.b.NewLoad(at, acc)
		var s value.Value
		switch {
		case isMax && d.IsFloat():
			s = g.maxMin(true, a, e)
		case isMax:
			s = g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, e, a), e, a)
		default:
			s = g.accumulate(d, a, e)
		}
		g.b.NewStore(s, acc)
	})
	res := value.Value(g.b.NewLoad(at, acc))
	if !isMax {
		res = g.finishSum(d, res)
	}
	return res
}

// zeroAcc is 0 of accType(d).
func zeroAcc(d ir.DType) value.Value {
	if d.IsFloat() {
		return fconst(types.Double, 0)
	}
	return zeroValue(d)
}

// emitScatterAdd: with the table (result) of shape pre ++ [n] ++ post, the
// range is the outer·n table rows, each owned by one call (no races). A call
// reads the updates in order of j, adds update row (o, j) into row (o,
// clamp(idx[j])) when that row is its own, in an accumulator (double for
// floats, else the integer type), and rounds once, as the interpreter. With
// fewer updates than table rows, there is one accumulator per update row
// hitting the call's rows, found through a mark in the hit row's first
// element; otherwise (or for 1- and 2-byte elements) one per row it owns.
// When they cannot be allocated the kernel stops with "xlc: out of memory in
// <kernel>".
func (g *kernelBuilder) emitScatterAdd(v *ir.Value) (extent, cost int64) {
	upd, idx := v.Args[0], v.Args[1]
	d := v.Type.DType
	axis := v.Attrs.Int("axis")
	s := v.Type.Shape
	n := s[axis]
	outer := int64(s[:axis].NumElements())
	inner := int64(s[axis+1:].NumElements())
	m := int64(idx.Type.Shape.NumElements())
	if n == 0 || outer == 0 || inner == 0 {
		return 0, 1
	}
	extent, cost = outer*int64(n), 2+2*inner+m*outer*inner/(outer*int64(n))
	at := accType(d)
	lower := g.mod.t.lower()
	// each runs body(row, src) for update row (o, j) → result row (o,
	// clamp(idx[j])) when it is one of the call's, src its first element.
	each := func(body func(row, src value.Value)) {
		g.forLoop("upd", i64c(0), i64c(m), func(j value.Value) {
			c := g.clampIndex(g.elem(idx, atLinear(idx.Type.Shape, j)), n)
			g.forLoop("outer", i64c(0), i64c(outer), func(o value.Value) {
				row := g.b.NewAdd(g.b.NewMul(o, i64c(int64(n))), c)
				mine := g.b.NewAnd(g.b.NewICmp(enum.IPredSGE, row, g.lo), g.b.NewICmp(enum.IPredSLT, row, g.hi))
				g.ifThen("hit", mine, func() {
					body(row, g.b.NewMul(g.b.NewAdd(g.b.NewMul(o, i64c(m)), j), i64c(inner)))
				})
			})
		})
	}
	// add accumulates update row src into the accumulator row at dst.
	add := func(accp, src, dst value.Value) {
		g.forLoop("add", i64c(0), i64c(inner), func(i value.Value) {
			e := g.elem(upd, atLinear(upd.Type.Shape, g.b.NewAdd(src, i)))
			p := g.b.NewGetElementPtr(at, accp, g.b.NewAdd(dst, i))
			g.b.NewStore(g.accumulate(d, g.b.NewLoad(at, p), e), p)
		})
	}
	alloc := func(count value.Value, t types.Type) (raw, p value.Value) {
		raw = g.heap(g.b.NewMul(count, i64c(8)), 8)
		return raw, g.b.NewBitCast(raw, types.NewPointer(t))
	}
	size := d.Size()
	if size < 4 || m == 0 || m >= int64(n) || outer*m >= 1<<31 {
		g.ifThen("work", g.b.NewICmp(enum.IPredSLT, g.lo, g.hi), func() {
			count := g.b.NewMul(g.b.NewSub(g.hi, g.lo), i64c(inner))
			raw, accp := alloc(count, at)
			g.forLoop("zero", i64c(0), count, func(i value.Value) {
				g.b.NewStore(zeroAcc(d), g.b.NewGetElementPtr(at, accp, i))
			})
			each(func(row, src value.Value) {
				add(accp, src, g.b.NewMul(g.b.NewSub(row, g.lo), i64c(inner)))
			})
			base := g.b.NewMul(g.lo, i64c(inner))
			g.forLoop("store", i64c(0), count, func(i value.Value) {
				a := g.b.NewLoad(at, g.b.NewGetElementPtr(at, accp, i))
				g.storeAt(d, g.finishSum(d, a), g.out, g.b.NewAdd(base, i))
			})
			lower.release(g.b, g.mod.declare, raw)
		})
		return extent, cost
	}
	mt := types.NewInt(uint64(8 * size))
	marks := g.b.NewBitCast(g.out, types.NewPointer(mt))
	g.ifThen("work", g.b.NewICmp(enum.IPredSLT, g.lo, g.hi), func() {
		base, end := g.b.NewMul(g.lo, i64c(inner)), g.b.NewMul(g.hi, i64c(inner))
		g.forLoop("zero", base, end, func(i value.Value) {
			g.b.NewStore(constant.NewInt(mt, 0), g.b.NewGetElementPtr(mt, marks, i))
		})
		slots := i64c(outer * m)
		raw, accp := alloc(g.b.NewMul(slots, i64c(inner)), at)
		rawRows, rows := alloc(slots, types.I64)
		used := g.alloca(types.I64)
		g.b.NewStore(i64c(0), used)
		each(func(row, src value.Value) {
			mp := g.b.NewGetElementPtr(mt, marks, g.b.NewMul(row, i64c(inner)))
			g.ifThen("new", g.b.NewICmp(enum.IPredEQ, g.b.NewLoad(mt, mp), constant.NewInt(mt, 0)), func() {
				k := g.b.NewLoad(types.I64, used)
				next := g.b.NewAdd(k, i64c(1))
				g.b.NewStore(next, used)
				mark := value.Value(next)
				if size < 8 {
					mark = g.b.NewTrunc(mark, mt)
				}
				g.b.NewStore(mark, mp)
				g.b.NewStore(row, g.b.NewGetElementPtr(types.I64, rows, k))
				g.forLoop("zero", i64c(0), i64c(inner), func(i value.Value) {
					g.b.NewStore(zeroAcc(d), g.b.NewGetElementPtr(at, accp, g.b.NewAdd(g.b.NewMul(k, i64c(inner)), i)))
				})
			})
			cur := value.Value(g.b.NewLoad(mt, mp))
			if size < 8 {
				cur = g.b.NewZExt(cur, types.I64)
			}
			k := g.b.NewSub(cur, i64c(1))
			add(accp, src, g.b.NewMul(k, i64c(inner)))
		})
		g.forLoop("rows", i64c(0), g.b.NewLoad(types.I64, used), func(k value.Value) {
			dst := g.b.NewMul(g.b.NewLoad(types.I64, g.b.NewGetElementPtr(types.I64, rows, k)), i64c(inner))
			g.forLoop("store", i64c(0), i64c(inner), func(i value.Value) {
				a := g.b.NewLoad(at, g.b.NewGetElementPtr(at, accp, g.b.NewAdd(g.b.NewMul(k, i64c(inner)), i)))
				g.storeAt(d, g.finishSum(d, a), g.out, g.b.NewAdd(dst, i))
			})
		})
		lower.release(g.b, g.mod.declare, raw)
		lower.release(g.b, g.mod.declare, rawRows)
	})
	return extent, cost
}

// columnTile is the number of result elements a column sum accumulates at
// once (in a stack array of doubles).
const columnTile = 256

// emitColumnSum emits a float reduce_sum over leading axes (axes
// [0, 1, ..., r-1], a bias or layer-norm gradient) with the reduced index
// outside and the result index inside, so that the inner loop reads x
// contiguously and vectorizes (emitColumnSums). It reports false, emitting
// nothing, for other reductions.
func (g *kernelBuilder) emitColumnSum(v *ir.Value) (extent, cost int64, ok bool) {
	if !leadingAxes(v) {
		return 0, 0, false
	}
	extent, cost = g.emitColumnSums([]*ir.Value{v})
	return extent, cost, true
}

// emitColumnSums emits the float reduce_sums vs over the same leading axes
// of operands of one shape (leadingAxes; a multi-output fusion's layer-norm
// gain and bias gradients), writing each to the kernel's result of the same
// index. On a CPU with a scratch buffer (columnChunks) the units are chunks
// of rows (emitColumnSumsByRows); otherwise they are result elements, each
// summed over every reduced index in order.
func (g *kernelBuilder) emitColumnSums(vs []*ir.Value) (extent, cost int64) {
	v := vs[0]
	axes := v.Attrs.Ints("axes")
	for _, w := range vs {
		if !leadingAxes(w) || !slices.Equal(w.Attrs.Ints("axes"), axes) || !w.Args[0].Type.Shape.Equal(v.Args[0].Type.Shape) {
			fail("column sums over different axes or shapes")
		}
	}
	if g.chunks > 0 {
		return g.emitColumnSumsByRows(vs)
	}
	n := int64(v.Type.Shape.NumElements())
	red := int64(v.Args[0].Type.Shape.NumElements()) / n
	g.columnTiles(vs, i64c(0), i64c(red), g.lo, g.hi, func(k int, acc, jlo, j value.Value) {
		d := vs[k].Type.DType
		g.storeAt(d, g.finishSum(d, acc), g.outs[k], g.b.NewAdd(jlo, j))
	})
	return n, 1 + red*int64(len(vs))
}

// columnTiles sums vs's operands over the reduced rows [r0, r1) for the
// result elements [lo, hi): per tile of up to columnTile elements, for
// each row in order, each element's double accumulators add their
// operands' values, computed once for all sums (the loop vectorizes across
// elements, not within one sum); then put(k, acc, jlo, j) takes sum k's
// accumulator of element jlo+j.
func (g *kernelBuilder) columnTiles(vs []*ir.Value, r0, r1, lo, hi value.Value, put func(k int, acc, jlo, j value.Value)) {
	v := vs[0]
	shape := v.Args[0].Type.Shape
	n := int64(v.Type.Shape.NumElements())
	arr := types.NewArray(columnTile, types.Double)
	accs := make([]value.Value, len(vs))
	for k := range vs {
		accs[k] = g.alloca(arr)
	}
	first := g.b.NewUDiv(lo, i64c(columnTile))
	last := g.b.NewUDiv(g.b.NewAdd(hi, i64c(columnTile-1)), i64c(columnTile))
	g.forLoop("ctile", first, last, func(t value.Value) {
		start := g.b.NewMul(t, i64c(columnTile))
		jlo := g.b.NewSelect(g.b.NewICmp(enum.IPredSGT, lo, start), lo, start)
		jhi := g.min64(hi, g.b.NewAdd(start, i64c(columnTile)))
		cnt := g.b.NewSub(jhi, jlo)
		slot := func(k int, j value.Value) value.Value {
			return g.b.NewGetElementPtr(arr, accs[k], i64c(0), j)
		}
		g.forLoop("czero", i64c(0), cnt, func(j value.Value) {
			for k, w := range vs {
				g.b.NewStore(zeroAcc(w.Type.DType), slot(k, j))
			}
		})
		nred := len(v.Attrs.Ints("axes"))
		lead, trail := shape[:nred], shape[nred:]
		g.forLoop("crow", r0, r1, func(r value.Value) {
			base := g.b.NewAdd(g.b.NewMul(r, i64c(n)), jlo)
			g.prefetchRow(vs, g.b.NewAdd(r, i64c(columnPrefetchRows)), jlo, n)
			// The reduced axes' indices come from r, outside the column
			// loop, so that operands broadcast along the kept axes (a
			// layer norm's per-row statistics) are loaded once per row.
			rdims := g.dims(atLinear(lead, r))
			g.forLoop("ccol", i64c(0), cnt, func(j value.Value) {
				col := g.b.NewAdd(jlo, j)
				full := append(slices.Clone(rdims), g.dims(atLinear(trail, col))...)
				ix := &index{shape: shape, dims: full, lin: g.b.NewAdd(base, j)}
				for k, w := range vs {
					e := g.elem(w.Args[0], ix)
					p := slot(k, j)
					g.b.NewStore(g.accumulate(w.Type.DType, g.b.NewLoad(types.Double, p), e), p)
				}
			})
		})
		g.forLoop("cout", i64c(0), cnt, func(j value.Value) {
			for k := range vs {
				put(k, g.b.NewLoad(types.Double, slot(k, j)), jlo, j)
			}
		})
	})
}

// interleave builds a full index from the kept indices and the reduced
// ones: axis i takes the next reduced index where reduced[i], else the next
// kept one.
func interleave(reduced []bool, kept, red []value.Value) []value.Value {
	full := make([]value.Value, len(reduced))
	k, r := 0, 0
	for i := range full {
		if reduced[i] {
			full[i] = red[r]
			r++
		} else {
			full[i] = kept[k]
			k++
		}
	}
	return full
}
