package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// attentionGrad is the plan of a kind=attention_grad fusion (passes'
// attentionGrad rule): P recomputed by the scores' dot and its elementwise
// epilogue, dS by dO·Vᵀ and a row kernel reading P, and the gradient
// products dV = Pᵀ·dO, dK = dSᵀ·Q, dQ = dS·K, each stored as the dot's
// result or its transpose.
type attentionGrad struct {
	scores, dp *ir.Value // the dots of S = Q·Kᵀ and dP = dO·Vᵀ
	p, ds      *ir.Value
	// pHalf is P converted to the half type dV's product reads (precision
	// bf16 or f16), or nil; dS is then the half type itself.
	pHalf  *ir.Value
	pBody  []*ir.Value // the scores' dot and the values computed from it alone
	dsBody []*ir.Value // dP's dot and the row kernel up to dS
	rows   *rowPlan    // dS's row kernel, reading P and dP
	grads  []gradDot   // in the order of the callee's results
}

// gradDot is one of attention's gradient products.
type gradDot struct {
	dot, root *ir.Value
}

// planAttentionGrad splits callee c of a kind=attention_grad fusion into
// its parts.
func planAttentionGrad(c *ir.Func) *attentionGrad {
	a := &attentionGrad{grads: make([]gradDot, len(c.Results))}
	roots := map[*ir.Value]int{}
	for i, r := range c.Results {
		roots[r] = i
	}
	var dots []*ir.Value
	isGrad := map[*ir.Value]bool{}
	for _, v := range c.Body {
		if v.Op != ir.OpDot {
			continue
		}
		dots = append(dots, v)
		for _, r := range c.Results {
			if i := roots[r]; r == v || r.Op == ir.OpTranspose && r.Args[0] == v {
				a.grads[i] = gradDot{v, r}
				isGrad[v], isGrad[r] = true, true
			}
		}
	}
	if len(dots) != 5 || len(c.Results) != 3 || slices.ContainsFunc(a.grads, func(g gradDot) bool { return g.dot == nil }) {
		fail("an attention_grad fusion needs five dots, three of them its results")
	}
	// dS is the first operand of two gradients (dK, dQ); dV's reads P or
	// an elementwise function of it (a conversion, a mask).
	reads := map[*ir.Value]int{}
	for _, g := range a.grads {
		reads[g.dot.Args[0]]++
	}
	var dvA *ir.Value
	for v, n := range reads {
		switch n {
		case 1:
			dvA = v
		case 2:
			a.ds = v
		}
	}
	if dvA == nil || a.ds == nil {
		fail("an attention_grad fusion's gradients do not read P and dS")
	}
	// Which of the two other dots each value depends on: P depends on the
	// scores' alone, dS on dP's (and on P).
	dep := map[*ir.Value]map[*ir.Value]bool{}
	for _, v := range c.Body {
		d := map[*ir.Value]bool{}
		for _, x := range v.Args {
			for k := range dep[x] {
				d[k] = true
			}
		}
		if v.Op == ir.OpDot && !isGrad[v] {
			d[v] = true
		}
		dep[v] = d
	}
	for k := range dep[dvA] {
		a.scores = k
	}
	for _, d := range dots {
		if !isGrad[d] && d != a.scores {
			a.dp = d
		}
	}
	if len(dep[dvA]) != 1 || a.dp == nil || !dep[a.ds][a.dp] {
		fail("an attention_grad fusion's P and dS are not computed as attention's backward computes them")
	}
	// P, the value kept in a buffer, is the last value computed from the
	// scores alone from which everything else that reads such values
	// (dS's row kernel, dV's operand) can compute them without the scores;
	// dV's operand, when it is not P, gets a buffer of its own (pHalf).
	onlyScores := func(v *ir.Value) bool { return dep[v][a.scores] && !dep[v][a.dp] && !isGrad[v] }
	read := []*ir.Value{dvA}
	var cands []*ir.Value
	for _, v := range c.Body {
		if onlyScores(v) && v != a.scores {
			cands = append(cands, v)
		}
		if onlyScores(v) || isGrad[v] {
			continue
		}
		for _, x := range v.Args {
			if onlyScores(x) && !slices.Contains(read, x) {
				read = append(read, x)
			}
		}
	}
	for i := len(cands) - 1; i >= 0 && a.p == nil; i-- {
		if !slices.ContainsFunc(read, func(w *ir.Value) bool { return !derivable(w, cands[i], onlyScores) }) {
			a.p = cands[i]
		}
	}
	if a.p == nil {
		fail("an attention_grad fusion's readers of P need the scores")
	}
	if dvA != a.p {
		a.pHalf = dvA
	}
	for _, v := range c.Body {
		switch d := dep[v]; {
		case isGrad[v] || v == a.pHalf:
		case d[a.dp]:
			a.dsBody = append(a.dsBody, v)
		case d[a.scores] && v.ID <= a.p.ID:
			a.pBody = append(a.pBody, v)
		}
	}
	body := slices.DeleteFunc(slices.Clone(a.dsBody), func(v *ir.Value) bool { return v == a.dp })
	a.rows = planRows(&ir.Func{Body: body, Results: []*ir.Value{a.ds}})
	if a.rows == nil && !slices.ContainsFunc(body, func(v *ir.Value) bool { return v.Op == ir.OpReduceSum || v.Op == ir.OpReduceMax }) {
		a.rows = elementRows(a.dp.Type.Shape)
	}
	if a.rows == nil || !a.rows.shape.Equal(a.dp.Type.Shape) {
		fail("an attention_grad fusion's dS is not a row kernel over dO·Vᵀ")
	}
	return a
}

// elementRows is the row plan, over the last axis of shape, of an
// elementwise dS: no reduction and no row value, each row's D read as an
// operand (passes' attentionD).
func elementRows(shape ir.Shape) *rowPlan {
	r := len(shape)
	return &rowPlan{shape: shape, axes: []int{r - 1}, kept: gemmIota(r - 1), rows: shape[:r-1]}
}

// derivable reports whether w can be computed from p without the values
// onScores says depend on the scores' product (other than through p).
func derivable(w, p *ir.Value, onScores func(*ir.Value) bool) bool {
	switch {
	case w == p || !onScores(w):
		return true
	case !elementwise(w):
		return false
	}
	for _, a := range w.Args {
		if !derivable(a, p, onScores) {
			return false
		}
	}
	return true
}

// emitAttentionGrad lowers a kind=attention_grad fusion with callee c. A
// unit of the range is one head: P and dS of the head go into two
// buffers of the call's own (S² floats each) instead of the arena, as do
// dropout's draws, and the three gradient products read them from there.
// The products are the fast dot's where it applies, else elemental.
func (g *kernelBuilder) emitAttentionGrad(c *ir.Func) (extent, cost int64) {
	a := planAttentionGrad(c)
	sh := a.p.Type.Shape
	r := len(sh)
	heads := int64(sh[:r-2].NumElements())
	sq, sk := int64(sh[r-2]), int64(sh[r-1])
	head := sq * sk
	// Buffers: P and dP (f32), then, when they are half, dS and P's
	// conversion; an f32 dS is written over dP.
	bytes := 2 * head * 4
	halfDS := a.ds.Type.DType != ir.F32
	if halfDS {
		bytes += head * int64(a.ds.Type.DType.Size())
	}
	if a.pHalf != nil {
		bytes += head * int64(a.pHalf.Type.DType.Size())
	}
	draws := drawsIn(c.Body) // dropout's, drawn a head at a time
	at, bytes := drawBytes(draws, bytes, head)
	raw := g.heap(i64c(bytes), 64)
	dbuf := g.drawBuffers(draws, raw, at, head)
	// Outside the band where P through dropout is zero whatever the
	// draws, dS does not depend on them either: its row sums there add
	// dP's masked values times P's zeros, and it is masked itself.
	var band *triangle
	if a.pHalf != nil {
		band = drawBand(a.pHalf)
	}
	f32p := types.NewPointer(types.Float)
	p0 := g.b.NewBitCast(raw, f32p)
	dp0 := g.b.NewGetElementPtr(types.Float, p0, i64c(head))
	next := value.Value(g.b.NewGetElementPtr(types.Float, p0, i64c(2*head)))
	ds0 := value.Value(dp0)
	if halfDS {
		t := storageType(a.ds.Type.DType)
		ds0 = g.b.NewBitCast(next, types.NewPointer(t))
		next = g.b.NewGetElementPtr(t, ds0, i64c(head))
	}
	var ph0 value.Value
	if a.pHalf != nil {
		ph0 = g.b.NewBitCast(next, types.NewPointer(storageType(a.pHalf.Type.DType)))
	}
	g.noteFills(a.p, a.ds, a.pHalf)
	fast := g.planGradDots(a)
	lo, hi := g.lo, g.hi
	g.forLoop("head", lo, hi, func(h value.Value) {
		off := g.b.NewMul(h, i64c(head))
		if len(draws) > 0 {
			g.drawRows(draws, dbuf, g.b.NewMul(h, i64c(sq)), g.b.NewMul(g.b.NewAdd(h, i64c(1)), i64c(sq)), sk, sq, band)
		}
		pp, dpp := g.shifted(types.Float, p0, off), g.shifted(types.Float, dp0, off)
		dsp := g.shifted(storageType(a.ds.Type.DType), ds0, off)
		// convert writes the head's half copy of P for dV's product.
		convert := func() {
			if a.pHalf == nil {
				return
			}
			php := g.shifted(storageType(a.pHalf.Type.DType), ph0, off)
			g.lo, g.hi = g.b.NewMul(h, i64c(head)), g.b.NewMul(g.b.NewAdd(h, i64c(1)), i64c(head))
			g.withResults([]*ir.Value{a.pHalf}, []value.Value{php}, func() { g.emitElemental(a.pHalf) })
			g.ptrs[a.pHalf] = php
		}
		rows := func(per int64) (value.Value, value.Value) { // the head's rows
			return g.b.NewMul(h, i64c(per)), g.b.NewMul(g.b.NewAdd(h, i64c(1)), i64c(per))
		}
		if fast != nil {
			units := func(fd *fastDot) (value.Value, value.Value) {
				return rows(int64((fd.spec.M + fd.spec.plan().RB - 1) / fd.spec.plan().RB))
			}
			g.lo, g.hi = units(fast[0])
			g.withResults([]*ir.Value{a.p}, []value.Value{pp}, func() { g.emitFastDotRows(fast[0], nil, 0) })
			g.ptrs[a.p] = pp
			g.lo, g.hi = units(fast[1])
			g.withResults([]*ir.Value{a.ds}, []value.Value{dsp}, func() { g.emitFastDotRowsVia(fast[1], a.rows, len(a.dsBody), dpp) })
			g.ptrs[a.ds] = dsp
			convert()
			for i, gd := range a.grads {
				fd := fast[2+i]
				g.lo, g.hi = units(fd)
				g.withResults([]*ir.Value{gd.root}, g.outs[i:i+1], func() { g.emitFastDotRows(fd, nil, 0) })
			}
		} else {
			g.lo, g.hi = rows(head)
			g.withResults([]*ir.Value{a.p}, []value.Value{pp}, func() { g.emitElemental(a.p) })
			g.ptrs[a.p] = pp
			g.lo, g.hi = rows(sq)
			g.withResults([]*ir.Value{a.ds}, []value.Value{dsp}, func() { g.emitRows(a.rows, a.ds, len(a.dsBody)) })
			g.ptrs[a.ds] = dsp
			convert()
			for i, gd := range a.grads {
				g.emitGradElemental(gd, h, i)
			}
		}
		g.forget([]*ir.Value{a.p, a.ds, a.pHalf, a.dp, a.scores}, draws)
	})
	g.lo, g.hi = lo, hi
	g.mod.t.lower().release(g.b, g.mod.declare, raw)
	dh := int64(a.grads[0].dot.Type.Shape[r-1])
	k := int64(a.scores.Args[0].Type.Shape[a.scores.Args[0].Type.Rank()-1])
	return heads, 2*head*(2*k+3*dh) + head*int64(len(a.dsBody)+len(a.pBody))
}

// planGradDots returns the fast dots of P, dS and the gradients, in that
// order, or nil when one of them cannot take the fast dot.
func (g *kernelBuilder) planGradDots(a *attentionGrad) []*fastDot {
	if a.scores.Type.DType != ir.F32 || a.dp.Type.DType != ir.F32 {
		return nil
	}
	fp := g.fastDotOf(a.scores, a.p, a.pBody)
	fds := g.fastDotOf(a.dp, a.ds, a.dsBody)
	if fp == nil || fds == nil {
		return nil
	}
	for _, x := range []struct {
		fd   *fastDot
		body []*ir.Value
		res  *ir.Value
	}{{fp, a.pBody, a.p}, {fds, a.dsBody, a.ds}} {
		x.fd.spec.BandA, x.fd.spec.BandB, x.fd.spec.BandC = DotBand{}, DotBand{}, DotBand{}
		dotBands(&x.fd.spec, x.fd.dot, g.fills, x.body, []*ir.Value{x.res})
	}
	out := []*fastDot{fp, fds}
	read := []*ir.Value{a.p, a.ds}
	if a.pHalf != nil {
		read = append(read, a.pHalf)
	}
	for _, v := range read {
		g.ptrs[v] = g.out // read from memory, as they will be
	}
	defer func() {
		for _, v := range read {
			delete(g.ptrs, v)
		}
	}()
	for _, gd := range a.grads {
		body := []*ir.Value{gd.dot}
		if gd.root != gd.dot {
			body = append(body, gd.root)
		}
		fd := g.planFastDot(body, gd.root)
		if fd == nil || fd.dot != gd.dot || fd.root != gd.dot {
			return nil
		}
		out = append(out, fd)
	}
	return out
}

// emitGradElemental writes head h's part of gradient i elementally: the
// rows of its dot's result that belong to the head.
func (g *kernelBuilder) emitGradElemental(gd gradDot, h value.Value, i int) {
	s := gd.dot.Type.Shape
	per := int64(s[len(s)-2]) * int64(s[len(s)-1])
	g.forLoop("grad", g.b.NewMul(h, i64c(per)), g.b.NewMul(g.b.NewAdd(h, i64c(1)), i64c(per)), func(e value.Value) {
		ix := atLinear(s, e)
		g.storeAt(gd.root.Type.DType, g.elem(gd.dot, ix), g.outs[i], g.rootAt(gd.root, gd.dot, ix))
	})
}
