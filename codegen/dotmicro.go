package codegen

import (
	"fmt"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// aStrides returns the micro-kernel's addressing of A: element (i, k) of
// the sliver at a + k·sk + i·si.
func (g *gemmGen) aStrides() (sk, si int64) {
	s, p := g.s, g.p
	switch {
	case p.PackA > 0 && s.TransA:
		return int64(p.MR), 1
	case p.PackA > 0:
		return 1, int64(gemmLDA(p.MR, p.KC))
	case s.TransA:
		return g.lda, 1
	}
	return 1, g.lda
}

// bStride is the distance in floats between the micro-kernel's B rows:
// NR packed (aligned, zero padded), or ldb read in place (the last vector
// masked).
func (g *gemmGen) bStride() int64 {
	if g.p.PackB > 0 {
		return int64(g.p.NR)
	}
	return g.ldb
}

// kRange returns the part of the K block [pc, pc+kc) that the tile with
// first row i0 and first column j0 needs, as an offset from pc and a
// length: all of it without bands; with them, the k where the tile's rows
// of A and columns of B may be nonzero. With BandC, live tells whether
// some of the tile lies inside it (else nil): a tile wholly outside is
// not computed. The tile is taken as MR×NR (an edge tile's range is a
// superset of what it needs).
func (g *gemmGen) kRange(pc, kc, i0, j0 value.Value) (off, n, live value.Value) {
	s, p := g.s, g.p
	if !s.BandA.On && !s.BandB.On && !s.BandC.On {
		return gemmI64(0), kc, nil
	}
	k0, k1 := pc, g.add(pc, kc)
	iLast, jLast := g.addc(i0, int64(p.MR-1)), g.addc(j0, int64(p.NR-1))
	// A: k ≤ i − D for some row i (lower), or k ≥ i − D (upper).
	if a := s.BandA; a.On && !a.Upper {
		k1 = g.min(k1, g.addc(iLast, int64(1-a.D)))
	} else if a.On {
		k0 = g.max(k0, g.addc(i0, int64(-a.D)))
	}
	// B: k ≥ n + D for some column n (lower), or k ≤ n + D (upper).
	if b := s.BandB; b.On && !b.Upper {
		k0 = g.max(k0, g.addc(j0, int64(b.D)))
	} else if b.On {
		k1 = g.min(k1, g.addc(jLast, int64(b.D+1)))
	}
	// C: some (i, j) of the tile with i − j ≥ D (lower), or ≤ D (upper).
	if c := s.BandC; c.On && !c.Upper {
		live = g.cur.NewICmp(enum.IPredSGE, g.sub(iLast, j0), gemmI64(int64(c.D)))
	} else if c.On {
		live = g.cur.NewICmp(enum.IPredSLE, g.sub(i0, jLast), gemmI64(int64(c.D)))
	}
	none := g.cur.NewICmp(enum.IPredSLE, k1, k0)
	n = g.cur.NewSelect(none, gemmI64(0), g.sub(k1, k0))
	off = g.cur.NewSelect(none, gemmI64(0), g.sub(k0, pc))
	return off, n, live
}

// microFor emits the micro-kernel for a tile of mr rows and nr columns:
//
//	micro(a, b, c, [bias,] residuals..., kc, first)
//
// a: the A sliver (addressed per the plan), b: the packed B sliver, c: the
// tile's corner in C, bias: the bias at the tile's first column, the
// residuals' tiles (addressed as C); first tells whether this is the first
// K block (store rather than add; the bias and residuals are added then).
func (g *gemmGen) microFor(mr, nr int) {
	s, p := g.s, g.p
	key := [2]int{mr, nr}
	if g.micro[key] != nil {
		return
	}
	sk, si := g.aStrides()
	// The micro-kernel depends only on these: kernels of one module
	// share it (by name, a hash of them).
	bStride, bPacked := g.bStride(), p.PackB > 0
	hashed := fmt.Sprintf("%d %d %d %v %d %d %d %v %v %v %d %q", mr, nr, bStride, bPacked, sk, si, g.ldc, s.Bias, s.Accumulate, s.Alpha, p.KU, g.t.codeKey())
	if s.Residuals > 0 {
		hashed += fmt.Sprintf(" residuals %d", s.Residuals)
	}
	if g.dp {
		sk, si = g.dpAStrides()
		hashed += fmt.Sprintf(" vdpbf16ps %d %d", sk, si)
	}
	name := fmt.Sprintf("xlc.gemm.micro.%dx%d.%s", mr, nr, gemmHash(hashed))
	if f := funcIn(g.mod, name); f != nil {
		g.micro[key] = f
		return
	}
	names := []string{"a", "b", "c"}
	if s.Bias {
		names = append(names, "bias")
	}
	for i := range s.Residuals {
		names = append(names, fmt.Sprintf("r%d", i))
	}
	var params []*llir.Param
	for i, n := range names {
		typ := types.Type(gemmPF32)
		if g.dp && i < 2 { // A's pairs, B's bf16
			typ = []types.Type{dpI32, dpI16}[i]
		}
		q := llir.NewParam(n, typ)
		q.Attrs = append(q.Attrs, enum.ParamAttrNoAlias, enum.ParamAttrNoCapture)
		params = append(params, q)
	}
	kcP, firstP := llir.NewParam("kc", types.I64), llir.NewParam("first", types.I1)
	f := g.mod.NewFunc(name, types.Void, append(params, kcP, firstP)...)
	f.Linkage = enum.LinkageInternal
	f.FuncAttrs = g.funcAttrs()
	f.FuncAttrs = append(f.FuncAttrs, enum.FuncAttrNoInline)
	g.micro[key] = f
	g.f, g.nblk = f, 0
	g.cur = g.block("entry")
	a, b, c := params[0], params[1], params[2]
	vw := g.t.Vec
	nv := (nr + vw - 1) / vw

	zero := constant.NewZeroInitializer(g.vec())
	acc := make([]value.Value, mr*nv)
	for i := range acc {
		acc[i] = zero
	}
	// step does one k: acc += A[:, k] ⊗ B[k, :].
	step := func(k value.Value, acc []value.Value) []value.Value {
		if g.dp { // k counts pairs
			return g.dpStep(a, b, k, mr, nv, acc)
		}
		bv := make([]value.Value, nv)
		brow := g.gep(b, g.mulc(k, bStride))
		for v := range bv {
			q := g.gep(brow, gemmI64(int64(vw*v)))
			switch lanes := nr - vw*v; {
			case bPacked:
				bv[v] = g.loadV(q, 4*vw)
			case lanes >= vw:
				bv[v] = g.loadV(q, 4)
			default:
				bv[v] = g.maskedLoad(q, g.mask(lanes))
			}
		}
		acol := g.gep(a, g.mulc(k, sk))
		out := make([]value.Value, len(acc))
		for i := 0; i < mr; i++ {
			av := g.splat(g.loadF(g.gep(acol, gemmI64(int64(i)*si))))
			for v := 0; v < nv; v++ {
				out[i*nv+v] = g.fma(av, bv[v], acc[i*nv+v])
			}
		}
		return out
	}
	// kloop runs k from `from` while k < to, by ku steps per iteration,
	// carrying the accumulators; it returns the final k and accumulators.
	kloop := func(name string, from, to value.Value, ku int, acc []value.Value) (value.Value, []value.Value) {
		pre := g.cur
		head, body, exit := g.block(name+".head"), g.block(name+".body"), g.block(name+".exit")
		pre.NewBr(head)
		g.cur = head
		k := head.NewPhi(llir.NewIncoming(from, pre))
		phis := make([]*llir.InstPhi, len(acc))
		cur := make([]value.Value, len(acc))
		for i := range acc {
			phis[i] = head.NewPhi(llir.NewIncoming(acc[i], pre))
			cur[i] = phis[i]
		}
		head.NewCondBr(head.NewICmp(enum.IPredSLT, k, to), body, exit)
		g.cur = body
		for u := 0; u < ku; u++ {
			cur = step(g.addc(k, int64(u)), cur)
		}
		k.Incs = append(k.Incs, llir.NewIncoming(g.addc(k, int64(ku)), g.cur))
		for i := range phis {
			phis[i].Incs = append(phis[i].Incs, llir.NewIncoming(cur[i], g.cur))
		}
		g.cur.NewBr(head)
		g.cur = exit
		out := make([]value.Value, len(phis))
		for i := range phis {
			out[i] = phis[i]
		}
		return k, out
	}
	kmain := value.Value(kcP)
	if p.KU > 1 {
		kmain = g.sub(kcP, g.cur.NewSRem(kcP, gemmI64(int64(p.KU))))
		var k value.Value
		k, acc = kloop("kmain", gemmI64(0), kmain, p.KU, acc)
		kmain = k
		_, acc = kloop("krem", kmain, kcP, 1, acc)
	} else {
		_, acc = kloop("k", gemmI64(0), kcP, 1, acc)
	}

	// Store the tile.
	alpha := s.Alpha
	if alpha == 0 {
		alpha = 1
	}
	var alphaV value.Value
	if alpha != 1 {
		alphaV = g.splat(constant.NewFloat(gemmF32, float64(alpha)))
	}
	store := func(isFirst bool) {
		for i := 0; i < mr; i++ {
			crow := g.gep(c, gemmI64(int64(i)*g.ldc))
			for v := 0; v < nv; v++ {
				lanes := min(vw, nr-vw*v)
				x := acc[i*nv+v]
				if alphaV != nil {
					x = g.cur.NewFMul(x, alphaV)
				}
				cp := g.gep(crow, gemmI64(int64(vw*v)))
				load := func(q value.Value) value.Value {
					if lanes == vw {
						return g.loadV(q, 4)
					}
					return g.maskedLoad(q, g.mask(lanes))
				}
				if isFirst && s.Bias {
					x = g.cur.NewFAdd(x, load(g.gep(params[3], gemmI64(int64(vw*v)))))
				}
				if isFirst {
					for _, r := range params[len(params)-s.Residuals:] {
						x = g.cur.NewFAdd(x, load(g.gep(r, gemmI64(int64(i)*g.ldc+int64(vw*v)))))
					}
				}
				if !isFirst || s.Accumulate {
					x = g.cur.NewFAdd(x, load(cp))
				}
				if lanes == vw {
					g.storeV(x, cp, 4)
				} else {
					g.maskedStore(x, cp, g.mask(lanes))
				}
			}
		}
	}
	g.ifElse("store", firstP, func() { store(true) }, func() { store(false) })
	g.cur.NewRet(nil)
}
