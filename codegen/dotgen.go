package codegen

import (
	"fmt"
	"hash/fnv"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// The emitter of dot kernels. The kernel's body runs Goto's loop nest on
// the rows of C its range covers, one batch at a time:
//
//	for jc in 0..N step NC          (columns of the B panel)
//	  for pc in 0..K step KC        (depth of the panel)
//	    pack B[pc:pc+kc, jc:jc+nc] into slivers of NR columns (zero padded)
//	    for ic in r0..r1 step MC    (rows of the A block)
//	      [pack A[ic:ic+mc, pc:pc+kc] into slivers of MR rows]
//	      for jr in 0..nc step NR
//	        for ir in 0..mc step MR
//	          micro-kernel: C tile (MR×NR) (+)= A sliver · B sliver
//
// The micro-kernel holds the tile in MR·NR/Vec vector accumulators (Vec
// the target's f32 lanes), loads NR/Vec vectors of B and broadcasts MR
// floats of A for each k, with llvm.fma (a multiply and an add where the
// target has no FMA; vdpbf16ps on pairs of k of bf16 operands where the
// target has AVX-512 BF16: dotbf16.go). Since shapes are static, the edge
// tiles (M mod MR rows, N mod NR columns, the last with a lane mask) get
// micro-kernels of their own.

var (
	gemmF32  = types.Float
	gemmPF32 = types.NewPointer(types.Float)
)

// gemmHash is a short hash naming the functions that kernels share.
func gemmHash(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return fmt.Sprintf("%016x", h.Sum64())
}

func gemmI64(v int64) *constant.Int { return constant.NewInt(types.I64, v) }

type gemmGen struct {
	mod  *llir.Module
	s    DotSpec
	p    DotBlocking
	name string
	t    *Target
	// lda, ldb, ldc are the leading dimensions of A, B and C (DotSpec.lds).
	lda, ldb, ldc int64
	// dp tells that the kernel multiplies by vdpbf16ps (dotbf16.go).
	dp bool

	f    *llir.Func
	cur  *llir.Block
	nblk int

	micro map[[2]int]*llir.Func // by rows, columns
}

// intrinsic returns the declaration of an intrinsic or C function, adding
// it to the module once.
func (g *gemmGen) intrinsic(name string, ret types.Type, params ...types.Type) *llir.Func {
	return declareIn(g.mod, name, ret, params...)
}

// vec is the target's vector of floats, pvec a pointer to one.
func (g *gemmGen) vec() *types.VectorType   { return types.NewVector(uint64(g.t.Vec), types.Float) }
func (g *gemmGen) pvec() *types.PointerType { return types.NewPointer(g.vec()) }

// fma returns a·b + c on vectors: fused where the target has an FMA.
func (g *gemmGen) fma(a, b, c value.Value) value.Value {
	if !g.t.FMA {
		return g.cur.NewFAdd(g.cur.NewFMul(a, b), c)
	}
	f := g.intrinsic(fmt.Sprintf("llvm.fma.v%df32", g.t.Vec), g.vec(), g.vec(), g.vec(), g.vec())
	return g.cur.NewCall(f, a, b, c)
}

func (g *gemmGen) maskedLoad(p value.Value, mask constant.Constant) value.Value {
	name := fmt.Sprintf("llvm.masked.load.v%df32.p0v%[1]df32", g.t.Vec)
	mt := types.NewVector(uint64(g.t.Vec), types.I1)
	f := g.intrinsic(name, g.vec(), g.pvec(), types.I32, mt, g.vec())
	return g.cur.NewCall(f, g.cur.NewBitCast(p, g.pvec()), constant.NewInt(types.I32, 4), mask, constant.NewZeroInitializer(g.vec()))
}

func (g *gemmGen) maskedStore(v, p value.Value, mask constant.Constant) {
	name := fmt.Sprintf("llvm.masked.store.v%df32.p0v%[1]df32", g.t.Vec)
	mt := types.NewVector(uint64(g.t.Vec), types.I1)
	f := g.intrinsic(name, types.Void, g.vec(), g.pvec(), types.I32, mt)
	g.cur.NewCall(f, v, g.cur.NewBitCast(p, g.pvec()), constant.NewInt(types.I32, 4), mask)
}

// mask is the lane mask of the first n lanes of a vector.
func (g *gemmGen) mask(n int) constant.Constant {
	e := make([]constant.Constant, g.t.Vec)
	for i := range e {
		e[i] = constant.NewBool(i < n)
	}
	return constant.NewVector(types.NewVector(uint64(g.t.Vec), types.I1), e...)
}

// funcAttrs are the target's CPU and tuning and what lets a function use
// vectors of the target's width.
func (g *gemmGen) funcAttrs() []llir.FuncAttribute {
	as := append(g.t.funcAttrs(), g.t.lower().vectorAttrs(g.t.Vec)...)
	if g.dp {
		as = append(as, llir.AttrPair{Key: "target-features", Value: "+avx512bf16"})
	}
	return append(as, enum.FuncAttrNoUnwind)
}

func (g *gemmGen) block(name string) *llir.Block {
	g.nblk++
	return g.f.NewBlock(fmt.Sprintf("%s.%d", name, g.nblk))
}

func (g *gemmGen) gep(p value.Value, idx value.Value) value.Value {
	if c, ok := idx.(*constant.Int); ok && c.X.Sign() == 0 {
		return p
	}
	e := g.cur.NewGetElementPtr(gemmF32, p, idx)
	e.InBounds = true
	return e
}

func (g *gemmGen) add(a, b value.Value) value.Value { return g.cur.NewAdd(a, b) }
func (g *gemmGen) sub(a, b value.Value) value.Value { return g.cur.NewSub(a, b) }
func (g *gemmGen) mul(a, b value.Value) value.Value { return g.cur.NewMul(a, b) }
func (g *gemmGen) addc(a value.Value, c int64) value.Value {
	if c == 0 {
		return a
	}
	return g.cur.NewAdd(a, gemmI64(c))
}
func (g *gemmGen) mulc(a value.Value, c int64) value.Value {
	if c == 1 {
		return a
	}
	return g.cur.NewMul(a, gemmI64(c))
}
func (g *gemmGen) min(a, b value.Value) value.Value {
	return g.cur.NewSelect(g.cur.NewICmp(enum.IPredSLT, a, b), a, b)
}
func (g *gemmGen) max(a, b value.Value) value.Value {
	return g.cur.NewSelect(g.cur.NewICmp(enum.IPredSGT, a, b), a, b)
}
func (g *gemmGen) le(a, b value.Value) value.Value { return g.cur.NewICmp(enum.IPredSLE, a, b) }

// loop emits `for i := from; i < to; i = body(i) {}`; body returns the next
// value of i and leaves g.cur at the end of the iteration.
func (g *gemmGen) loop(name string, from, to value.Value, body func(i value.Value) value.Value) {
	pre := g.cur
	head, bodyB, exit := g.block(name+".head"), g.block(name+".body"), g.block(name+".exit")
	pre.NewBr(head)
	g.cur = head
	i := head.NewPhi(llir.NewIncoming(from, pre))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, i, to), bodyB, exit)
	g.cur = bodyB
	next := body(i)
	i.Incs = append(i.Incs, llir.NewIncoming(next, g.cur))
	g.cur.NewBr(head)
	g.cur = exit
}

// loopStep is loop with a constant step.
func (g *gemmGen) loopStep(name string, from, to value.Value, step int64, body func(i value.Value)) {
	g.loop(name, from, to, func(i value.Value) value.Value {
		body(i)
		return g.addc(i, step)
	})
}

// ifElse emits if cond { then() } else { els() }; els may be nil.
func (g *gemmGen) ifElse(name string, cond value.Value, then, els func()) {
	tb, eb, join := g.block(name+".then"), g.block(name+".else"), g.block(name+".join")
	g.cur.NewCondBr(cond, tb, eb)
	g.cur = tb
	then()
	g.cur.NewBr(join)
	g.cur = eb
	if els != nil {
		els()
	}
	g.cur.NewBr(join)
	g.cur = join
}

func (g *gemmGen) loadF(p value.Value) value.Value {
	l := g.cur.NewLoad(gemmF32, p)
	l.Align = 4
	return l
}

func (g *gemmGen) storeF(v, p value.Value) {
	s := g.cur.NewStore(v, p)
	s.Align = 4
}

func (g *gemmGen) loadV(p value.Value, align int) value.Value {
	l := g.cur.NewLoad(g.vec(), g.cur.NewBitCast(p, g.pvec()))
	l.Align = llir.Align(align)
	return l
}

func (g *gemmGen) storeV(v, p value.Value, align int) {
	s := g.cur.NewStore(v, g.cur.NewBitCast(p, g.pvec()))
	s.Align = llir.Align(align)
}

func (g *gemmGen) splat(x value.Value) value.Value {
	v := g.cur.NewInsertElement(constant.NewUndef(g.vec()), x, constant.NewInt(types.I32, 0))
	return g.cur.NewShuffleVector(v, constant.NewUndef(g.vec()), constant.NewZeroInitializer(types.NewVector(uint64(g.t.Vec), types.I32)))
}

func (g *gemmGen) emit() {
	s, p := g.s, g.p
	g.micro = map[[2]int]*llir.Func{}

	// The body: (A, B, [bias,] residuals..., C, lo, hi), pointers noalias;
	// A and B point to their types' elements, the others to floats.
	names := []string{"a", "b"}
	if s.Bias {
		names = append(names, "bias")
	}
	for i := range s.Residuals {
		names = append(names, fmt.Sprintf("r%d", i))
	}
	names = append(names, "c")
	var params []*llir.Param
	for i, n := range names {
		typ := gemmPF32
		switch i {
		case 0:
			typ = types.NewPointer(dotElem(s.AType))
		case 1:
			typ = types.NewPointer(dotElem(s.BType))
		}
		q := llir.NewParam(n, typ)
		q.Attrs = append(q.Attrs, enum.ParamAttrNoAlias, enum.ParamAttrNoCapture)
		params = append(params, q)
	}
	lo, hi := llir.NewParam("lo", types.I64), llir.NewParam("hi", types.I64)
	body := g.mod.NewFunc(g.name+".body", types.Void, append(params, lo, hi)...)
	body.Linkage = enum.LinkageInternal
	body.FuncAttrs = g.funcAttrs()
	body.FuncAttrs = append(body.FuncAttrs, enum.FuncAttrNoInline)

	// The exported frame: it calls the body with the buffers' pointers.
	g.t.lower().frame(g.mod, g.name, g.funcAttrs()).callBody(body)

	// Micro-kernels, before the body's blocks so that g.f is free.
	mrem, nrem := s.M%p.MR, s.N%p.NR
	g.microFor(p.MR, p.NR)
	if mrem != 0 {
		g.microFor(mrem, p.NR)
	}
	if nrem != 0 {
		g.microFor(p.MR, nrem)
		if mrem != 0 {
			g.microFor(mrem, nrem)
		}
	}

	g.f = body
	g.cur = g.block("entry")
	A, B, C := value.Value(params[0]), value.Value(params[1]), value.Value(params[len(params)-1])
	var bias value.Value
	if s.Bias {
		bias = params[2]
	}
	var res []value.Value
	for _, q := range params[len(params)-1-s.Residuals : len(params)-1] {
		res = append(res, q)
	}
	// The packing buffers: one heap block per call (B's panel, then A's
	// block), 64-byte aligned, freed on return.
	bpackN := int64(p.KC) * int64(p.NC)
	bpackN = (bpackN + 15) / 16 * 16 // keeps A's block 64-byte aligned
	if p.PackB < 0 {
		bpackN = 0
	}
	if g.dp {
		bpackN, _ = s.dpPackFloats(p)
	}
	buf := g.heap(s.PackBytes())
	bpack := value.Value(g.cur.NewBitCast(buf, gemmPF32))
	var apack value.Value
	if p.PackA > 0 {
		apack = g.gep(bpack, gemmI64(bpackN))
	}
	if g.dp { // bf16 panels
		bpack, apack = g.cur.NewBitCast(bpack, dpI16), g.cur.NewBitCast(apack, dpI16)
	}

	bpb := int64((s.M + p.RB - 1) / p.RB) // row blocks per batch and column part
	np := int64(p.NP)
	ncp := int64(s.N) / np // columns per part
	ext := int64(s.Batch) * np * bpb
	// Clamp the range to [0, extent).
	clo := g.cur.NewSelect(g.cur.NewICmp(enum.IPredSLT, lo, gemmI64(0)), gemmI64(0), lo)
	chi := g.min(hi, gemmI64(ext))
	M := int64(s.M)
	dims := s.batchDims()

	g.loop("seg", clo, chi, func(u value.Value) value.Value {
		// Unit u: row block u mod bpb of column part (u / bpb) mod np of
		// batch u / (np·bpb); a segment stays in one part of one batch.
		bq := g.cur.NewSDiv(u, gemmI64(bpb))
		b := value.Value(bq)
		j0, j1 := value.Value(gemmI64(0)), value.Value(gemmI64(int64(s.N)))
		if np > 1 {
			b = g.cur.NewSDiv(bq, gemmI64(np))
			j0 = g.mulc(g.cur.NewSRem(bq, gemmI64(np)), ncp)
			j1 = g.addc(j0, ncp)
		}
		bStart := g.mulc(bq, bpb)
		uend := g.min(chi, g.addc(bStart, bpb))
		r0 := g.mulc(g.sub(u, bStart), int64(p.RB))
		r1 := g.min(gemmI64(M), g.mulc(g.sub(uend, bStart), int64(p.RB)))
		// The batch's offsets: b split into the batch dims' indices,
		// innermost last.
		offA, offB, offC := value.Value(gemmI64(0)), value.Value(gemmI64(0)), value.Value(gemmI64(0))
		rem := value.Value(b)
		for i := len(dims) - 1; i >= 0; i-- {
			d := dims[i]
			idx := rem
			if i > 0 {
				idx = g.cur.NewSRem(rem, gemmI64(int64(d.Size)))
				rem = g.cur.NewSDiv(rem, gemmI64(int64(d.Size)))
			}
			offA = g.add(offA, g.mulc(idx, d.A))
			offB = g.add(offB, g.mulc(idx, d.B))
			offC = g.add(offC, g.mulc(idx, d.C))
		}
		Ab := g.gepT(s.AType, A, offA)
		Bb := g.gepT(s.BType, B, offB)
		Cb := g.gep(C, offC)
		var Rb []value.Value // the residuals, addressed as C
		for _, r := range res {
			Rb = append(Rb, g.gep(r, offC))
		}
		g.loopNest(Ab, Bb, Cb, bias, Rb, bpack, apack, r0, r1, j0, j1)
		return uend
	})
	g.t.lower().release(g.cur, g.intrinsic, buf)
	g.cur.NewRet(nil)
}

// gemmOOMMessage is what a kernel whose packing buffers cannot be
// allocated prints before it aborts.
const gemmOOMMessage = "xlc: out of memory for the dot kernel's packing buffers\n"

// heap emits, in the current block, a request for a 64-byte aligned
// block of bytes and a check: when there is none, the kernel prints
// gemmOOMMessage and stops. It returns the block's i8 pointer.
func (g *gemmGen) heap(bytes int64) value.Value {
	msg := messageIn(g.mod, "xlc.dot.oom.msg", gemmOOMMessage)
	l := g.t.lower()
	p := l.alloc(g.cur, g.intrinsic, gemmI64(bytes), 64)
	isNull := g.cur.NewICmp(enum.IPredEQ, p, constant.NewNull(types.I8Ptr))
	fail, ok := g.block("oom"), g.block("heap.ok")
	g.cur.NewCondBr(isNull, fail, ok)
	ptr := fail.NewGetElementPtr(msg.ContentType, msg, gemmI64(0), gemmI64(0))
	fail.NewCall(failHandler(g.mod, l, g.intrinsic), ptr, gemmI64(int64(len(gemmOOMMessage))))
	fail.NewUnreachable()
	g.cur = ok
	return p
}

// loopNest emits the loop nest for rows [r0, r1) and columns [j0, j1) of
// one batch, whose residuals are res (addressed as C).
func (g *gemmGen) loopNest(A, B, C, bias value.Value, res []value.Value, bpack, apack, r0, r1, j0, j1 value.Value) {
	s, p := g.s, g.p
	M, N, K := int64(s.M), int64(s.N), int64(s.K)
	mrem, nrem := int(M)%p.MR, int(N)%p.NR
	g.loopStep("jc", j0, j1, int64(p.NC), func(jc value.Value) {
		nc := g.min(gemmI64(int64(p.NC)), g.sub(j1, jc))
		g.loopStep("pc", gemmI64(0), gemmI64(K), int64(p.KC), func(pc value.Value) {
			kc := g.min(gemmI64(int64(p.KC)), g.sub(gemmI64(K), pc))
			first := g.cur.NewICmp(enum.IPredEQ, pc, gemmI64(0))
			var kpad value.Value // kc rounded up to even (vdpbf16ps)
			switch {
			case g.dp:
				kpad = g.dpKPad(kc)
				g.packBPairs(B, bpack, pc, kc, jc, nc)
			case p.PackB > 0:
				g.packB(B, bpack, pc, kc, jc, nc)
			}
			g.loopStep("ic", r0, r1, int64(p.MC), func(ic value.Value) {
				mc := g.min(gemmI64(int64(p.MC)), g.sub(r1, ic))
				switch {
				case g.dp:
					g.packAPairs(A, apack, ic, mc, pc, kc)
				case p.PackA > 0:
					g.packA(A, apack, ic, mc, pc, kc)
				}
				g.loopStep("jr", gemmI64(0), nc, int64(p.NR), func(jr value.Value) {
					var bp value.Value
					if g.dp {
						bp = g.gepI(types.I16, bpack, g.mul(jr, kpad))
					} else if p.PackB > 0 {
						bp = g.gep(bpack, g.mul(jr, kc))
					} else {
						bp = g.gep(B, g.add(g.mulc(pc, g.ldb), g.add(jc, jr)))
					}
					var bb value.Value
					if bias != nil {
						bb = g.gep(bias, g.add(jc, jr))
					}
					g.loopStep("ir", gemmI64(0), mc, int64(p.MR), func(ir value.Value) {
						var ap value.Value
						switch {
						case g.dp && s.TransA: // the sliver at ir·kpad bf16
							ap = g.gepI(types.I32, g.cur.NewBitCast(apack, dpI32), g.mul(ir, g.cur.NewAShr(kpad, gemmI64(1))))
						case g.dp:
							ap = g.gepI(types.I32, g.cur.NewBitCast(apack, dpI32), g.mulc(ir, dpLDA(p)))
						case p.PackA > 0 && s.TransA:
							ap = g.gep(apack, g.mul(ir, kc))
						case p.PackA > 0:
							ap = g.gep(apack, g.mulc(ir, int64(gemmLDA(p.MR, p.KC))))
						case s.TransA:
							ap = g.gep(A, g.add(g.mulc(pc, g.lda), g.add(ic, ir)))
						default:
							ap = g.gep(A, g.add(g.mulc(g.add(ic, ir), g.lda), pc))
						}
						cOff := g.add(g.mulc(g.add(ic, ir), g.ldc), g.add(jc, jr))
						cp := g.gep(C, cOff)
						off, kn, live := g.kRange(pc, kc, g.add(ic, ir), g.add(jc, jr))
						if g.dp {
							// Whole pairs: [off, off+kn) widened to even ends.
							ap, bp, kn = g.dpRange(ap, bp, off, kn, kc)
						} else if kn != kc {
							sk, _ := g.aStrides()
							ap = g.gep(ap, g.mulc(off, sk))
							bp = g.gep(bp, g.mulc(off, g.bStride()))
						}
						call := func(mr, nr int) {
							args := []value.Value{ap, bp, cp}
							if bb != nil {
								args = append(args, bb)
							}
							for _, r := range res {
								args = append(args, g.gep(r, cOff))
							}
							g.cur.NewCall(g.micro[[2]int{mr, nr}], append(args, kn, first)...)
						}
						byCols := func(mr int) {
							if nrem == 0 {
								call(mr, p.NR)
								return
							}
							g.ifElse("cols", g.le(g.addc(jr, int64(p.NR)), nc),
								func() { call(mr, p.NR) }, func() { call(mr, nrem) })
						}
						tile := func() {
							if mrem == 0 {
								byCols(p.MR)
								return
							}
							g.ifElse("rows", g.le(g.addc(ir, int64(p.MR)), mc),
								func() { byCols(p.MR) }, func() { byCols(mrem) })
						}
						if live == nil {
							tile()
							return
						}
						g.ifElse("live", live, tile, func() {})
					})
				})
			})
		})
	})
}
