package codegen

import (
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// A tileOperand is one operand of a tiler's product: where its tile comes
// from and the registers (slots) the thread fetches it into before
// putting it into shared memory.
type tileOperand struct {
	d           ir.DType
	p, off, r0  value.Value
	rows, n     int64 // the tile's rows of the operand's free axis, and the operand's
	ls, ld      int64 // a shared row (f32 tiles) and a stored row, in elements
	rowMajor    bool  // k contiguous in memory
	vec, alongK bool  // copied 16 bytes at a time, along k (f32 tiles)
	keep        func(r, k value.Value) value.Value
	slots       []value.Value
}

// kept reports whether o's element (r, k) is copied rather than zeroed:
// inside the operand's rows, the k range [klo, khi) and its band.
func (o *tileOperand) kept(g *kernelBuilder, r, k, klo, khi value.Value) value.Value {
	in := g.b.NewAnd(g.inRange(r, o.n, k, khi), g.b.NewICmp(enum.IPredSGE, k, klo))
	return g.b.NewAnd(in, o.keep(r, k))
}

// maskedRun loads the n elements of type t at p[at] (16 bytes, aligned,
// which the emulator checks) and zeroes those in(e) reports outside.
func (g *kernelBuilder) maskedRun(p value.Value, t types.Type, at value.Value, n int64, in func(e int64) value.Value) value.Value {
	v := types.NewVector(uint64(n), t)
	ptr := g.b.NewGetElementPtr(t, p, at)
	g.checkAligned(ptr, 16)
	run := g.b.NewLoad(v, g.b.NewBitCast(ptr, types.NewPointer(v)))
	run.Align = 16
	mask := value.Value(constant.NewZeroInitializer(types.NewVector(uint64(n), types.I1)))
	for e := range n {
		mask = g.b.NewInsertElement(mask, in(e), i32c(e))
	}
	return g.b.NewSelect(mask, run, constant.NewZeroInitializer(v))
}

// fetchElems loads the thread's elements of o's tile at k0 into o.slots,
// one at a time: load(src) reads the element at src past o.off, and an
// element outside the operand, the k range [klo, khi) or its band is zero
// (not read).
func (g *kernelBuilder) fetchElems(o *tileOperand, bk int64, k0, klo, khi value.Value, load func(src value.Value) value.Value, zero value.Value) {
	q := 0
	g.stageTile(o.rows, bk, o.r0, k0, o.rowMajor, func(r, k, gr, gk value.Value) {
		src := g.b.NewAdd(g.b.NewMul(gr, i64c(o.ld)), gk)
		if !o.rowMajor {
			src = g.b.NewAdd(g.b.NewMul(gk, i64c(o.ld)), gr)
		}
		x := g.loadIf(o.kept(g, gr, gk, klo, khi), func() value.Value { return load(g.b.NewAdd(o.off, src)) }, zero)
		g.b.NewStore(x, o.slots[q])
		q++
	})
}

// putElems stores the elements fetchElems fetched (of type t) into the
// shared tile sm, element (r, k) of the tile at at(r, k).
func (g *kernelBuilder) putElems(o *tileOperand, bk int64, sm value.Value, t types.Type, at func(r, k value.Value) value.Value) {
	q := 0
	g.stageTile(o.rows, bk, o.r0, i64c(0), o.rowMajor, func(r, k, _, _ value.Value) {
		g.b.NewStore(g.b.NewLoad(t, o.slots[q]), g.b.NewGetElementPtr(t, sm, at(r, k)))
		q++
	})
}

// slotsFor reserves o's slots: n of type t.
func (g *kernelBuilder) slotsFor(o *tileOperand, n int64, t types.Type) {
	for range n {
		o.slots = append(o.slots, g.alloca(t))
	}
}

// stepLoop emits a tiler's k loop from start to khi by bk: each step puts
// the fetched operands into its shared tiles (put), waits at a barrier
// and multiplies them (mul). fetch loads a step's operands into
// registers: in a kernel of one product a step ahead, so that step k+1's
// loads are in flight while step k multiplies; in a kernel of several
// (attention's), where holding them through the products spilled, within
// the step. One barrier a step suffices because the tiles are double
// buffered (tileBuffers); the loop ends with one more.
func (g *kernelBuilder) stepLoop(start, khi value.Value, bk int64, fetch, put, mul func(k0 value.Value)) {
	ahead := g.tilers == 1
	if ahead {
		g.ifThen("fetch0", g.b.NewICmp(enum.IPredSLT, start, khi), func() { fetch(start) })
	}
	g.strideLoop("ktile", start, khi, i64c(bk), func(k0 value.Value) {
		if !ahead {
			fetch(k0)
		}
		put(k0)
		g.barrier()
		if ahead {
			next := g.b.NewAdd(k0, i64c(bk))
			g.ifThen("fetch", g.b.NewICmp(enum.IPredSLT, next, khi), func() { fetch(next) })
		}
		mul(k0)
	})
	g.barrier()
}
