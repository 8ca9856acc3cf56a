package codegen

import (
	"slices"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// bf16 dot products: when A and B are both bf16 and the target has
// AVX-512 BF16 (Features holds avx512_bf16: sapphirerapids, cooperlake,
// znver4 and their kin, or a host that has it; not the x86-64-v4 class),
// the micro-kernel may multiply by vdpbf16ps (DotBlocking.BF16Dot; by
// default where it pays: not on Sapphire Rapids, dpSlow), which does, for
// each 32-bit lane i of a 512-bit vector,
//
//	acc[i] += a[2i]·b[2i] + a[2i+1]·b[2i+1]
//
// on bf16 pairs (exact products, f32 sums, denormals flushed to zero):
// one instruction for two k where FMA takes one. The operands stay bf16
// when packed, by pairs of k (kc odd: the last pair's second element 0):
//
//   - B's sliver of NR columns holds, for each pair (k, k+1), 2·NR bf16
//     interleaved: B[k, j] at 2j, B[k+1, j] at 2j+1; a 512-bit load gives
//     16 columns of the pair. Sliver jr/NR lies at jr·kpad elements of
//     the panel (kpad: kc rounded up to even).
//   - A's pair (A[i, k], A[i, k+1]) is one 32-bit value, broadcast to
//     the 16 lanes. A stored M×K keeps its rows, padded to dpLDA pairs;
//     A stored K×M is packed into slivers of MR pairs per pair of k (at
//     ir·kpad elements of the block).
//
// The micro-kernel steps through the pairs: for each of MR rows one
// broadcast of A's pair and a vdpbf16ps with each of the NR/16 vectors of
// B. The tile's store (alpha, bias, residuals, accumulation) is f32's.
// With bands, a tile's k range is widened to whole pairs: the k added lie
// in the K block or its zero pad, where the band's zeros make them add
// nothing.

// hasAVX512BF16 reports whether t's code may use vdpbf16ps on 512-bit
// vectors.
func (t *Target) hasAVX512BF16() bool {
	return t.x86() && t.Vec == 16 && slices.Contains(t.Features, "avx512_bf16")
}

// dpbf16 reports whether the kernel of s multiplies by vdpbf16ps: A and
// B bf16 on a target with AVX-512 BF16, when Blocking.BF16Dot asks for it
// or, by default, when the target's CPU is not one of dpSlow.
func (s DotSpec) dpbf16() bool {
	t := s.target()
	if s.aType() != ir.BF16 || s.bType() != ir.BF16 || !t.hasAVX512BF16() {
		return false
	}
	if s.Blocking != nil && s.Blocking.BF16Dot != 0 {
		return s.Blocking.BF16Dot > 0
	}
	return !dpSlow[t.Tune]
}

// dpSlow are the CPUs with AVX-512 BF16 on which vdpbf16ps computes fewer
// flops than FMA: on Sapphire Rapids it is 4 uops on the two FMA ports,
// one each 2 cycles (measured, as LLVM's scheduling model has it; LLVM
// models Emerald and Granite Rapids alike), 32 flops a cycle where f32's
// FMA does 64: the widening kernel measured 1.8 times as fast
// (BenchmarkDotHalf). Elsewhere (Zen 4 and 5, Cooper Lake) vdpbf16ps is
// taken to issue as FMA does, twice its flops (not measured here).
var dpSlow = map[string]bool{
	"sapphirerapids": true, "emeraldrapids": true, "graniterapids": true, "graniterapids-d": true,
}

// dpLDA is the row stride, in pairs, of a packed A stored M×K: at least
// the KC block's pairs, its rows spread over the L1's sets (gemmLDA).
func dpLDA(p DotBlocking) int64 { return int64(gemmLDA(p.MR, (p.KC+1)/2)) }

// dpPackFloats are the sizes of the packed B panel and A block, in 4-byte
// units (two bf16), the panel rounded up to 64 bytes.
func (s DotSpec) dpPackFloats(p DotBlocking) (b, a int64) {
	kpad := int64(p.KC + p.KC&1)
	b = (kpad*int64(p.NC)/2 + 15) / 16 * 16
	if s.TransA {
		return b, int64(p.MC) * kpad / 2
	}
	return b, int64(p.MC) * dpLDA(p)
}

// bfloatType is LLVM's bfloat, which llir does not have.
type bfloatType struct{}

func (bfloatType) String() string          { return "bfloat" }
func (bfloatType) LLString() string        { return "bfloat" }
func (bfloatType) Name() string            { return "" }
func (bfloatType) SetName(string)          {}
func (bfloatType) Equal(u types.Type) bool { _, ok := u.(bfloatType); return ok }

var (
	dpI16  = types.NewPointer(types.I16)
	dpI32  = types.NewPointer(types.I32)
	dpBF32 = types.NewVector(32, bfloatType{})
	dpV16  = types.NewVector(16, types.I16)
	dpV32  = types.NewVector(32, types.I16)
	dpW16  = types.NewVector(16, types.I32)
)

// dpbf16ps returns acc + the pairwise products of the bf16 pairs of b and
// a (both <16 x i32>, bitcast to <32 x bfloat>).
func (g *gemmGen) dpbf16ps(acc, b, a value.Value) value.Value {
	f := g.intrinsic("llvm.x86.avx512bf16.dpbf16ps.512", g.vec(), g.vec(), dpBF32, dpBF32)
	return g.cur.NewCall(f, acc, g.cur.NewBitCast(b, dpBF32), g.cur.NewBitCast(a, dpBF32))
}

// dpStep does one pair of k, kp, of the micro-kernel of mr rows and nv
// vectors of B: acc += A[:, pair] ⊗ B[pair, :]. a is the A sliver (i32
// pairs at a + kp·sk + i·si), b the B sliver (i16).
func (g *gemmGen) dpStep(a, b, kp value.Value, mr, nv int, acc []value.Value) []value.Value {
	sk, si := g.dpAStrides()
	bv := make([]value.Value, nv)
	brow := g.gepI(types.I16, b, g.mulc(kp, int64(2*g.p.NR)))
	for v := range bv {
		q := g.cur.NewBitCast(g.gepI(types.I16, brow, gemmI64(int64(32*v))), types.NewPointer(dpW16))
		l := g.cur.NewLoad(dpW16, q)
		l.Align = 64
		bv[v] = l
	}
	acol := g.gepI(types.I32, a, g.mulc(kp, sk))
	out := make([]value.Value, len(acc))
	for i := 0; i < mr; i++ {
		l := g.cur.NewLoad(types.I32, g.gepI(types.I32, acol, gemmI64(int64(i)*si)))
		l.Align = 4
		ins := g.cur.NewInsertElement(constant.NewUndef(dpW16), l, constant.NewInt(types.I32, 0))
		av := g.cur.NewShuffleVector(ins, constant.NewUndef(dpW16), constant.NewZeroInitializer(types.NewVector(16, types.I32)))
		for v := 0; v < nv; v++ {
			out[i*nv+v] = g.dpbf16ps(acc[i*nv+v], bv[v], av)
		}
	}
	return out
}

// dpAStrides are the micro-kernel's strides of A's pairs, in pairs: pair
// (i, kp) at a + kp·sk + i·si.
func (g *gemmGen) dpAStrides() (sk, si int64) {
	if g.s.TransA {
		return int64(g.p.MR), 1
	}
	return 1, dpLDA(g.p)
}

// gepI is gep on a buffer of integers of type t.
func (g *gemmGen) gepI(t types.Type, p, idx value.Value) value.Value {
	if c, ok := idx.(*constant.Int); ok && c.X.Sign() == 0 {
		return p
	}
	e := g.cur.NewGetElementPtr(t, p, idx)
	e.InBounds = true
	return e
}

// dpMask is the mask of the first n lanes of a vector of len lanes.
func dpMask(len, n int) constant.Constant {
	e := make([]constant.Constant, len)
	for i := range e {
		e[i] = constant.NewBool(i < n)
	}
	return constant.NewVector(types.NewVector(uint64(len), types.I1), e...)
}

// loadH loads the first lanes (≤ 0: none, zeros) of 16 bf16 at p.
func (g *gemmGen) loadH(p value.Value, lanes int) value.Value {
	pt := types.NewPointer(dpV16)
	switch {
	case lanes <= 0:
		return constant.NewZeroInitializer(dpV16)
	case lanes >= 16:
		l := g.cur.NewLoad(dpV16, g.cur.NewBitCast(p, pt))
		l.Align = 2
		return l
	}
	f := g.intrinsic("llvm.masked.load.v16i16.p0v16i16", dpV16, pt, types.I32, types.NewVector(16, types.I1), dpV16)
	return g.cur.NewCall(f, g.cur.NewBitCast(p, pt), constant.NewInt(types.I32, 2), dpMask(16, lanes), constant.NewZeroInitializer(dpV16))
}

// storeH stores the first lanes of x, 32 bf16, at p, aligned to align.
func (g *gemmGen) storeH(x, p value.Value, lanes, align int) {
	pt := types.NewPointer(dpV32)
	if lanes >= 32 {
		s := g.cur.NewStore(x, g.cur.NewBitCast(p, pt))
		s.Align = llir.Align(align)
		return
	}
	f := g.intrinsic("llvm.masked.store.v32i16.p0v32i16", types.Void, dpV32, pt, types.I32, types.NewVector(32, types.I1))
	g.cur.NewCall(f, x, g.cur.NewBitCast(p, pt), constant.NewInt(types.I32, int64(align)), dpMask(32, lanes))
}

// interleave returns the 32 bf16 x[0], y[0], x[1], y[1], ... of two
// vectors of 16: the pairs of rows x (k) and y (k+1).
func (g *gemmGen) interleave(x, y value.Value) value.Value {
	e := make([]constant.Constant, 32)
	for i := range e {
		e[i] = constant.NewInt(types.I32, int64(i/2+16*(i%2)))
	}
	return g.cur.NewShuffleVector(x, y, constant.NewVector(types.NewVector(32, types.I32), e...))
}

// dpKPad is kc rounded up to even.
func (g *gemmGen) dpKPad(kc value.Value) value.Value {
	return g.add(kc, g.cur.NewAnd(kc, gemmI64(1)))
}

// dpRange returns the A and B slivers and the number of pairs for the k
// range [off, off+kn) of the K block of kc (kRange): the pairs from
// off's to the one holding off+kn−1, all (kc+1)/2 of them without bands.
func (g *gemmGen) dpRange(ap, bp, off, kn, kc value.Value) (a, b, pairs value.Value) {
	if kn == kc {
		return ap, bp, g.cur.NewAShr(g.addc(kc, 1), gemmI64(1))
	}
	p0 := g.cur.NewAShr(off, gemmI64(1))
	p1 := g.cur.NewAShr(g.addc(g.add(off, kn), 1), gemmI64(1))
	sk, _ := g.dpAStrides()
	a = g.gepI(types.I32, ap, g.mulc(p0, sk))
	b = g.gepI(types.I16, bp, g.mulc(p0, int64(2*g.p.NR)))
	return a, b, g.sub(p1, p0)
}
