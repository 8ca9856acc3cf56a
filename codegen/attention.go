package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// attnStripFloats is about how many floats of scores a unit of an
// attention kernel holds at once (512 KiB): a strip of rows that stays in
// the L2 cache between the scores' product, the softmax and P·V, tall
// enough that packing K and V once per strip costs little.
const attnStripFloats = 128 << 10

// attention is the plan of a kind=attention fusion (passes' attention
// rule): the scores' dot, the row kernel over its product whose root p
// is P·V's first operand, and P·V with its epilogue.
type attention struct {
	scores, pv *ir.Value
	p          *ir.Value
	rows       *rowPlan
	rowResults []*ir.Value // p, then the callee's other results
	rowBody    []*ir.Value // the callee but the scores' dot and P·V's part
	pvBody     []*ir.Value // P·V and its epilogue
	root       *ir.Value   // the callee's first result
}

// planAttention splits callee c of a kind=attention fusion into its three
// parts.
func planAttention(c *ir.Func) *attention {
	a := &attention{root: c.Results[0]}
	var dots []*ir.Value
	for _, v := range c.Body {
		if v.Op == ir.OpDot {
			dots = append(dots, v)
		}
	}
	if len(dots) != 2 {
		fail("an attention fusion has %d dots, want 2", len(dots))
	}
	a.scores, a.pv = dots[0], dots[1]
	a.p = a.pv.Args[0]
	dep := map[*ir.Value]bool{a.pv: true}
	for _, v := range c.Body {
		for _, x := range v.Args {
			if dep[x] {
				dep[v] = true
			}
		}
		switch {
		case dep[v]:
			a.pvBody = append(a.pvBody, v)
		case v != a.scores:
			a.rowBody = append(a.rowBody, v)
		}
	}
	a.rowResults = append([]*ir.Value{a.p}, c.Results[1:]...)
	a.rows = planRows(&ir.Func{Body: a.rowBody, Results: a.rowResults})
	if a.rows == nil || !a.rows.shape.Equal(a.scores.Type.Shape) || !a.rows.shape.Equal(a.p.Type.Shape) {
		fail("an attention fusion's softmax is not a row kernel over the scores")
	}
	return a
}

// emitAttention lowers a kind=attention fusion with callee c. A unit of
// the range is a strip of query rows of one batch and head: the fast dot
// writes their scores into a buffer of the call's own, the row kernel
// turns them into probabilities in place (or into a second buffer when P·V
// reads them in half), and the fast dot multiplies the strip by V into
// the result; P is never stored. Dropout's draws for the strip go into a
// buffer of their own first. Where the fast dot does not apply (small
// products), a unit is one row, computed elementally.
func (g *kernelBuilder) emitAttention(c *ir.Func) (extent, cost int64) {
	a := planAttention(c)
	if extent, cost, ok := g.emitAttentionStrips(a); ok {
		return extent, cost
	}
	return g.emitAttentionRows(a)
}

// withResults runs emit with g writing results to outs (out the first),
// then restores g's own.
func (g *kernelBuilder) withResults(results []*ir.Value, outs []value.Value, emit func()) {
	r, o, out := g.results, g.outs, g.out
	g.results, g.outs, g.out = results, outs, outs[0]
	emit()
	g.results, g.outs, g.out = r, o, out
}

// shifted returns base moved back by off elements of type t: the pointer
// that a kernel addressing a whole tensor at element off finds base at.
func (g *kernelBuilder) shifted(t types.Type, base, off value.Value) value.Value {
	return g.b.NewGetElementPtr(t, base, g.b.NewSub(i64c(0), off))
}

// emitAttentionStrips is emitAttention's fast-dot lowering, or !ok when
// either product cannot take the fast dot with one strip height.
func (g *kernelBuilder) emitAttentionStrips(a *attention) (extent, cost int64, ok bool) {
	if a.scores.Type.DType != ir.F32 || a.pv.Type.DType != ir.F32 {
		return 0, 0, false
	}
	s1 := g.fastDotOf(a.scores, a.scores, append(slices.Clone(a.rowBody), a.scores))
	if s1 == nil {
		return 0, 0, false
	}
	// P·V's bands come from P's mask: plan it with P as if read from memory.
	g.ptrs[a.p] = g.out
	g.noteFills(a.p)
	defer delete(g.fills, a.p)
	s3 := g.planFastDot(a.pvBody, a.root)
	delete(g.ptrs, a.p)
	if s3 == nil || s3.dot != a.pv || s3.root.Type.DType != ir.F32 {
		return 0, 0, false
	}
	// The scores' band: only what the row kernel's results need.
	s1.spec.BandA, s1.spec.BandB, s1.spec.BandC = DotBand{}, DotBand{}, DotBand{}
	dotBands(&s1.spec, a.scores, g.fills, append(slices.Clone(a.rowBody), a.scores), a.rowResults)
	m, n := s1.spec.M, s1.spec.N
	mr1, mr3 := s1.spec.plan().MR, s3.spec.plan().MR
	l := mr1 * mr3 / gcd(mr1, mr3)
	rb := max(l, (attnStripFloats/max(n, 1))/l*l)
	rb = min(rb, (m+l-1)/l*l)
	s1.spec.Blocking, s3.spec.Blocking = &DotBlocking{RB: rb}, &DotBlocking{RB: rb}
	if s1.spec.plan().RB != rb || s3.spec.plan().RB != rb || s1.spec.Batch != s3.spec.Batch || s3.spec.M != m || s3.spec.K != n {
		return 0, 0, false
	}
	// A strip of scores (f32), of P when P·V reads it in half, and of each
	// of dropout's draws.
	pd := a.p.Type.DType
	strip := int64(rb) * int64(n)
	bytes := strip * 4
	if pd != ir.F32 {
		bytes += strip * int64(pd.Size())
	}
	draws := drawsIn(a.rowBody)
	at, bytes := drawBytes(draws, bytes, strip)
	raw := g.heap(i64c(bytes), 64)
	f32p := types.NewPointer(types.Float)
	sc := g.b.NewBitCast(raw, f32p)
	pbuf := value.Value(sc)
	if pd != ir.F32 {
		pt := storageType(pd)
		pbuf = g.b.NewBitCast(g.b.NewGetElementPtr(types.Float, sc, i64c(strip)), types.NewPointer(pt))
	}
	dbuf := g.drawBuffers(draws, raw, at, strip)
	band, sq := a.drawBand(draws)
	lo, hi := g.lo, g.hi
	g.forLoop("attn", lo, hi, func(u value.Value) {
		// Unit u: rows [R(u), R(u+1)) of all batches' rows.
		row := func(u value.Value) value.Value { return g.unitRow(u, m, rb) }
		r0 := row(u)
		off := g.b.NewMul(r0, i64c(int64(n)))
		scores := g.shifted(types.Float, sc, off)
		probs := scores
		if pd != ir.F32 {
			probs = g.shifted(storageType(pd), pbuf, off)
		}
		g.lo, g.hi = u, g.b.NewAdd(u, i64c(1))
		g.withResults([]*ir.Value{a.scores}, []value.Value{scores}, func() { g.emitFastDotRows(s1, nil, 0) })
		g.ptrs[a.scores] = scores
		g.lo, g.hi = r0, row(g.b.NewAdd(u, i64c(1)))
		g.drawRows(draws, dbuf, g.lo, g.hi, int64(n), sq, band)
		g.withResults(a.rowResults, append([]value.Value{probs}, g.outs[1:]...), func() {
			g.emitRows(a.rows, a.p, len(a.rowBody))
		})
		delete(g.ptrs, a.scores)
		g.forget(nil, draws)
		g.ptrs[a.p] = probs
		g.lo, g.hi = u, g.b.NewAdd(u, i64c(1))
		g.withResults([]*ir.Value{a.root}, g.outs[:1], func() { g.emitFastDotRows(s3, nil, 0) })
		delete(g.ptrs, a.p)
	})
	g.lo, g.hi = lo, hi
	g.mod.t.lower().release(g.b, g.mod.declare, raw)
	k1, k3 := int64(s1.spec.K), int64(s3.spec.N)
	cost = 2*int64(rb)*int64(n)*(k1+k3) + int64(rb)*int64(n)*int64(1+len(a.rowBody))
	return s1.spec.Extent(), cost, true
}

// emitAttentionRows is emitAttention's elemental lowering: a unit is one
// row of scores, its probabilities kept in a buffer of one row.
func (g *kernelBuilder) emitAttentionRows(a *attention) (extent, cost int64) {
	n := int64(a.p.Type.Shape[a.p.Type.Rank()-1])
	pd := a.p.Type.DType
	draws := drawsIn(a.rowBody)
	at, bytes := drawBytes(draws, max(n, 1)*int64(pd.Size()), max(n, 1))
	raw := g.heap(i64c(bytes), 64)
	buf := g.b.NewBitCast(raw, types.NewPointer(storageType(pd)))
	dbuf := g.drawBuffers(draws, raw, at, n)
	band, sq := a.drawBand(draws)
	pv := a.pv.Type.Shape
	dh := int64(pv[len(pv)-1])
	lo, hi := g.lo, g.hi
	g.forLoop("attn", lo, hi, func(r value.Value) {
		probs := g.shifted(storageType(pd), buf, g.b.NewMul(r, i64c(n)))
		g.lo, g.hi = r, g.b.NewAdd(r, i64c(1))
		g.drawRows(draws, dbuf, g.lo, g.hi, n, sq, band)
		g.withResults(a.rowResults, append([]value.Value{probs}, g.outs[1:]...), func() {
			g.emitRows(a.rows, a.p, len(a.rowBody))
		})
		g.forget(nil, draws)
		g.ptrs[a.p] = probs
		g.forLoop("pv", i64c(0), i64c(dh), func(j value.Value) {
			ix := atLinear(pv, g.b.NewAdd(g.b.NewMul(r, i64c(dh)), j))
			g.storeAt(a.root.Type.DType, g.elem(productRoot(a.root, a.pv), ix), g.outs[0], g.rootAt(a.root, a.pv, ix))
		})
		delete(g.ptrs, a.p)
	})
	g.lo, g.hi = lo, hi
	g.mod.t.lower().release(g.b, g.mod.declare, raw)
	k := int64(a.scores.Args[0].Type.Shape[a.scores.Args[0].Type.Rank()-1])
	return int64(a.rows.rows.NumElements()), n*(2*k+int64(len(a.rowBody))) + 2*n*dh
}

// productRoot is the value whose element at the product's index ix
// (a product's shape) is root's: the product itself when root transposes
// it, else root, an elementwise epilogue of it.
func productRoot(root, dot *ir.Value) *ir.Value {
	if root.Op == ir.OpTranspose && root.Args[0] == dot {
		return dot
	}
	return root
}

// rootAt is the linear index in root's buffer of the element at the
// product's index ix: permuted when root transposes the product.
func (g *kernelBuilder) rootAt(root, dot *ir.Value, ix *index) value.Value {
	if root.Op != ir.OpTranspose || root.Args[0] != dot {
		return g.linear(ix)
	}
	perm := root.Attrs.Ints("perm")
	d := g.dims(ix)
	od := make([]value.Value, len(perm))
	for i, p := range perm {
		od[i] = d[p]
	}
	return g.linear(atDims(root.Type.Shape, od))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
