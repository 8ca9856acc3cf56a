package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A head's query strips in the flash backward are shared by groups
// blocks, enough for about GPUGradBlocks blocks in all (two an SM of an
// H100), each adding its strips' shares of dV and dK into partial sums of
// its own in global memory, at most gradSumsBytes of them for the kernel;
// the block that finishes a head last folds them in group order. Tests
// lower GPUGradBlocks to have groups of several strips.
var GPUGradBlocks int64 = 256

const gradSumsBytes = 512 << 20

// sums is how the flash backward's blocks add up a head's dV and dK:
// groups blocks a head (1: one block owns the head and adds into the
// results), each taking every groups-th strip from grp's into its partial
// sums in part (per floats a head and group, each sum at its offset at),
// counting the head's finished groups in count (flag: this block's count
// was the last).
type sums struct {
	groups, per int64
	at          map[int]int64 // by the gradient's index
	grp         value.Value
	part        value.Value // f32
	count, flag value.Value
}

// planGroups chooses the groups of the heads' strips strips and lays out
// their partial sums.
func (k *flashGrad) planGroups(heads, strips int64) {
	g := k.g
	k.at = map[int]int64{}
	for _, gr := range k.grads {
		if gr.sums {
			k.at[gr.index] = k.per
			k.per += int64(gr.gd.spec.M) * int64(gr.gd.spec.N)
		}
	}
	k.groups = min(strips, max(1, (GPUGradBlocks+heads-1)/heads))
	for k.groups > 1 && heads*k.groups*k.per*4 > gradSumsBytes {
		k.groups--
	}
	if k.groups == 1 {
		return
	}
	k.part = g.b.NewBitCast(g.moduleScratch("xlc.attn.sums", heads*k.groups*k.per*4), types.NewPointer(types.Float))
	k.count = g.globalScratch(types.I32, heads)
	k.flag = g.sharedArray(types.I32, 1)
}

// sumAt is where the unit's share of gradient gr's element (m, n) of
// the head (an M×N product) is added: its partial sum's, or with one
// group the result's.
func (k *flashGrad) sumAt(gr gpuGrad, m, n value.Value, M, N int64) (p, at value.Value) {
	g := k.g
	if k.groups == 1 {
		return g.out, g.rootIndex(gr.gd, g.productIndex(k.bt, m, n, M, N))
	}
	unit := g.b.NewAdd(g.b.NewMul(k.bt, i64c(k.groups)), k.grp)
	at = g.b.NewAdd(g.b.NewMul(unit, i64c(k.per)), i64c(k.at[gr.index]))
	return k.part, g.b.NewAdd(at, g.b.NewAdd(g.b.NewMul(m, i64c(N)), n))
}

// zeroSums zeroes what the unit's strips add to (sumAt) before they do.
func (k *flashGrad) zeroSums() {
	g := k.g
	for _, gr := range k.grads {
		if !gr.sums {
			continue
		}
		M, N := int64(gr.gd.spec.M), int64(gr.gd.spec.N)
		g.withResults([]*ir.Value{k.a.grads[gr.index].root}, g.outs[gr.index:gr.index+1], func() {
			g.strideLoop("zsum", g.tid(), i64c(M*N), i64c(int64(g.threads)), func(e value.Value) {
				p, at := k.sumAt(gr, g.b.NewUDiv(e, i64c(N)), g.b.NewURem(e, i64c(N)), M, N)
				g.storeAt(ir.F32, fconst(types.Float, 0), p, at)
			})
		})
	}
	g.barrier()
}

// addSums adds the strip's share of a sum over the query rows (dV, dK)
// to the key tile's rows (sumAt).
func (k *flashGrad) addSums(gr gpuGrad, n0 value.Value) {
	g, s := k.g, gr.gd.spec
	_, offB := g.batchOffsets(s, k.bt)
	gbm, gbn := gr.tl.tile()
	Mk, Nd := int64(s.M), int64(s.N)
	end := g.min64(g.b.NewAdd(n0, i64c(k.bn)), i64c(Mk))
	for r0 := int64(0); r0 < k.bn; r0 += gbm {
		mt := g.b.NewAdd(n0, i64c(r0))
		for n3 := int64(0); n3 < Nd; n3 += gbn {
			kl, kh, live := g.bandRange(s, mt, i64c(n3), gbm, gbn)
			kl, kh = g.kWithin(kl, kh, live, k.m0, k.bm)
			g.withResults([]*ir.Value{k.a.grads[gr.index].root}, g.outs[gr.index:gr.index+1], func() {
				gr.tl.product(i64c(0), offB, mt, i64c(n3), kl, kh, func(m, n, x value.Value) {
					in := g.b.NewAnd(g.b.NewICmp(enum.IPredSLT, m, end), g.b.NewICmp(enum.IPredSLT, n, i64c(Nd)))
					g.ifThen("sadd", in, func() {
						p, at := k.sumAt(gr, m, n, Mk, Nd)
						g.storeAt(ir.F32, g.b.NewFAdd(g.loadAt(ir.F32, p, at), x), p, at)
					})
				})
			})
		}
	}
}

// foldSums, with several groups a head, counts the unit's group as done;
// the block that counts a head's last group adds the groups' partial
// sums, in group order, into the results and resets the count for the
// next launch.
func (k *flashGrad) foldSums() {
	g := k.g
	if k.groups == 1 {
		return
	}
	tid := g.tid()
	isTid0 := g.b.NewICmp(enum.IPredEQ, tid, i64c(0))
	// Every thread's partial sums before the count that publishes them.
	g.threadFence()
	g.barrier()
	cnt := g.b.NewGetElementPtr(types.I32, k.count, k.bt)
	g.ifThen("gcount", isTid0, func() {
		old := g.b.NewAtomicRMW(enum.AtomicOpAdd, cnt, i32c(1), enum.AtomicOrderingSequentiallyConsistent)
		g.b.NewStore(g.b.NewZExt(g.b.NewICmp(enum.IPredEQ, old, i32c(k.groups-1)), types.I32), k.flag)
	})
	g.barrier()
	g.ifThen("glast", g.b.NewICmp(enum.IPredNE, g.b.NewLoad(types.I32, k.flag), i32c(0)), func() {
		g.threadFence()
		for _, gr := range k.grads {
			if !gr.sums {
				continue
			}
			M, N := int64(gr.gd.spec.M), int64(gr.gd.spec.N)
			head := g.b.NewAdd(g.b.NewMul(g.b.NewMul(k.bt, i64c(k.groups)), i64c(k.per)), i64c(k.at[gr.index]))
			g.withResults([]*ir.Value{k.a.grads[gr.index].root}, g.outs[gr.index:gr.index+1], func() {
				g.strideLoop("gfold", tid, i64c(M*N), i64c(int64(g.threads)), func(e value.Value) {
					sum := value.Value(fconst(types.Float, 0))
					for q := int64(0); q < k.groups; q++ {
						// Another block's writes: past the L1.
						ld := g.b.NewLoad(types.Float, g.b.NewGetElementPtr(types.Float, k.part, g.b.NewAdd(head, g.b.NewAdd(e, i64c(q*k.per)))))
						ld.Volatile = true
						sum = g.b.NewFAdd(sum, ld)
					}
					at := g.rootIndex(gr.gd, g.productIndex(k.bt, g.b.NewUDiv(e, i64c(N)), g.b.NewURem(e, i64c(N)), M, N))
					g.storeAt(ir.F32, sum, g.out, at)
				})
			})
		}
		g.ifThen("greset", isTid0, func() { g.b.NewStore(i32c(0), cnt).Volatile = true })
	})
}
