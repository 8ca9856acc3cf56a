package codegen

import (
	_ "embed"
	"fmt"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// The GPU's cooperative operations, as the kernels of a GPU target and
// its emulator use them: special registers (thread, block, lane), the
// block barrier, warp shuffles and shared memory. On the GPU they are
// NVPTX intrinsics and addrspace(3) globals; on the emulator, calls into
// its scheduler (emurt/emu.c) and thread-local globals, which a block's
// threads share because they run on one OS thread.

// emuSource is the emulator's scheduler, compiled into every gpu-emu
// shared object whose module calls it.
//
//go:embed emurt/emu.c
var emuSource string

// sregs are the special registers a kernel reads, by their PTX names, with
// the emulator's number for each.
var sregs = map[string]int64{"tid.x": 0, "ntid.x": 1, "ctaid.x": 2, "nctaid.x": 3, "laneid": 4, "warpid": 5}

// sreg reads special register name (an i32) in b.
func (l ptxLowering) sreg(mod *llir.Module, b *llir.Block, name string) value.Value {
	k, ok := sregs[name]
	if !ok {
		panic("codegen: unknown special register " + name)
	}
	if l.emu {
		return b.NewCall(declareIn(mod, "xlc_emu_sreg", types.I32, types.I32), i32c(k))
	}
	return b.NewCall(declareIn(mod, "llvm.nvvm.read.ptx.sreg."+name, types.I32))
}

// A shuffle reads a value of another lane of the warp: from lane arg
// (shflIdx), lane ^ arg (shflBfly), lane + arg (shflDown) or lane − arg
// (shflUp); a lane outside the warp gives the thread's own value.
type shfl int

const (
	shflIdx shfl = iota
	shflBfly
	shflDown
	shflUp
)

var shflNames = [...]string{"idx", "bfly", "down", "up"}

// Mutation breaks one cooperative construct on purpose, so that a test
// can show the emulator's tests catch it; MutateNone outside such tests.
type Mutation int

const (
	MutateNone Mutation = iota
	// MutateBarrier drops every block barrier.
	MutateBarrier
	// MutateShuffleLane reads the neighbouring lane in every shuffle.
	MutateShuffleLane
	// MutateFragment swaps the second and third A registers of every
	// mma (a wrong fragment layout).
	MutateFragment
)

// Mutate is the mutation compiled into GPU kernels (tests only).
var Mutate = MutateNone

// barrier is bar.sync 0: every thread of the block waits until all have
// arrived, and shared memory written before it is visible after it.
func (g *kernelBuilder) barrier() {
	l := g.gpu()
	g.coop = true
	if Mutate == MutateBarrier {
		return
	}
	if l.emu {
		g.b.NewCall(declareIn(g.mod.m, "xlc_emu_barrier", types.Void))
		return
	}
	g.b.NewCall(declareIn(g.mod.m, "llvm.nvvm.barrier0", types.Void))
}

// syncWarp is bar.warp.sync over the full warp (CUDA's __syncwarp): the
// lanes' shared-memory accesses before it are visible to the others after
// it, which a shuffle alone does not promise.
func (g *kernelBuilder) syncWarp() {
	l := g.gpu()
	g.coop = true
	if l.emu {
		g.b.NewCall(declareIn(g.mod.m, "xlc_emu_syncwarp", types.Void))
		return
	}
	g.b.NewCall(declareIn(g.mod.m, "llvm.nvvm.bar.warp.sync", types.Void, types.I32), i32c(-1))
}

// mutateLane is a shuffle's lane argument, wrong under MutateShuffleLane.
func (g *kernelBuilder) mutateLane(mode shfl, arg value.Value) value.Value {
	if Mutate != MutateShuffleLane {
		return arg
	}
	arg = g.b.NewXor(arg, i32c(1))
	if mode == shflIdx {
		arg = g.b.NewAnd(g.b.NewAdd(arg, i32c(1)), i32c(31))
	}
	return arg
}

// threadFence orders the thread's memory accesses before it before those
// after it, as every other thread of the device sees them (membar.gl,
// CUDA's __threadfence).
func (g *kernelBuilder) threadFence() {
	if g.gpu().emu {
		g.b.NewFence(enum.AtomicOrderingSequentiallyConsistent)
		return
	}
	g.b.NewCall(declareIn(g.mod.m, "llvm.nvvm.membar.gl", types.Void))
}

// shuffle returns the value x (f32, i32, f64 or i64) has in the lane that
// mode and arg (an i32) name, over the full warp.
func (g *kernelBuilder) shuffle(mode shfl, x, arg value.Value) value.Value {
	l := g.gpu()
	g.coop = true
	if t := x.Type(); l.emu && (t.Equal(types.I64) || t.Equal(types.Double)) {
		// One exchange of the 64 bits.
		arg = g.mutateLane(mode, arg)
		bits := x
		if t.Equal(types.Double) {
			bits = g.b.NewBitCast(x, types.I64)
		}
		r := value.Value(g.b.NewCall(declareIn(g.mod.m, "xlc_emu_shfl64", types.I64, types.I32, types.I64, types.I32), i32c(int64(mode)), bits, arg))
		if t.Equal(types.Double) {
			r = g.b.NewBitCast(r, types.Double)
		}
		return r
	}
	if t := x.Type(); t.Equal(types.I64) || t.Equal(types.Double) {
		// Two shuffles of 32 bits each.
		bits := x
		if t.Equal(types.Double) {
			bits = g.b.NewBitCast(x, types.I64)
		}
		lo := g.shuffle(mode, g.b.NewTrunc(bits, types.I32), arg)
		hi := g.shuffle(mode, g.b.NewTrunc(g.b.NewLShr(bits, i64c(32)), types.I32), arg)
		r := value.Value(g.b.NewOr(g.b.NewZExt(lo, types.I64), g.b.NewShl(g.b.NewZExt(hi, types.I64), i64c(32))))
		if t.Equal(types.Double) {
			r = g.b.NewBitCast(r, types.Double)
		}
		return r
	}
	arg = g.mutateLane(mode, arg)
	isFloat := x.Type().Equal(types.Float)
	if l.emu {
		bits := x
		if isFloat {
			bits = g.b.NewBitCast(x, types.I32)
		}
		r := value.Value(g.b.NewCall(declareIn(g.mod.m, "xlc_emu_shfl", types.I32, types.I32, types.I32, types.I32), i32c(int64(mode)), bits, arg))
		if isFloat {
			r = g.b.NewBitCast(r, types.Float)
		}
		return r
	}
	suffix := "i32"
	if isFloat {
		suffix = "f32"
	}
	clamp := int64(31)
	if mode == shflUp {
		clamp = 0
	}
	fn := declareIn(g.mod.m, fmt.Sprintf("llvm.nvvm.shfl.sync.%s.%s", shflNames[mode], suffix), x.Type(), types.I32, x.Type(), types.I32, types.I32)
	return g.b.NewCall(fn, i32c(-1), x, arg, i32c(clamp))
}

// mma is mma.sync.aligned.m16n8k16.row.col.f32 with operands of type
// half (bf16 or f16) over the warp: a holds the thread's four A registers,
// b its two B registers (i32s, two elements each, the lower index in the
// low bits), c its four f32 accumulators; it returns D = A·B + C at the
// thread's four positions (emurt/emu.c's xlc_emu_mma gives the layout).
func (g *kernelBuilder) mma(half ir.DType, a [4]value.Value, b [2]value.Value, c [4]value.Value) [4]value.Value {
	l := g.gpu()
	g.coop = true
	if Mutate == MutateFragment {
		a[1], a[2] = a[2], a[1]
	}
	var d [4]value.Value
	if l.emu {
		regs, acc, out := g.alloca(types.NewArray(6, types.I32)), g.alloca(types.NewArray(4, types.Float)), g.alloca(types.NewArray(4, types.Float))
		at := func(p value.Value, t types.Type, n, i int64) value.Value {
			return g.b.NewGetElementPtr(types.NewArray(uint64(n), t), p, i64c(0), i64c(i))
		}
		for i, r := range append(a[:], b[:]...) {
			g.b.NewStore(r, at(regs, types.I32, 6, int64(i)))
		}
		for i, x := range c {
			g.b.NewStore(x, at(acc, types.Float, 4, int64(i)))
		}
		kind := int64(0)
		if half == ir.F16 {
			kind = 1
		}
		fn := declareIn(g.mod.m, "xlc_emu_mma", types.Void, types.I32, types.NewPointer(types.I32), types.NewPointer(types.Float), types.NewPointer(types.Float))
		g.b.NewCall(fn, i32c(kind), at(regs, types.I32, 6, 0), at(acc, types.Float, 4, 0), at(out, types.Float, 4, 0))
		for i := range d {
			d[i] = g.b.NewLoad(types.Float, at(out, types.Float, 4, int64(i)))
		}
		return d
	}
	name, rt := "llvm.nvvm.mma.m16n8k16.row.col.bf16", types.Type(types.I32)
	if half == ir.F16 {
		name, rt = "llvm.nvvm.mma.m16n8k16.row.col.f32.f32", types.NewVector(2, types.Half)
	}
	res := types.NewStruct(types.Float, types.Float, types.Float, types.Float)
	params := []types.Type{rt, rt, rt, rt, rt, rt, types.Float, types.Float, types.Float, types.Float}
	var args []value.Value
	for _, r := range append(a[:], b[:]...) {
		if !rt.Equal(types.I32) {
			r = g.b.NewBitCast(r, rt)
		}
		args = append(args, r)
	}
	call := g.b.NewCall(declareIn(g.mod.m, name, res, params...), append(args, c[:]...)...)
	for i := range d {
		d[i] = g.b.NewExtractValue(call, uint64(i))
	}
	return d
}

// freshTid reads the thread's index in its block (i64) where LLVM can
// neither reuse an earlier read nor move this one: a product's values
// derived from it then live through that product only. Read once at the
// kernel's start, every product's indices and tile addresses were hoisted
// there and held throughout, and a kernel of five products spilled. The
// emulator's reads are calls LLVM cannot move already.
func (g *kernelBuilder) freshTid() value.Value {
	if g.gpu().emu {
		return g.tid()
	}
	asm := llir.NewInlineAsm(types.NewPointer(types.NewFunc(types.I32)), "mov.u32 $0, %tid.x;", "=r")
	asm.SideEffect = true
	return g.b.NewZExt(g.b.NewCall(asm), types.I64)
}

// productTid is the thread's index in its block for the product being
// emitted (freshTid's), or tid outside one.
func (g *kernelBuilder) productTid() value.Value {
	if g.ptid != nil {
		return g.ptid
	}
	return g.tid()
}

// tid and ctaid read the thread's index in its block and the block's in
// the grid, as i64.
func (g *kernelBuilder) tid() value.Value   { return g.sreg64("tid.x") }
func (g *kernelBuilder) ctaid() value.Value { return g.sreg64("ctaid.x") }

func (g *kernelBuilder) sreg64(name string) value.Value {
	return g.b.NewZExt(g.gpu().sreg(g.mod.m, g.b, name), types.I64)
}

// sharedArray is a block's shared array of n elements of type t, 16-byte
// aligned, as a generic pointer to its first element, valid in the body.
func (g *kernelBuilder) sharedArray(t types.Type, n int64) value.Value {
	return g.moduleArray("smem", t, n, 3)
}

// tileArrays returns two shared arrays of n elements of type t for a dot
// tiler's A and B tiles, the same two for every tiler of the kernel that
// asks for the same type and size: the products a kernel runs one after
// another each end at a barrier, after which their tiles are free.
func (g *kernelBuilder) tileArrays(t types.Type, n int64) (a, b value.Value) {
	key := fmt.Sprintf("%s[%d]", t, n)
	if p, ok := g.tiles[key]; ok {
		return p[0], p[1]
	}
	if g.tiles == nil {
		g.tiles = map[string][2]value.Value{}
	}
	a, b = g.sharedArray(t, n), g.sharedArray(t, n)
	g.tiles[key] = [2]value.Value{a, b}
	return a, b
}

// moduleArray adds to the module a zeroed internal array of n elements of
// type t named after the kernel, in address space space on the GPU (3:
// a block's shared memory; 1: global memory, one for the whole device),
// and returns a generic pointer to its first element, valid in the body.
// On the emulator, shared memory is thread-local (a block's threads run on
// one OS thread, and blocks on several), global memory a plain global.
func (g *kernelBuilder) moduleArray(kind string, t types.Type, n int64, space types.AddrSpace) value.Value {
	l := g.gpu()
	g.nshared++
	if space == 3 {
		g.smem += (n*elemBytes(t) + 15) / 16 * 16
	}
	arr := types.NewArray(uint64(n), t)
	gl := g.mod.m.NewGlobalDef(fmt.Sprintf("%s.%s%d", g.sym, kind, g.nshared), constant.NewZeroInitializer(arr))
	gl.Linkage = enum.LinkageInternal
	gl.Align = 16
	var p value.Value = gl
	switch {
	case l.emu && space == 3:
		gl.TLSModel = enum.TLSModelGeneric
	case !l.emu:
		if space == 3 {
			gl.Init = constant.NewUndef(arr) // shared memory has no initializer
		}
		gl.AddrSpace = space
		gl.Typ = types.NewPointer(arr)
		gl.Typ.AddrSpace = space
		p = g.entry.NewAddrSpaceCast(gl, types.NewPointer(arr))
	}
	return g.entry.NewGetElementPtr(arr, p, i64c(0), i64c(0))
}

// elemBytes is the size of a shared array's element type t.
func elemBytes(t types.Type) int64 {
	switch t := t.(type) {
	case *types.IntType:
		return max(1, int64(t.BitSize)/8)
	case *types.FloatType:
		switch t.Kind {
		case types.FloatKindDouble:
			return 8
		case types.FloatKindHalf:
			return 2
		}
		return 4
	}
	fail("a shared array of %s", t)
	return 0
}

// moduleScratch is an array of at least n bytes in the device's global
// memory that every kernel of the module may use (a GPU runs them one
// after another), as a generic i8 pointer valid in g's body: one array
// per name, as large as the largest kernel asks. Its contents between
// kernels are undefined.
func (g *kernelBuilder) moduleScratch(name string, n int64) value.Value {
	gl, ok := g.mod.scratch[name]
	if !ok {
		gl = g.mod.m.NewGlobalDef(name, constant.NewZeroInitializer(types.NewArray(0, types.I8)))
		gl.Linkage = enum.LinkageInternal
		gl.Align = 16
		g.mod.scratch[name] = gl
	}
	if arr := gl.ContentType.(*types.ArrayType); int64(arr.Len) < n {
		arr = types.NewArray(uint64(n), types.I8)
		gl.ContentType, gl.Init = arr, constant.NewZeroInitializer(arr)
		gl.Typ = types.NewPointer(arr)
		if !g.gpu().emu {
			gl.AddrSpace = 1
			gl.Typ.AddrSpace = 1
		}
	}
	if g.gpu().emu {
		return g.entry.NewBitCast(gl, types.I8Ptr)
	}
	return g.entry.NewAddrSpaceCast(gl, types.I8Ptr)
}

// gpu is g's GPU lowering; calling it for a CPU target is a codegen bug.
func (g *kernelBuilder) gpu() ptxLowering {
	l, ok := g.mod.t.lower().(ptxLowering)
	if !ok {
		panic("codegen: a GPU construct in a kernel for " + g.mod.t.Name)
	}
	return l
}

// gpuKernels reports whether t's kernels are GPU kernels (a GPU target or
// its emulator).
func (t *Target) gpuKernels() bool { return t.GPU() || t.Emulates != "" }
