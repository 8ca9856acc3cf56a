package codegen

import (
	"fmt"

	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// ldmatrix is ldmatrix.sync.aligned.m8n8.x{n}.shared.b16 over the warp
// (n 2 or 4): p, a generic pointer into shared memory (16-bit elements,
// 16-byte aligned), is the address of row r of matrix i in lane 8i + r;
// the lane 4r + w receives in register i the two elements of word w of
// that row. One instruction loads what took 2n 32-bit shared loads.
func (g *kernelBuilder) ldmatrix(n int64, p value.Value) []value.Value {
	l := g.gpu()
	g.coop = true
	regs := make([]value.Value, n)
	if l.emu {
		out := g.alloca(types.NewArray(uint64(n), types.I32))
		fn := declareIn(g.mod.m, "xlc_emu_ldmatrix", types.Void, types.I32, types.NewPointer(types.I16), types.NewPointer(types.I32))
		first := g.b.NewGetElementPtr(types.NewArray(uint64(n), types.I32), out, i64c(0), i64c(0))
		g.b.NewCall(fn, i32c(n), p, first)
		for i := range regs {
			regs[i] = g.b.NewLoad(types.I32, g.b.NewGetElementPtr(types.I32, first, i64c(int64(i))))
		}
		return regs
	}
	shared := types.NewPointer(types.I16)
	shared.AddrSpace = 3
	fields := make([]types.Type, n)
	for i := range fields {
		fields[i] = types.I32
	}
	name := fmt.Sprintf("llvm.nvvm.ldmatrix.sync.aligned.m8n8.x%d.b16", n)
	call := g.b.NewCall(declareIn(g.mod.m, name, types.NewStruct(fields...), shared), g.b.NewAddrSpaceCast(p, shared))
	for i := range regs {
		regs[i] = g.b.NewExtractValue(call, uint64(i))
	}
	return regs
}

// A laneMap is a number computed from a lane's index l: the sum over its
// terms of ((l >> shift) & mask) · scale. The tensor-core tiler's
// ldmatrix addresses are laneMaps, so that a test can check them against
// the mma fragment layout lane by lane.
type laneMap []struct{ shift, mask, scale int64 }

func (m laneMap) eval(l int64) int64 {
	s := int64(0)
	for _, t := range m {
		s += ((l >> t.shift) & t.mask) * t.scale
	}
	return s
}

func (m laneMap) emit(g *kernelBuilder, lane value.Value) value.Value {
	s := value.Value(i64c(0))
	for _, t := range m {
		s = g.b.NewAdd(s, g.b.NewMul(g.b.NewAnd(g.b.NewLShr(lane, i64c(t.shift)), i64c(t.mask)), i64c(t.scale)))
	}
	return s
}

// mmaFrag is where a lane points ldmatrix for the m16n8k16 fragments: in
// A's 16×16 tile (k contiguous) at row aRow and k aK (x4: a0..a3), in B's
// n-major tile of two mma tiles at n row bRow and k bK (x4: b0, b1 of
// each), or of one at bRow1 (x2).
var mmaFrag = struct{ aRow, aK, bRow, bRow1, bK laneMap }{
	aRow:  laneMap{{0, 15, 1}},
	aK:    laneMap{{4, 1, 8}},
	bRow:  laneMap{{4, 1, 8}, {0, 7, 1}},
	bRow1: laneMap{{0, 7, 1}},
	bK:    laneMap{{3, 1, 8}},
}
