package codegen

import (
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Dropout's draws in the attention kernels: each rng of the callee is
// drawn into a buffer of the call's own, a strip (forward) or a head
// (backward) at a time, before the rows that read it, a Philox block at a
// time (fillRng), and the kernel reads it there (g.ptrs).

// drawsIn returns the rngs of body (dropout's draws in an attention
// kernel).
func drawsIn(body []*ir.Value) []*ir.Value {
	var draws []*ir.Value
	for _, v := range body {
		if v.Op == ir.OpRng {
			draws = append(draws, v)
		}
	}
	return draws
}

// drawBand returns the triangle of the last two axes outside which p,
// the probabilities through dropout, holds a constant whatever the draws
// (a causal mask before the dropout), or nil: the draws there need not be
// drawn when nothing else depends on them but through p.
func drawBand(p *ir.Value) *triangle {
	f, ok := fillTriangle(p)
	r := p.Type.Rank()
	if !ok || r < 2 || !(f.t.A == r-2 && f.t.B == r-1 || f.t.A == r-1 && f.t.B == r-2) {
		return nil
	}
	return &f.t
}

// drawBuffers returns a buffer for each of draws, for elems elements
// each, carved from raw at byte offsets at, set to zero once, so that the
// elements a band leaves undrawn are never read uninitialized (their
// values do not matter).
func (g *kernelBuilder) drawBuffers(draws []*ir.Value, raw value.Value, at []int64, elems int64) []value.Value {
	bufs := make([]value.Value, len(draws))
	for i, d := range draws {
		t := storageType(d.Type.DType)
		bufs[i] = g.b.NewBitCast(g.b.NewGetElementPtr(types.I8, raw, i64c(at[i])), types.NewPointer(t))
		g.forLoop("dzero", i64c(0), i64c(elems), func(e value.Value) {
			g.storeAt(d.Type.DType, zeroValue(d.Type.DType), bufs[i], e)
		})
	}
	return bufs
}

// drawRows stores each of draws' values at rows [r0, r1) (of n each; the
// row axis has sq rows) into its buffer in bufs, and makes the kernel
// read them there: the buffers hold those rows only, addressed as the
// whole tensor. With band, a row's values outside it are not drawn.
func (g *kernelBuilder) drawRows(draws []*ir.Value, bufs []value.Value, r0, r1 value.Value, n, sq int64, band *triangle) {
	if len(draws) == 0 {
		return
	}
	from := g.b.NewMul(r0, i64c(n))
	dsts := make([]value.Value, len(draws))
	for i, d := range draws {
		dsts[i] = g.shifted(storageType(d.Type.DType), bufs[i], from)
		g.ptrs[d] = dsts[i]
	}
	if band == nil {
		to := g.b.NewMul(r1, i64c(n))
		for i, d := range draws {
			g.fillRng(d, dsts[i], from, to)
		}
		return
	}
	clamp := func(x value.Value) value.Value {
		x = g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, x, i64c(0)), i64c(0), x)
		return g.min64(x, i64c(n))
	}
	g.forLoop("drow", r0, r1, func(r value.Value) {
		// Row r is query i; the band keeps i − j ≥ C (lower) or j − i ≥ C.
		q := g.b.NewURem(r, i64c(sq))
		jlo, jhi := value.Value(i64c(0)), value.Value(i64c(n))
		if band.A < band.B {
			jhi = clamp(g.b.NewAdd(g.b.NewSub(q, i64c(int64(band.C))), i64c(1)))
		} else {
			jlo = clamp(g.b.NewAdd(q, i64c(int64(band.C))))
		}
		base := g.b.NewMul(r, i64c(n))
		lo := g.b.NewAdd(base, jlo)
		hi := g.b.NewAdd(base, g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, jhi, jlo), jlo, jhi))
		for i, d := range draws {
			g.fillRng(d, dsts[i], lo, hi)
		}
	})
}

// forget makes the kernel stop reading vs from buffers.
func (g *kernelBuilder) forget(vs []*ir.Value) {
	for _, v := range vs {
		delete(g.ptrs, v)
	}
}

// drawBand is drawBand(a.p) when no other result of the row part reads
// the draws, with the size of the rows' query axis.
func (a *attention) drawBand(draws []*ir.Value) (*triangle, int64) {
	sh := a.p.Type.Shape
	sq := int64(sh[len(sh)-2])
	if len(draws) == 0 {
		return nil, sq
	}
	reads := map[*ir.Value]bool{}
	for _, d := range draws {
		reads[d] = true
	}
	for _, v := range a.rowBody {
		for _, x := range v.Args {
			if reads[x] {
				reads[v] = true
			}
		}
	}
	for _, r := range a.rowResults[1:] {
		if reads[r] {
			return nil, sq
		}
	}
	return drawBand(a.p), sq
}
