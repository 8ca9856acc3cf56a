package codegen

import (
	"slices"

	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// Dropout's draws in the attention kernels: each rng of the callee is
// drawn into a buffer of the call's own, a strip (forward) or a head
// (backward) at a time, before the rows that read it, a Philox block at a
// time (fillRng), and the kernel reads it there (g.ptrs). An rng that
// only a comparison with a constant reads (dropout's u ≥ rate) is kept as
// that comparison's bools instead: a quarter of the bytes.

// A draw is an rng of an attention kernel and, when it is kept as such,
// the comparison that alone reads it.
type draw struct{ rng, mask *ir.Value }

// kept is the value the draw's buffer holds.
func (d draw) kept() *ir.Value {
	if d.mask != nil {
		return d.mask
	}
	return d.rng
}

// drawsIn returns the rngs of body (dropout's draws in an attention
// kernel), each with its mask when one comparison with a constant alone
// reads it.
func drawsIn(body []*ir.Value) []draw {
	var draws []draw
	for _, v := range body {
		if v.Op != ir.OpRng {
			continue
		}
		d := draw{rng: v}
		for _, u := range body {
			if !slices.Contains(u.Args, v) {
				continue
			}
			other := u.Args[0]
			if other == v {
				other = u.Args[1]
			}
			cmp := u.Op == ir.OpGe || u.Op == ir.OpGt || u.Op == ir.OpLe || u.Op == ir.OpLt
			if _, ok := splatValue(other); !cmp || !ok || d.mask != nil || u.Args[0] == u.Args[1] {
				d.mask = nil
				break
			}
			d.mask = u
		}
		draws = append(draws, d)
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
func (g *kernelBuilder) drawBuffers(draws []draw, raw value.Value, at []int64, elems int64) []value.Value {
	bufs := make([]value.Value, len(draws))
	for i, d := range draws {
		dt := d.kept().Type.DType
		bufs[i] = g.b.NewBitCast(g.b.NewGetElementPtr(types.I8, raw, i64c(at[i])), types.NewPointer(storageType(dt)))
		g.forLoop("dzero", i64c(0), i64c(elems), func(e value.Value) {
			g.storeAt(dt, zeroValue(dt), bufs[i], e)
		})
	}
	return bufs
}

// drawBytes lays out the draws' buffers of elems elements each after
// bytes bytes: their 64-byte aligned offsets, and the total.
func drawBytes(draws []draw, bytes, elems int64) ([]int64, int64) {
	at := make([]int64, len(draws))
	for i, d := range draws {
		bytes = (bytes + 63) &^ 63
		at[i] = bytes
		bytes += elems * int64(d.kept().Type.DType.Size())
	}
	return at, bytes
}

// drawRows stores each of draws' values at rows [r0, r1) (of n each; the
// row axis has sq rows) into its buffer in bufs, and makes the kernel
// read them there: the buffers hold those rows only, addressed as the
// whole tensor. With band, a row's values outside it are not drawn.
func (g *kernelBuilder) drawRows(draws []draw, bufs []value.Value, r0, r1 value.Value, n, sq int64, band *triangle) {
	if len(draws) == 0 {
		return
	}
	from := g.b.NewMul(r0, i64c(n))
	puts := make([]func(z, at value.Value), len(draws))
	dsts := make([]value.Value, len(draws))
	for i, d := range draws {
		kept := d.kept()
		dst := g.shifted(storageType(kept.Type.DType), bufs[i], from)
		dsts[i] = dst
		puts[i] = func(z, at value.Value) {
			if d.mask != nil {
				// The comparison as the kernel computes it, of z.
				saved := g.rowVals
				g.rowVals = map[*ir.Value]value.Value{d.rng: z}
				z = g.elem(d.mask, atLinear(kept.Type.Shape, at))
				g.rowVals = saved
			}
			g.storeAt(kept.Type.DType, z, dst, at)
		}
	}
	// Read from the buffers once drawn (puts compute the masks).
	defer func() {
		for i, d := range draws {
			g.ptrs[d.kept()] = dsts[i]
		}
	}()
	fill := func(lo, hi value.Value) {
		for i, d := range draws {
			g.fillRng(d.rng, lo, hi, puts[i])
		}
	}
	if band == nil {
		fill(from, g.b.NewMul(r1, i64c(n)))
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
		fill(lo, g.b.NewAdd(base, g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, jhi, jlo), jlo, jhi)))
	})
}

// forget makes the kernel stop reading vs, and the draws, from buffers.
func (g *kernelBuilder) forget(vs []*ir.Value, draws []draw) {
	for _, v := range vs {
		delete(g.ptrs, v)
	}
	for _, d := range draws {
		delete(g.ptrs, d.kept())
	}
}

// drawBand is drawBand(a.p) when no other result of the row part reads
// the draws, with the size of the rows' query axis.
func (a *attention) drawBand(draws []draw) (*triangle, int64) {
	sh := a.p.Type.Shape
	sq := int64(sh[len(sh)-2])
	if len(draws) == 0 {
		return nil, sq
	}
	reads := map[*ir.Value]bool{}
	for _, d := range draws {
		reads[d.rng] = true
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
