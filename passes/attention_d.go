package passes

import (
	"slices"

	"xlc/ir"
)

// attentionD computes each row's D, the reduction over the keys in the
// backward of attention's softmax (Σ_k dP·P in whatever form autodiff
// wrote it), from the forward's output O = P·V and its gradient dO, as
// FlashAttention-2 does (Dao, 2023): Σ_k dP_qk·P_qk = Σ_d dO_qd·O_qd,
// since dP = dO·Vᵀ. dS is then elementwise in dP, P and D, so a fused
// backward computes it tile by tile in one pass over the keys. The
// reduction matched is reduce_sum over the last axis of a product, up to
// negations and quotients, of dP (or dP selected by a mask that P·V's
// operand is selected by too), P·V's operand, and values constant along
// the row (broadcasts of row values, splat constants).
func attentionD(f *ir.Func) (bool, error) {
	pos := map[*ir.Value]int{}
	byBase := map[*ir.Value][]*ir.Value{} // P → the products P·V of it (chainOf)
	users := map[*ir.Value][]*ir.Value{}
	for i, v := range f.Body {
		pos[v] = i
		if v.Op == ir.OpDot {
			if b := chainOf(v.Args[0]).base; softmaxOutput(b) {
				byBase[b] = append(byBase[b], v)
			}
		}
		for _, a := range v.Args {
			users[a] = append(users[a], v)
		}
	}
	type rewrite struct {
		at  int         // insert after f.Body[at]
		vs  []*ir.Value // the new instructions, the last replacing red
		red *ir.Value
	}
	var rws []rewrite
	for _, red := range f.Body {
		vs, after := rowDot(red, byBase, users, pos)
		if vs != nil {
			rws = append(rws, rewrite{after, vs, red})
		}
	}
	if len(rws) == 0 {
		return false, nil
	}
	repl := map[*ir.Value]*ir.Value{}
	insert := map[int][]*ir.Value{}
	for _, rw := range rws {
		repl[rw.red] = rw.vs[len(rw.vs)-1]
		insert[rw.at] = append(insert[rw.at], rw.vs...)
	}
	var body []*ir.Value
	for i, v := range f.Body {
		body = append(body, v)
		body = append(body, insert[i]...)
	}
	for _, v := range body {
		for i, a := range v.Args {
			if r := repl[a]; r != nil {
				v.Args[i] = r
			}
		}
	}
	for i, r := range f.Results {
		if n := repl[r]; n != nil {
			f.Results[i] = n
		}
	}
	f.Body = body
	deadCode(f)
	return true, nil
}

// rowDot returns the instructions computing red as Σ dO·O (attentionD),
// the last of them red's new value, and the index in f's body after which
// they go; nil when red is not such a reduction.
func rowDot(red *ir.Value, byBase, users map[*ir.Value][]*ir.Value, pos map[*ir.Value]int) ([]*ir.Value, int) {
	if red.Op != ir.OpReduceSum || red.Type.DType != ir.F32 {
		return nil, 0
	}
	e := red.Args[0]
	r := e.Type.Rank()
	if r < 3 || !slices.Equal(red.Attrs.Ints("axes"), []int{r - 1}) {
		return nil, 0
	}
	var num, den []*ir.Value
	neg := false
	var flatten func(v *ir.Value, over bool)
	flatten = func(v *ir.Value, over bool) {
		switch op := v.Op; {
		case softmaxOutput(v): // P, however computed
		case op == ir.OpMul:
			flatten(v.Args[0], over)
			flatten(v.Args[1], over)
			return
		case op == ir.OpDiv:
			flatten(v.Args[0], over)
			flatten(v.Args[1], !over)
			return
		case op == ir.OpNeg:
			neg = !neg
			flatten(v.Args[0], over)
			return
		}
		if over {
			den = append(den, v)
		} else {
			num = append(num, v)
		}
	}
	flatten(e, false)
	// One factor is P up to masks and a scale, the operand of some P·V up
	// to others; one is dP = dO·Vᵀ, the same V, up to masks and a scale,
	// so that their product is dP times P·V's operand; the others are
	// constant along the row.
	var dp, dpLeaf, pLeaf, o *ir.Value
	scale := 1.0 // the product's constant factor over P·V's operand's
	for _, x := range num {
		cp := chainOf(x)
		for _, pd := range byBase[cp.base] {
			cv := chainOf(pd.Args[0])
			for _, y := range num {
				cd := chainOf(y)
				if pLeaf != nil || y == x || cd.base.Op != ir.OpDot || cd.base.Args[1] != pd.Args[1] {
					continue
				}
				if sameSet(append(slices.Clone(cp.masks), cd.masks...), cv.masks) {
					pLeaf, dpLeaf, dp, o = x, y, cd.base, pd
					scale = cp.scale * cd.scale / cv.scale
				}
			}
		}
	}
	if pLeaf == nil {
		return nil, 0
	}
	rowShape := red.Type.Shape
	type factor struct {
		x   *ir.Value
		div bool
	}
	var factors []factor
	seenP, seenDP := false, false
	for i, x := range append(slices.Clone(num), den...) {
		div := i >= len(num)
		switch {
		case !div && x == pLeaf && !seenP:
			seenP = true
		case !div && x == dpLeaf && !seenDP:
			seenDP = true
		case splatFloat(x) && div:
			scale /= constFloat(x)
		case splatFloat(x):
			scale *= constFloat(x)
		case x.Op == ir.OpBroadcast && x.Args[0].Type.Shape.Equal(rowShape) && slices.Equal(x.Attrs.Ints("dims"), iotaInts(r-1)):
			factors = append(factors, factor{x, div})
		default:
			return nil, 0
		}
	}
	dO, ok := rowDotOperand(dp, o, r)
	if !ok {
		return nil, 0
	}
	// New values: Σ dO·O, then the row factors. Where O's one reader is
	// a transpose (the heads' merge), the sum reads that instead, so that
	// O keeps one reader and is stored transposed (layout), dO laid out
	// the same way.
	var vs []*ir.Value
	emit := func(op ir.Op, t ir.Type, attrs ir.Attrs, args ...*ir.Value) *ir.Value {
		v := &ir.Value{Op: op, Args: args, Type: cloneType(t), Attrs: attrs, ID: newID}
		vs = append(vs, v)
		return v
	}
	out, toO := o, iotaInts(r) // O as read, and which axis of O each of its axes is
	if us := users[o]; len(us) == 1 && us[0].Op == ir.OpTranspose {
		out, toO = us[0], us[0].Attrs.Ints("perm")
	}
	after := max(pos[dp.Args[0]], pos[out])
	src, perm := dp.Args[0], make([]int, r)
	for i, a := range toO {
		perm[i] = dO[a]
	}
	if src.Op == ir.OpTranspose {
		sp := src.Attrs.Ints("perm")
		for i, a := range perm {
			perm[i] = sp[a]
		}
		src = src.Args[0]
	}
	if !slices.Equal(perm, iotaInts(r)) {
		src = emit(ir.OpTranspose, out.Type, ir.Attrs{}.Set("perm", perm), src)
	}
	// The head dimension's axis in out, and the order of the others.
	h := slices.Index(toO, r-1)
	rest := slices.Delete(slices.Clone(toO), h, h+1)
	sumT := ir.Type{DType: ir.F32, Shape: slices.Delete(slices.Clone(out.Type.Shape), h, h+1)}
	d := emit(ir.OpReduceSum, sumT, ir.Attrs{}.Set("axes", []int{h}), emit(ir.OpMul, out.Type, nil, src, out))
	if !slices.Equal(rest, iotaInts(r-1)) {
		back := make([]int, r-1) // back[k]: the axis of d holding O's axis k
		for i, a := range rest {
			back[a] = i
		}
		d = emit(ir.OpTranspose, red.Type, ir.Attrs{}.Set("perm", back), d)
	}
	for _, fc := range factors {
		op, y := ir.OpMul, fc.x
		if fc.div {
			op = ir.OpDiv
		}
		y = y.Args[0]
		after = max(after, pos[y])
		d = emit(op, red.Type, nil, d, y)
	}
	if float32(scale) != 1 { // the constant is f32: a product by 1 is none
		d = emit(ir.OpMul, red.Type, nil, d, emit(ir.OpConstant, red.Type, ir.Attrs{}.Set("value", scale)))
	}
	if neg {
		d = emit(ir.OpNeg, red.Type, nil, d)
	}
	return vs, after
}

// A chain is a value as its base times a constant scale, selected by
// masks (zero elsewhere).
type chain struct {
	base  *ir.Value
	masks []*ir.Value
	scale float64
}

// chainOf strips v's selects of zero and products and quotients by splat
// constants (dropout's scale, attention's).
func chainOf(v *ir.Value) chain {
	c := chain{scale: 1}
	for {
		switch {
		case v.Op == ir.OpSelect && isConst(v.Args[2], 0):
			c.masks = append(c.masks, v.Args[0])
			v = v.Args[1]
		case (v.Op == ir.OpMul || v.Op == ir.OpDiv) && splatFloat(v.Args[1]):
			if v.Op == ir.OpMul {
				c.scale *= constFloat(v.Args[1])
			} else {
				c.scale /= constFloat(v.Args[1])
			}
			v = v.Args[0]
		case v.Op == ir.OpMul && splatFloat(v.Args[0]):
			c.scale *= constFloat(v.Args[0])
			v = v.Args[1]
		default:
			c.base = v
			return c
		}
	}
}

// splatFloat reports whether v is a float splat constant.
func splatFloat(v *ir.Value) bool { return v.Op == ir.OpConstant && v.Type.DType.IsFloat() }

// sameSet reports whether a and b hold the same values.
func sameSet(a, b []*ir.Value) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// rowDotOperand checks that dP = dO·Vᵀ and O = P·V multiply the same V
// the two ways round, P·V's operand laid out as dP (batch axes first, then
// the query axis, then the keys), and returns the permutation that lays
// dO out as O.
func rowDotOperand(dp, o *ir.Value, r int) ([]int, bool) {
	lbP, rbP, lcP, rcP := ir.DotDims(dp.Attrs)
	lbO, rbO, lcO, rcO := ir.DotDims(o.Attrs)
	v := o.Args[1]
	if len(lcP) != 1 || len(rcP) != 1 || len(lcO) != 1 || len(rcO) != 1 || len(lbP) != r-2 ||
		!slices.Equal(lbO, iotaInts(r-2)) || lcO[0] != r-1 || !slices.Equal(rbO, rbP) ||
		v.Type.Rank() != r || dp.Args[0].Type.Rank() != r || !dp.Type.Shape.Equal(o.Args[0].Type.Shape) {
		return nil, false
	}
	// V's axes: the batch axes, the keys (contracted by P·V, dP's last)
	// and the head dimension (contracted by dO·Vᵀ, O's last).
	if rcO[0] == rcP[0] || slices.Contains(rbO, rcO[0]) || slices.Contains(rbO, rcP[0]) {
		return nil, false
	}
	free := -1
	for i := range r {
		if !slices.Contains(lbP, i) && i != lcP[0] {
			free = i
		}
	}
	perm := append(append(slices.Clone(lbP), free), lcP[0])
	do := dp.Args[0].Type.Shape
	for i, a := range perm {
		if free < 0 || do[a] != o.Type.Shape[i] {
			return nil, false
		}
	}
	return perm, true
}
