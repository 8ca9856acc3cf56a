package passes

import (
	"fmt"
	"slices"
	"sort"

	"xlc/ir"
)

// layout folds transposes into the instructions that read them, where the
// reader can take the other order. Afterwards no transpose remains that a
// rule removes:
//   - D1: one read by a dot that can read its operand in place
//     (foldDotOperands);
//   - D2: one of a single-use dot that only reorders the batch dims, or
//     also swaps the free blocks (foldTransposedDot);
//   - W: one of a single-use dot that the product writes directly once its
//     operands are swapped (swapForTransposedWrite);
//   - R: one read by a reduction whose reduced axes it keeps in order
//     (foldReduceTranspose).
//
// Rewrites keep types and the interpreter's bits; dead transposes go.
// Reshapes are not looked through: reshape(x) shares x's storage already,
// and reshape(transpose(x)) moves the contiguous dims.
func layout(f *ir.Func) (bool, error) {
	changed := false
	for iter := 0; ; iter++ {
		if iter > 64 {
			return changed, fmt.Errorf("layout: no fixed point after %d sweeps", iter)
		}
		uses := f.Uses()
		var body []*ir.Value
		swept := false
		for _, v := range f.Body {
			var pre *ir.Value
			var ok bool
			var err error
			switch v.Op {
			case ir.OpDot:
				ok, err = foldDotOperands(v)
			case ir.OpTranspose:
				ok, err = foldTransposedDot(v, uses)
				if !ok && err == nil {
					ok, err = swapForTransposedWrite(v, uses)
				}
			case ir.OpReduceSum, ir.OpReduceMax:
				pre, ok, err = foldReduceTranspose(v)
			}
			if err != nil {
				return changed, err
			}
			if pre != nil {
				body = append(body, pre)
			}
			body = append(body, v)
			swept = swept || ok
		}
		f.Body = body
		if !swept {
			break
		}
		changed = true
		deadCode(f)
	}
	f.Renumber()
	return changed, nil
}

// retype checks that a rewritten instruction still has its type.
func retype(v *ir.Value, what string) error {
	args := make([]ir.Type, len(v.Args))
	for i, a := range v.Args {
		args[i] = a.Type
	}
	t, err := ir.Infer(v.Op, args, v.Attrs, v.Type)
	if err != nil {
		return fmt.Errorf("layout: %s: %v", what, err)
	}
	if !t.Equal(v.Type) {
		return fmt.Errorf("layout: %s: type %v, want %v", what, t, v.Type)
	}
	return nil
}

// gemmLayout reports whether an operand of type t, read in place with the
// given batch and contracting dims, has a layout the fast dot reads: its
// free dims merge into one strided run, its contracting dims in list
// order into another, and one of the two has unit stride (or size 1).
// codegen.DotSpecOf accepts the same operands.
func gemmLayout(t ir.Type, batch, contract []int) bool {
	fm, fs, ok1 := ir.MergeDims(t.Shape, ir.DotFree(t.Rank(), batch, contract))
	k, ks, ok2 := ir.MergeDims(t.Shape, contract)
	return ok1 && ok2 && (fm <= 1 || k <= 1 || fs == 1 || ks == 1)
}

func mapDims(perm, dims []int) []int {
	out := make([]int, len(dims))
	for i, d := range dims {
		out[i] = perm[d]
	}
	return out
}

// foldDotOperands applies rule D1 to both operands of dot v:
// dot(transpose(x, p), y) becomes dot(x, y) with the operand's batch and
// contracting dims mapped through p (transpose result dim i is x's dim
// p[i]). Batch and contracting dims pair up by list position, so their
// order is free; the free dims must keep their relative order under p,
// since the dot's result lists them in operand order. x, read in place,
// must also have a layout the fast dot reads (gemmLayout).
func foldDotOperands(v *ir.Value) (bool, error) {
	lb, rb, lc, rc := ir.DotDims(v.Attrs)
	changed := false
	for side := 0; side < 2; side++ {
		t := v.Args[side]
		if t.Op != ir.OpTranspose {
			continue
		}
		x, perm := t.Args[0], t.Attrs.Ints("perm")
		batch, contract := &lb, &lc
		if side == 1 {
			batch, contract = &rb, &rc
		}
		free := mapDims(perm, ir.DotFree(t.Type.Rank(), *batch, *contract))
		if !sort.IntsAreSorted(free) {
			continue
		}
		nb, nc := mapDims(perm, *batch), mapDims(perm, *contract)
		if !gemmLayout(x.Type, nb, nc) {
			continue
		}
		*batch, *contract = nb, nc
		v.Args[side] = x
		changed = true
	}
	if !changed {
		return false, nil
	}
	v.Attrs = v.Attrs.Set("batch", [][]int{lb, rb}).Set("contract", [][]int{lc, rc})
	return true, retype(v, "dot of a transpose")
}

// A dotTranspose is a transpose v of a single-use dot d: v's permutation,
// d's dimension lists, and the numbers of batch, lhs free and rhs free dims
// of d's result.
type dotTranspose struct {
	d              *ir.Value
	perm           []int
	lb, rb, lc, rc []int
	nb, nl, nr     int
}

// transposedDot describes the transpose v when it reads a single-use dot.
func transposedDot(v *ir.Value, uses map[*ir.Value]int) (dotTranspose, bool) {
	d := v.Args[0]
	if d.Op != ir.OpDot || uses[d] != 1 {
		return dotTranspose{}, false
	}
	t := dotTranspose{d: d, perm: v.Attrs.Ints("perm")}
	t.lb, t.rb, t.lc, t.rc = ir.DotDims(d.Attrs)
	t.nb = len(t.lb)
	t.nl = len(ir.DotFree(d.Args[0].Type.Rank(), t.lb, t.lc))
	t.nr = len(t.perm) - t.nb - t.nl
	return t, true
}

// foldTransposedDot applies rule D2 to transpose v of a single-use dot:
// when the permutation only reorders the batch dims, or reorders them and
// swaps the block of lhs free dims with the block of rhs free dims, the
// transpose becomes the dot itself, with the batch lists permuted (and the
// operands swapped). Other permutations (a free dim moved among the batch
// dims, as the head merge [b,h,s,dh] → [b,s,h,dh] does) are not a dot's
// result order, and stay.
func foldTransposedDot(v *ir.Value, uses map[*ir.Value]int) (bool, error) {
	t, ok := transposedDot(v, uses)
	if !ok {
		return false, nil
	}
	d, perm, nb, nl, nr := t.d, t.perm, t.nb, t.nl, t.nr
	lb, rb, lc, rc := t.lb, t.rb, t.lc, t.rc
	for i := 0; i < nb; i++ {
		if perm[i] >= nb {
			return false, nil
		}
	}
	same, swapped := true, true
	for i := nb; i < len(perm); i++ {
		if perm[i] != i {
			same = false
		}
		// swapped: the rhs free dims [nb+nl, nb+nl+nr) first, then the lhs ones.
		want := nb + nl + (i - nb)
		if i-nb >= nr {
			want = nb + (i - nb - nr)
		}
		if perm[i] != want {
			swapped = false
		}
	}
	if !same && !swapped {
		return false, nil
	}
	nlb, nrb := mapDims(lb, perm[:nb]), mapDims(rb, perm[:nb])
	args := []*ir.Value{d.Args[0], d.Args[1]}
	batch, contract := [][]int{nlb, nrb}, [][]int{lc, rc}
	if !same {
		args = []*ir.Value{d.Args[1], d.Args[0]}
		batch, contract = [][]int{nrb, nlb}, [][]int{rc, lc}
	}
	v.Op = ir.OpDot
	v.Args = args
	v.Attrs = d.Attrs.Set("batch", batch).Set("contract", contract)
	return true, retype(v, "transpose of a dot")
}

// swapForTransposedWrite applies rule W to the transpose v of a
// single-use dot d whose product cannot be written in v's order directly
// (ir.TransposedDotStrides) but can be once the operands are swapped: d
// becomes dot(rhs, lhs), whose result lists the rhs free dims before the
// lhs ones, and v's permutation is rewritten to give the same array (the
// backward's dK, [b,h,dh,s] → [b,s,h,dh], becomes [b,h,s,dh] →
// [b,s,h,dh]). Fusion then makes the transpose the dot kernel's root.
func swapForTransposedWrite(v *ir.Value, uses map[*ir.Value]int) (bool, error) {
	t, ok := transposedDot(v, uses)
	if !ok {
		return false, nil
	}
	d, perm, nb, nl, nr := t.d, t.perm, t.nb, t.nl, t.nr
	lb, rb, lc, rc := t.lb, t.rb, t.lc, t.rc
	if _, ok := ir.TransposedDotStrides(d.Type.Shape, nb, nl, perm); ok {
		return false, nil
	}
	// Dim j of the swapped product is dim from[j] of d's.
	from := make([]int, len(perm))
	to := make([]int, len(perm))
	for j := range from {
		switch {
		case j < nb:
			from[j] = j
		case j < nb+nr:
			from[j] = nb + nl + (j - nb)
		default:
			from[j] = nb + (j - nb - nr)
		}
		to[from[j]] = j
	}
	q := make([]int, len(perm))
	shape := make(ir.Shape, len(perm))
	for i, p := range perm {
		q[i] = to[p]
	}
	for j, f := range from {
		shape[j] = d.Type.Shape[f]
	}
	if _, ok := ir.TransposedDotStrides(shape, nb, nr, q); !ok {
		return false, nil
	}
	d.Args = []*ir.Value{d.Args[1], d.Args[0]}
	d.Attrs = d.Attrs.Set("batch", [][]int{rb, lb}).Set("contract", [][]int{rc, lc})
	d.Type = ir.Type{DType: d.Type.DType, Shape: shape}
	if err := retype(d, "swapped dot"); err != nil {
		return false, err
	}
	v.Attrs = v.Attrs.Set("perm", q)
	return true, retype(v, "transpose of a swapped dot")
}

// foldReduceTranspose applies rule R to reduction v when the reduced axes
// keep their relative order under the transpose's permutation p, so the
// reduction visits its elements in the same order and the results are
// bit-identical: reduce(transpose(x, p), axes) becomes reduce(x, p[axes])
// when the kept dims also keep their order, and otherwise
// transpose(reduce(x, p[axes]), q), a transpose of the smaller result. It
// returns the new reduction to insert before v in that case.
func foldReduceTranspose(v *ir.Value) (*ir.Value, bool, error) {
	t := v.Args[0]
	if t.Op != ir.OpTranspose {
		return nil, false, nil
	}
	x, perm := t.Args[0], t.Attrs.Ints("perm")
	axes := v.Attrs.Ints("axes")
	naxes := mapDims(perm, axes)
	if !sort.IntsAreSorted(naxes) {
		return nil, false, nil
	}
	reduced := make([]bool, len(perm))
	for _, a := range axes {
		reduced[a] = true
	}
	var kept []int // x's dims, in the order v's result lists them
	for i, p := range perm {
		if !reduced[i] {
			kept = append(kept, p)
		}
	}
	if sort.IntsAreSorted(kept) {
		v.Args = []*ir.Value{x}
		v.Attrs = v.Attrs.Set("axes", naxes)
		return nil, true, retype(v, "reduction of a transpose")
	}
	sorted := slices.Clone(kept)
	sort.Ints(sorted)
	q := make([]int, len(kept))
	for j, d := range kept {
		q[j] = slices.Index(sorted, d)
	}
	shape := make(ir.Shape, len(sorted))
	for j, d := range sorted {
		shape[j] = x.Type.Shape[d]
	}
	r := &ir.Value{Op: v.Op, Args: []*ir.Value{x}, Type: ir.Type{DType: v.Type.DType, Shape: shape},
		Attrs: v.Attrs.Set("axes", naxes)}
	if err := retype(r, "reduction of a transpose"); err != nil {
		return nil, false, err
	}
	v.Op = ir.OpTranspose
	v.Args = []*ir.Value{r}
	v.Attrs = ir.Attrs{}.Set("perm", q)
	return r, true, retype(v, "reduction of a transpose")
}
