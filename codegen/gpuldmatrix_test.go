package codegen

import "testing"

// TestMMAFragRows checks the tensor-core tiler's ldmatrix addresses
// against the m16n8k16 fragment layout, lane by lane: by PTX's ISA,
// register i of lane 4r + w holds word w (elements 2w, 2w+1) of the row
// that lane 8i + r points at, and the mma reads a0..a3 at A[g][2t],
// A[g+8][2t], A[g][2t+8], A[g+8][2t+8] and b0, b1 at B[2t][g], B[2t+8][g]
// (g = lane / 4, t = lane % 4), B held n-major. Rows must start 16 bytes
// apart.
func TestMMAFragRows(t *testing.T) {
	if mmaLS*2%16 != 0 {
		t.Fatalf("a shared row of %d halves is not a multiple of 16 bytes", mmaLS)
	}
	f := mmaFrag
	for lane := range int64(32) {
		g, tg := lane/4, lane%4
		for i := range int64(4) {
			p := 8*i + g // the lane pointing at the row this register comes from
			if ka, kb := f.aK.eval(p), f.bK.eval(p); ka%8 != 0 || kb%8 != 0 {
				t.Fatalf("lane %d points A at k %d and B at k %d: not both 16-byte aligned", p, ka, kb)
			}
			row, k := f.aRow.eval(p), f.aK.eval(p)+2*tg
			if wr, wk := g+8*(i%2), 2*tg+8*(i/2); row != wr || k != wk {
				t.Errorf("lane %d's a%d: A[%d][%d], want A[%d][%d]", lane, i, row, k, wr, wk)
			}
			// x4 over two mma tiles of B: b0, b1 of the first, then of the second.
			n, k := f.bRow.eval(p), f.bK.eval(p)+2*tg
			if wn, wk := 8*(i/2)+g, 2*tg+8*(i%2); n != wn || k != wk {
				t.Errorf("lane %d's register %d of B: B[%d][%d], want B[%d][%d]", lane, i, k, n, wk, wn)
			}
			if i < 2 {
				n, k := f.bRow1.eval(p), f.bK.eval(p)+2*tg
				if wn, wk := g, 2*tg+8*i; n != wn || k != wk {
					t.Errorf("lane %d's b%d (x2): B[%d][%d], want B[%d][%d]", lane, i, k, n, wk, wn)
				}
			}
		}
	}
}
