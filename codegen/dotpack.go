package codegen

import (
	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Packing: the copies of B's panels and A's blocks the micro-kernels read,
// f32 whatever the operands' types (half ones are widened as they are
// copied: dothalf.go; vdpbf16ps's bf16 pairs are dotbf16pack.go's).

// packB copies B[pc:pc+kc, jc:jc+nc] into bpack: sliver jr/NR at
// bpack + jr·kc, holding NR floats for each k (zero past column nc).
func (g *gemmGen) packB(B, bpack, pc, kc, jc, nc value.Value) {
	s, p := g.s, g.p
	bt := s.BType
	N, ldb := int64(s.N), g.ldb
	nrem := int(N) % p.NR
	g.loopStep("pbj", gemmI64(0), nc, int64(p.NR), func(jr value.Value) {
		dst := g.gep(bpack, g.mul(jr, kc))
		col := g.add(jc, jr)
		if !s.TransB {
			src := g.gepT(bt, B, g.add(g.mulc(pc, ldb), col))
			copyRows := func(cols int) {
				g.loopStep("pbk", gemmI64(0), kc, 1, func(k value.Value) {
					sp := g.gepT(bt, src, g.mulc(k, ldb))
					g.prefetchAhead(bt, sp, ldb*packAhead, int64(p.NR))
					dp := g.gep(dst, g.mulc(k, int64(p.NR)))
					vw := g.t.Vec
					for v := 0; v < p.NR/vw; v++ {
						var x value.Value
						switch n := cols - vw*v; {
						case n > 0:
							x = g.loadVAs(bt, g.gepT(bt, sp, gemmI64(int64(vw*v))), min(n, vw))
						default:
							x = constant.NewZeroInitializer(g.vec())
						}
						g.storeV(x, g.gep(dp, gemmI64(int64(vw*v))), 4*vw)
					}
				})
			}
			if nrem == 0 {
				copyRows(p.NR)
				return
			}
			g.ifElse("pbfull", g.le(g.addc(jr, int64(p.NR)), nc),
				func() { copyRows(p.NR) }, func() { copyRows(nrem) })
			return
		}
		// B stored N×K: column j of B is row j of the buffer. Full slivers
		// go by Vec×Vec blocks transposed in registers; the k remainder and
		// the partial sliver element by element.
		src := g.gepT(bt, B, g.add(g.mulc(col, ldb), pc))
		scalar := func(cols int, k0 value.Value) {
			for j := 0; j < p.NR; j++ {
				dj := g.gep(dst, gemmI64(int64(j)))
				if j >= cols {
					g.loopStep("pbz", k0, kc, 1, func(k value.Value) {
						g.storeF(constant.NewFloat(gemmF32, 0), g.gep(dj, g.mulc(k, int64(p.NR))))
					})
					continue
				}
				sj := g.gepT(bt, src, gemmI64(int64(j)*ldb))
				g.loopStep("pbt", k0, kc, 1, func(k value.Value) {
					g.storeF(g.loadAs(bt, g.gepT(bt, sj, k)), g.gep(dj, g.mulc(k, int64(p.NR))))
				})
			}
		}
		full := func() {
			vw := g.t.Vec
			kv := g.sub(kc, g.cur.NewSRem(kc, gemmI64(int64(vw))))
			g.loopStep("pbv", gemmI64(0), kv, int64(vw), func(k value.Value) {
				for jg := 0; jg < p.NR/vw; jg++ {
					rows := make([]value.Value, vw)
					for r := range rows {
						rows[r] = g.loadVAs(bt, g.gepT(bt, src, g.addc(k, int64(jg*vw+r)*ldb)), vw)
					}
					rows = g.transpose(rows)
					dk := g.gep(dst, g.addc(g.mulc(k, int64(p.NR)), int64(jg*vw)))
					for r := range rows {
						g.storeV(rows[r], g.gep(dk, gemmI64(int64(r*p.NR))), 4*vw)
					}
				}
			})
			scalar(p.NR, kv)
		}
		if nrem == 0 {
			full()
			return
		}
		g.ifElse("pbfull", g.le(g.addc(jr, int64(p.NR)), nc),
			full, func() { scalar(nrem, gemmI64(0)) })
	})
}

// transpose transposes the Vec×Vec matrix whose rows are the vectors x:
// log2(Vec) stages that swap the off-diagonal blocks of Vec/2, ..., 2, 1.
func (g *gemmGen) transpose(x []value.Value) []value.Value {
	n := g.t.Vec
	for b := n / 2; b >= 1; b /= 2 {
		lo := make([]constant.Constant, n)
		hi := make([]constant.Constant, n)
		for l := 0; l < n; l++ {
			if l&b == 0 {
				lo[l] = constant.NewInt(types.I32, int64(l))
				hi[l] = constant.NewInt(types.I32, int64(l+b))
			} else {
				lo[l] = constant.NewInt(types.I32, int64(n+l-b))
				hi[l] = constant.NewInt(types.I32, int64(n+l))
			}
		}
		mlo := constant.NewVector(types.NewVector(uint64(n), types.I32), lo...)
		mhi := constant.NewVector(types.NewVector(uint64(n), types.I32), hi...)
		y := make([]value.Value, n)
		for r := 0; r < n; r++ {
			if r&b != 0 {
				continue
			}
			y[r] = g.cur.NewShuffleVector(x[r], x[r+b], mlo)
			y[r+b] = g.cur.NewShuffleVector(x[r], x[r+b], mhi)
		}
		x = y
	}
	return x
}

// packA copies A[ic:ic+mc, pc:pc+kc] into apack. A stored M×K: row r of
// the block at apack + r·gemmLDA(MR, KC). A stored K×M: sliver ir/MR at
// apack + ir·kc, holding MR floats for each k (only M mod MR of them in the
// last sliver of the matrix).
func (g *gemmGen) packA(A, apack, ic, mc, pc, kc value.Value) {
	s, p := g.s, g.p
	at := s.AType
	M, lda := int64(s.M), g.lda
	if !s.TransA {
		ld := int64(gemmLDA(p.MR, p.KC))
		g.loopStep("par", gemmI64(0), mc, 1, func(r value.Value) {
			src := g.gepT(at, A, g.add(g.mulc(g.add(ic, r), lda), pc))
			dst := g.gep(apack, g.mulc(r, ld))
			if !s.halfA() {
				g.loopStep("pak", gemmI64(0), kc, 1, func(k value.Value) {
					g.storeF(g.loadF(g.gep(src, k)), g.gep(dst, k))
				})
				return
			}
			// Widened by vectors, the k remainder element by element.
			vw := int64(g.t.Vec)
			kv := g.sub(kc, g.cur.NewSRem(kc, gemmI64(vw)))
			g.loopStep("pak", gemmI64(0), kv, vw, func(k value.Value) {
				g.storeV(g.loadVAs(at, g.gepT(at, src, k), int(vw)), g.gep(dst, k), 4)
			})
			g.loopStep("pakr", kv, kc, 1, func(k value.Value) {
				g.storeF(g.loadAs(at, g.gepT(at, src, k)), g.gep(dst, k))
			})
		})
		return
	}
	// Row k of the block, A[pc+k, ic:ic+mc], is contiguous: each k copies
	// it sliver by sliver (MR floats, by vectors and copyPart), so that a
	// row's lines are read once; slivers outside would read each line
	// (lda floats apart, often a page) once per sliver.
	mrem := int(M) % p.MR
	g.loopStep("pak", gemmI64(0), kc, 1, func(k value.Value) {
		dk := g.gep(apack, g.mulc(k, int64(p.MR)))
		sk := g.gepT(at, A, g.add(g.mulc(g.add(pc, k), lda), ic))
		g.prefetchAhead(at, sk, lda*packAhead, int64(p.MC))
		copyRows := func(ir value.Value, rows int) {
			dp, sp := g.gep(dk, g.mul(ir, kc)), g.gepT(at, sk, ir)
			for i := 0; i < rows; i += g.t.Vec {
				n := min(g.t.Vec, rows-i)
				si, di := g.gepT(at, sp, gemmI64(int64(i))), g.gep(dp, gemmI64(int64(i)))
				if n == g.t.Vec {
					g.storeV(g.loadVAs(at, si, n), di, 4)
					continue
				}
				g.copyPart(at, si, di, n)
			}
		}
		g.loopStep("pai", gemmI64(0), mc, int64(p.MR), func(ir value.Value) {
			if mrem == 0 {
				copyRows(ir, p.MR)
				return
			}
			g.ifElse("pafull", g.le(g.addc(ir, int64(p.MR)), mc),
				func() { copyRows(ir, p.MR) }, func() { copyRows(ir, mrem) })
		})
	})
}

// copyPart copies n < Vec elements of type d from src to the f32 buffer
// at dst. AVX-512 does it with one masked load and store; elsewhere
// masked moves are slow (AVX2's vmaskmovps store is microcoded on AMD,
// 16-bit masked loads become element loads), so it copies the largest
// power-of-two chunks that fit, with plain loads and stores.
func (g *gemmGen) copyPart(d ir.DType, src, dst value.Value, n int) {
	if g.t.x86() && g.t.Vec == 16 {
		g.maskedStore(g.loadVAs(d, src, n), dst, g.mask(n))
		return
	}
	for i, c := 0, g.t.Vec/2; i < n; c /= 2 {
		if n-i < c {
			continue
		}
		si, di := g.gepT(d, src, gemmI64(int64(i))), g.gep(dst, gemmI64(int64(i)))
		if c == 1 {
			g.storeF(g.loadAs(d, si), di)
		} else {
			vt := types.NewVector(uint64(c), dotElem(d))
			l := g.cur.NewLoad(vt, g.cur.NewBitCast(si, types.NewPointer(vt)))
			l.Align = llir.Align(dotType(d).Size())
			st := g.cur.NewStore(g.widen(d, l), g.cur.NewBitCast(di, types.NewPointer(types.NewVector(uint64(c), gemmF32))))
			st.Align = 4
		}
		i += c
	}
}

// packAhead is how many rows ahead of the one it copies packing asks for
// the lines of a row: rows of a panel or block lie ldb or lda floats
// apart, often a page or more, a stride no hardware prefetcher follows
// (bench/NOTES.md).
const packAhead = 8

// prefetchAhead prefetches the n elements of type d that start off
// elements past p (prefetchLines).
func (g *gemmGen) prefetchAhead(d ir.DType, p value.Value, off, n int64) {
	prefetchLines(g.cur, g.intrinsic, dotElem(d), p, n, int64(dotType(d).Size()), func(c int64) value.Value {
		return gemmI64(off + c)
	})
}
