package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// Packing for vdpbf16ps (dotbf16.go): bf16 pairs of k, the last pair of
// an odd kc completed with a zero.

// dpHalves returns the whole pairs of kc and whether kc is odd.
func (g *gemmGen) dpHalves(kc value.Value) (half, odd value.Value) {
	half = g.cur.NewAShr(kc, gemmI64(1))
	odd = g.cur.NewICmp(enum.IPredNE, g.cur.NewAnd(kc, gemmI64(1)), gemmI64(0))
	return half, odd
}

// dpPairs emits pair(kp, false) for each whole pair of kc and, when kc is
// odd, pair(half, true) for the last k.
func (g *gemmGen) dpPairs(name string, kc value.Value, pair func(kp value.Value, last bool)) {
	half, odd := g.dpHalves(kc)
	g.loopStep(name, gemmI64(0), half, 1, func(kp value.Value) { pair(kp, false) })
	g.ifElse(name+".odd", odd, func() { pair(half, true) }, nil)
}

// packBPairs copies B[pc:pc+kc, jc:jc+nc] into bpack (bf16): sliver jr/NR
// at bpack + jr·kpad, holding 2·NR bf16 for each pair of k, the pair's
// elements adjacent (zero past column nc and past kc).
func (g *gemmGen) packBPairs(B, bpack, pc, kc, jc, nc value.Value) {
	s, p := g.s, g.p
	N, ldb, nr := int64(s.N), g.ldb, int64(p.NR)
	nrem := int(N) % p.NR
	kpad := g.dpKPad(kc)
	g.loopStep("pbj", gemmI64(0), nc, nr, func(jr value.Value) {
		dst := g.gepI(types.I16, bpack, g.mul(jr, kpad))
		col := g.add(jc, jr)
		if !s.TransB {
			// Rows k and k+1 are interleaved by vectors of 16 columns.
			src := g.gepI(types.I16, B, g.add(g.mulc(pc, ldb), col))
			pairs := func(cols int) {
				g.dpPairs("pbk", kc, func(kp value.Value, last bool) {
					sp := g.gepI(types.I16, src, g.mulc(kp, 2*ldb))
					dp := g.gepI(types.I16, dst, g.mulc(kp, 2*nr))
					for v := 0; v < p.NR/16; v++ {
						n := cols - 16*v
						x := g.loadH(g.gepI(types.I16, sp, gemmI64(int64(16*v))), n)
						y := value.Value(constant.NewZeroInitializer(dpV16))
						if !last {
							y = g.loadH(g.gepI(types.I16, sp, gemmI64(ldb+int64(16*v))), n)
						}
						g.storeH(g.interleave(x, y), g.gepI(types.I16, dp, gemmI64(int64(32*v))), 32, 64)
					}
				})
			}
			if nrem == 0 {
				pairs(p.NR)
				return
			}
			g.ifElse("pbfull", g.le(g.addc(jr, nr), nc), func() { pairs(p.NR) }, func() { pairs(nrem) })
			return
		}
		// B stored N×K: a pair of column j is one 32-bit value of row j
		// of the buffer. Full slivers go by 16×16 blocks of pairs
		// transposed in registers; the other pairs one by one.
		src := g.gepI(types.I16, B, g.add(g.mulc(col, ldb), pc))
		dst32 := g.cur.NewBitCast(dst, dpI32)
		half, odd := g.dpHalves(kc)
		load32 := func(p value.Value) value.Value {
			l := g.cur.NewLoad(types.I32, g.cur.NewBitCast(p, dpI32))
			l.Align = 2
			return l
		}
		store32 := func(x value.Value, j int, kp value.Value) {
			st := g.cur.NewStore(x, g.gepI(types.I32, dst32, g.addc(g.mulc(kp, nr), int64(j))))
			st.Align = 4
		}
		scalar := func(cols int, kp0 value.Value) {
			for j := 0; j < p.NR; j++ {
				if j >= cols {
					g.loopStep("pbz", kp0, g.cur.NewAShr(kpad, gemmI64(1)), 1, func(kp value.Value) {
						store32(constant.NewInt(types.I32, 0), j, kp)
					})
					continue
				}
				sj := g.gepI(types.I16, src, gemmI64(int64(j)*ldb))
				g.loopStep("pbt", kp0, half, 1, func(kp value.Value) {
					store32(load32(g.gepI(types.I16, sj, g.mulc(kp, 2))), j, kp)
				})
				g.ifElse("pbto", odd, func() {
					l := g.cur.NewLoad(types.I16, g.gepI(types.I16, sj, g.mulc(half, 2)))
					l.Align = 2
					store32(g.cur.NewZExt(l, types.I32), j, half)
				}, nil)
			}
		}
		full := func() {
			kv := g.sub(half, g.cur.NewSRem(half, gemmI64(16)))
			g.loopStep("pbv", gemmI64(0), kv, 16, func(kp value.Value) {
				for jg := 0; jg < p.NR/16; jg++ {
					rows := make([]value.Value, 16)
					for r := range rows {
						q := g.gepI(types.I16, src, g.add(g.mulc(kp, 2), gemmI64(int64(jg*16+r)*ldb)))
						l := g.cur.NewLoad(dpW16, g.cur.NewBitCast(q, types.NewPointer(dpW16)))
						l.Align = 2
						rows[r] = l
					}
					rows = g.transpose(rows)
					dk := g.gepI(types.I32, dst32, g.addc(g.mulc(kp, nr), int64(jg*16)))
					for r := range rows {
						q := g.gepI(types.I32, dk, gemmI64(int64(r)*nr))
						st := g.cur.NewStore(rows[r], g.cur.NewBitCast(q, types.NewPointer(dpW16)))
						st.Align = 64
					}
				}
			})
			scalar(p.NR, kv)
		}
		if nrem == 0 {
			full()
			return
		}
		g.ifElse("pbfull", g.le(g.addc(jr, nr), nc), full, func() { scalar(nrem, gemmI64(0)) })
	})
}

// packAPairs copies A[ic:ic+mc, pc:pc+kc] into apack (bf16). A stored
// M×K: row r at apack + r·2·dpLDA, as stored, completed to whole pairs. A
// stored K×M: sliver ir/MR at apack + ir·kpad, holding MR pairs for each
// pair of k (M mod MR of them in the last sliver of the matrix).
func (g *gemmGen) packAPairs(A, apack, ic, mc, pc, kc value.Value) {
	s, p := g.s, g.p
	M, lda, mr := int64(s.M), g.lda, int64(p.MR)
	if !s.TransA {
		ld := 2 * dpLDA(p)
		g.loopStep("par", gemmI64(0), mc, 1, func(r value.Value) {
			src := g.gepI(types.I16, A, g.add(g.mulc(g.add(ic, r), lda), pc))
			dst := g.gepI(types.I16, apack, g.mulc(r, ld))
			kv := g.sub(kc, g.cur.NewSRem(kc, gemmI64(32)))
			g.loopStep("pak", gemmI64(0), kv, 32, func(k value.Value) {
				l := g.cur.NewLoad(dpV32, g.cur.NewBitCast(g.gepI(types.I16, src, k), types.NewPointer(dpV32)))
				l.Align = 2
				g.storeH(l, g.gepI(types.I16, dst, k), 32, 4)
			})
			g.loopStep("pakr", kv, kc, 1, func(k value.Value) {
				l := g.cur.NewLoad(types.I16, g.gepI(types.I16, src, k))
				l.Align = 2
				g.cur.NewStore(l, g.gepI(types.I16, dst, k)).Align = 2
			})
			_, odd := g.dpHalves(kc)
			g.ifElse("pako", odd, func() {
				g.cur.NewStore(constant.NewInt(types.I16, 0), g.gepI(types.I16, dst, kc)).Align = 2
			}, nil)
		})
		return
	}
	mrem := int(M) % p.MR
	kpad := g.dpKPad(kc)
	g.loopStep("pai", gemmI64(0), mc, mr, func(ir value.Value) {
		dst := g.gepI(types.I16, apack, g.mul(ir, kpad))
		src := g.gepI(types.I16, A, g.add(g.mulc(pc, lda), g.add(ic, ir)))
		// Rows k and k+1 interleaved by vectors of 16 elements.
		copyRows := func(rows int) {
			g.dpPairs("pak", kc, func(kp value.Value, last bool) {
				sp := g.gepI(types.I16, src, g.mulc(kp, 2*lda))
				dp := g.gepI(types.I16, dst, g.mulc(kp, 2*mr))
				for i := 0; i < rows; i += 16 {
					n := min(16, rows-i)
					x := g.loadH(g.gepI(types.I16, sp, gemmI64(int64(i))), n)
					y := value.Value(constant.NewZeroInitializer(dpV16))
					if !last {
						y = g.loadH(g.gepI(types.I16, sp, gemmI64(lda+int64(i))), n)
					}
					g.storeH(g.interleave(x, y), g.gepI(types.I16, dp, gemmI64(int64(2*i))), 2*n, 4)
				}
			})
		}
		if mrem == 0 {
			copyRows(p.MR)
			return
		}
		g.ifElse("pafull", g.le(g.addc(ir, mr), mc), func() { copyRows(p.MR) }, func() { copyRows(mrem) })
	})
}
