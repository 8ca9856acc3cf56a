package codegen

import (
	"fmt"

	"xlc/ir"
)

// DotSpecOf returns the DotSpec of a dot instruction with operand types a
// and b and attributes attrs when the kernel reads its operands in place.
// Each operand is a strided matrix: its free dims must merge into one
// strided run and its contracting dims, in order, into another
// (ir.MergeDims), one of them with unit stride (a [b,s,d]·[d,e] product
// has M = b·s). Batch dims may lie anywhere, with any strides; a spec that
// turns out dense has no LDs or BatchDims. The result C is dense. This is
// the layout the layout pass folds transposes into.
func DotSpecOf(a, b ir.Type, attrs ir.Attrs) (DotSpec, error) {
	return dotSpecStrided(a, b, attrs, nil)
}

// dotSpecStrided is DotSpecOf for a result whose dims have the strides cst
// in its buffer (nil: dense), as ir.TransposedDotStrides gives for a
// product written in a transposed order: the rhs free dims must merge into
// one run of unit stride and the lhs free dims into one strided run (the
// leading dimension of C).
func dotSpecStrided(a, b ir.Type, attrs ir.Attrs, cst []int) (DotSpec, error) {
	if !dotOperandType(a.DType) || !dotOperandType(b.DType) {
		return DotSpec{}, fmt.Errorf("codegen: dot: only f32, bf16 and f16 operands, have %v and %v", a, b)
	}
	lb, rb, lc, rc := ir.DotDims(attrs)
	if len(lb) != len(rb) || len(lc) != len(rc) {
		return DotSpec{}, fmt.Errorf("codegen: dot: batch and contract lists must pair up")
	}
	out, err := ir.Infer(ir.OpDot, []ir.Type{a, b}, attrs, ir.Type{})
	if err != nil {
		return DotSpec{}, fmt.Errorf("codegen: %v", err)
	}
	if out.DType != ir.F32 {
		return DotSpec{}, fmt.Errorf("codegen: dot: only an f32 result, have %v", out)
	}
	m, sm, ok1 := ir.MergeDims(a.Shape, ir.DotFree(a.Rank(), lb, lc))
	k, sk, ok2 := ir.MergeDims(a.Shape, lc)
	n, sn, ok3 := ir.MergeDims(b.Shape, ir.DotFree(b.Rank(), rb, rc))
	kb, skb, ok4 := ir.MergeDims(b.Shape, rc)
	if !ok1 || !ok2 || !ok3 || !ok4 || k != kb {
		return DotSpec{}, fmt.Errorf("codegen: dot: the free or contracting dims of %v·%v (batch %v %v, contract %v %v) are not strided runs", a, b, lb, rb, lc, rc)
	}
	s := DotSpec{Batch: 1, M: m, N: n, K: k}
	if a.DType != ir.F32 { // f32 stays the zero value, as every f32 spec has it
		s.AType, s.BType = a.DType, b.DType
	}
	// A: M×K by rows (unit stride along k), or stored K×M (unit along m).
	switch {
	case k == 1 || sk == 1:
		s.LDA = max(sm, k)
	case m == 1 || sm == 1:
		s.TransA, s.LDA = true, max(sk, m)
	default:
		return DotSpec{}, fmt.Errorf("codegen: dot: neither the free nor the contracting dims of %v have unit stride", a)
	}
	// B: K×N by rows (unit stride along n), or stored N×K.
	switch {
	case n == 1 || sn == 1:
		s.LDB = max(skb, n)
	case k == 1 || skb == 1:
		s.TransB, s.LDB = true, max(sn, k)
	default:
		return DotSpec{}, fmt.Errorf("codegen: dot: neither the free nor the contracting dims of %v have unit stride", b)
	}
	// Batch dims, size-1 ones dropped, neighbours merged where all three
	// operands allow.
	sa, sb, sc := ir.RowMajorStrides(a.Shape), ir.RowMajorStrides(b.Shape), ir.RowMajorStrides(out.Shape)
	if cst != nil {
		ldc, ok := ir.DotResultRows(out.Shape, cst, len(lb), a.Rank()-len(lb)-len(lc))
		if !ok {
			return DotSpec{}, fmt.Errorf("codegen: dot: the result strides %v of %v are not rows of unit stride", cst, out)
		}
		sc = cst
		if m > 1 {
			s.LDC = ldc
		}
	}
	var dims []DotBatchDim
	for i := range lb {
		d := DotBatchDim{Size: a.Shape[lb[i]], A: int64(sa[lb[i]]), B: int64(sb[rb[i]]), C: int64(sc[i])}
		if d.Size == 1 {
			continue
		}
		s.Batch *= d.Size
		if l := len(dims) - 1; l >= 0 {
			p := &dims[l]
			sz := int64(d.Size)
			if p.A == d.A*sz && p.B == d.B*sz && p.C == d.C*sz {
				p.Size *= d.Size
				p.A, p.B, p.C = d.A, d.B, d.C
				continue
			}
		}
		dims = append(dims, d)
	}
	// Back to the dense defaults where they apply.
	dense := DotSpec{Batch: s.Batch, M: m, N: n, K: k, TransA: s.TransA, TransB: s.TransB}
	lda, ldb, ldc := dense.lds()
	if int64(s.LDA) == lda {
		s.LDA = 0
	}
	if int64(s.LDB) == ldb {
		s.LDB = 0
	}
	if int64(s.LDC) == ldc {
		s.LDC = 0
	}
	if len(dims) > 0 {
		s.BatchDims = dims
		if d := s; len(dims) == 1 {
			d.BatchDims = nil
			if d.batchDims()[0] == dims[0] {
				s.BatchDims = nil
			}
		}
	}
	return s, nil
}
