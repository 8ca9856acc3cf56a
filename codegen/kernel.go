package codegen

import (
	"fmt"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"xlc/ir"
)

// module is the LLVM module being built for a target, with its external
// declarations.
type module struct {
	m     *llir.Module
	t     *Target
	decls map[string]*llir.Func
	// scratch are the module's global arrays that all its kernels may use
	// (moduleScratch), by name.
	scratch map[string]*llir.Global
	hints   []metadata.Field // rowHints, once made
	width   []metadata.Field // widthHint, once made
}

func newModule(t *Target) *module {
	m := llir.NewModule()
	m.TargetTriple = t.Triple
	m.DataLayout = t.DataLayout
	return &module{m: m, t: t, decls: map[string]*llir.Func{}, scratch: map[string]*llir.Global{}}
}

func (m *module) String() string { return m.m.String() }

// declare returns the external function name (a libm/libc function or an
// LLVM intrinsic), declaring it on first use.
func (m *module) declare(name string, ret types.Type, params ...types.Type) *llir.Func {
	if f, ok := m.decls[name]; ok {
		return f
	}
	f := declareIn(m.m, name, ret, params...)
	m.decls[name] = f
	return f
}

// declareIn returns mod's function name, declaring it (nounwind) when mod
// has none: the declare of the dot emitter, which has no module.
func declareIn(mod *llir.Module, name string, ret types.Type, params ...types.Type) *llir.Func {
	if f := funcIn(mod, name); f != nil {
		return f
	}
	ps := make([]*llir.Param, len(params))
	for i, t := range params {
		ps[i] = llir.NewParam("", t)
	}
	f := mod.NewFunc(name, ret, ps...)
	f.FuncAttrs = append(f.FuncAttrs, enum.FuncAttrNoUnwind)
	return f
}

// prefetchLines emits in b a prefetch, for reading and kept in every
// cache level, of each 64-byte line of n elements of type et (size bytes
// each) of p, element c at index at(c). An address past p's buffer is
// harmless: a prefetch never faults.
func prefetchLines(b *llir.Block, decl declFunc, et types.Type, p value.Value, n, size int64, at func(c int64) value.Value) {
	fn := decl("llvm.prefetch.p0i8", types.Void, types.I8Ptr, types.I32, types.I32, types.I32)
	read, keep, data := constant.NewInt(types.I32, 0), constant.NewInt(types.I32, 3), constant.NewInt(types.I32, 1)
	for c := int64(0); c < n; c += 64 / size {
		b.NewCall(fn, b.NewBitCast(b.NewGetElementPtr(et, p, at(c)), types.I8Ptr), read, keep, data)
	}
}

// funcIn returns mod's function name, or nil.
func funcIn(mod *llir.Module, name string) *llir.Func {
	for _, f := range mod.Funcs {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// messageIn returns mod's private constant string name, which holds text,
// adding it when mod has none.
func messageIn(mod *llir.Module, name, text string) *llir.Global {
	for _, gl := range mod.Globals {
		if gl.Name() == name {
			return gl
		}
	}
	msg := mod.NewGlobalDef(name, constant.NewCharArrayFromString(text))
	msg.Immutable = true
	msg.Linkage = enum.LinkagePrivate
	msg.UnnamedAddr = enum.UnnamedAddrUnnamedAddr
	return msg
}

// oomHandler is the module's internal void xlc_oom(i8 *msg, i64 len),
// which reports msg and stops the kernel (lowering.defineFail).
func (m *module) oomHandler() *llir.Func {
	f, ok := m.decls[oomName]
	if !ok {
		f = failHandler(m.m, m.t.lower(), m.declare)
		m.decls[oomName] = f
	}
	return f
}

const oomName = "xlc_oom"

// failHandler returns mod's xlc_oom, defining it when mod has none.
func failHandler(mod *llir.Module, l lowering, decl declFunc) *llir.Func {
	if f := funcIn(mod, oomName); f != nil {
		return f
	}
	return l.defineFail(mod, oomName, decl)
}

// checkAlloc continues when p, a malloc result, is not null; otherwise the
// kernel writes "xlc: out of memory in <kernel>" to stderr and aborts
// (there is no way to return an error through the kernel ABI, and going on
// would write through a null pointer).
func (g *kernelBuilder) checkAlloc(p value.Value) {
	text := "xlc: out of memory in " + g.sym + "\n"
	glob := messageIn(g.mod.m, g.sym+".oom", text)
	msg := constant.NewGetElementPtr(glob.ContentType, glob, i64c(0), i64c(0))
	bad, ok := g.newBlock("oom"), g.newBlock("alloc.ok")
	null := constant.NewNull(p.Type().(*types.PointerType))
	g.b.NewCondBr(g.b.NewICmp(enum.IPredEQ, p, null), bad, ok)
	bad.NewCall(g.mod.oomHandler(), msg, i64c(int64(len(text))))
	bad.NewUnreachable()
	g.b = ok
}

// heap emits a request for bytes of memory aligned to align from the
// target's allocator, and checkAlloc's stop when there is none; it
// returns the i8 pointer (release it with the lowering's release).
func (g *kernelBuilder) heap(bytes value.Value, align int64) value.Value {
	raw := g.mod.t.lower().alloc(g.b, g.mod.declare, bytes, align)
	g.checkAlloc(raw)
	return raw
}

// kernelAttrs are the attributes of every kernel function: with AVX-512
// BF16, its instructions too (convert's vcvtneps2bf16).
func (m *module) kernelAttrs() []llir.FuncAttribute {
	as := m.t.funcAttrs()
	if m.t.hasAVX512BF16() {
		as = append(as, llir.AttrPair{Key: "target-features", Value: "+avx512bf16"})
	}
	return append(as, enum.FuncAttrNoUnwind)
}

// kernelBuilder builds the body function of one kernel.
type kernelBuilder struct {
	mod   *module
	sym   string
	body  *llir.Func
	entry *llir.Block // holds the allocas; branches to the first code block
	first *llir.Block
	b     *llir.Block // the block being appended to
	nblk  int

	// ptrs maps each value read from a buffer to its body parameter.
	ptrs map[*ir.Value]value.Value
	// fills are the values read from buffers that hold a constant outside
	// a triangle (operandFills).
	fills map[*ir.Value]fill
	out   value.Value // outs[0]
	res   *ir.Value   // the instruction
	// outs are the result pointers: the instruction's, then its outputs'
	// (a multi-output fusion); results are the values they receive (the
	// callee's results for a fusion, else the instruction).
	outs    []value.Value
	results []*ir.Value
	lo      value.Value
	hi      value.Value
	// scratch is the kernel's scratch buffer (Kernel.Scratch), nil without
	// one; chunks are the chunks of rows its column sums take
	// (columnChunks), or the parts of K of its dot (dotSplit).
	scratch value.Value
	chunks  int64

	cache map[elemKey]value.Value
	// rowVals are the current row's values in a row kernel (rows.go).
	rowVals map[*ir.Value]value.Value
	// rowCaches are a row kernel's cached values (rowcache.go); rowIx and
	// rowPos are the writing loop's index and position in the row.
	rowCaches     map[*ir.Value]*rowCache
	rowCacheOrder []*ir.Value
	rowIx         *index
	rowPos        value.Value
	// split divides a row kernel's loops at a triangle's edge (rowsplit.go).
	split *rowSplit
	// cvtBF16 makes convert round f32 to bf16 by LLVM's fptrunc to bfloat
	// (vcvtneps2bf16), in a loop hinted to vectorize (elemental.go).
	cvtBF16 bool

	// A GPU kernel's frame, its threads per block (0: gpuBlock) when the
	// emitter chose them, whether its threads synchronize (coop), its
	// shared arrays' count and their bytes (gpu.go).
	frame   *kernelFrame
	threads int
	coop    bool
	nshared int
	smem    int64
	// tiles are the dot tilers' shared tiles, by element type and size
	// (tileArrays); ptid is the thread's index as the product being
	// emitted read it (freshTid), nil outside one.
	tiles map[string][2]value.Value
	ptid  value.Value
	// tilers counts the dot tilers the kernel made (tiler): the
	// tensor-core tiler fetches a step ahead only in a kernel of one.
	tilers int
}

// newKernel declares kernel sym reading args and writing res (the
// instruction's result and, for a multi-output fusion, its outputs'): the
// exported wrapper and the internal body, whose code the emitters then
// append. inPlace[j] is the index in res of the result whose buffer the
// operand j shares (Kernel.InPlace): the body reads it through that
// result's pointer, and its own parameter, unused, is not noalias. With
// scratch the body takes the kernel's scratch buffer after the results.
//
// A huge kernel (more instructions than opt handles in reasonable time) is
// its frame itself, optnone, loading its pointers in place: thousands of
// pointer parameters would cost opt and llc minutes.
func (m *module) newKernel(sym string, args []*ir.Value, res []*ir.Value, inPlace map[int]int, huge, scratch bool) *kernelBuilder {
	g := &kernelBuilder{mod: m, sym: sym, ptrs: map[*ir.Value]value.Value{}, res: res[0], results: res[:1], cache: map[elemKey]value.Value{}}
	if huge {
		g = m.newHugeKernel(g, args, res)
		if scratch {
			g.scratch = g.frame.Buf(g.entry, len(args)+len(res), types.I8Ptr)
		}
		return g
	}
	shared := map[*ir.Value]int{}
	for j, r := range inPlace {
		shared[args[j]] = r
	}
	var params []*llir.Param
	for i, a := range args {
		p := llir.NewParam(fmt.Sprintf("a%d", i), types.NewPointer(storageType(a.Type.DType)))
		if _, ok := shared[a]; !ok {
			p.Attrs = append(p.Attrs, enum.ParamAttrNoAlias)
			if _, ok := g.ptrs[a]; !ok {
				g.ptrs[a] = p
			}
		}
		params = append(params, p)
	}
	for k, r := range res {
		name := "out"
		if k > 0 {
			name = fmt.Sprintf("out%d", k)
		}
		out := llir.NewParam(name, types.NewPointer(storageType(r.Type.DType)))
		out.Attrs = append(out.Attrs, enum.ParamAttrNoAlias)
		params = append(params, out)
		g.outs = append(g.outs, out)
	}
	if scratch {
		// Not noalias: the parts of a call share it.
		p := llir.NewParam("scratch", types.I8Ptr)
		params = append(params, p)
		g.scratch = p
	}
	lo, hi := llir.NewParam("lo", types.I64), llir.NewParam("hi", types.I64)
	params = append(params, lo, hi)
	g.out, g.lo, g.hi = g.outs[0], lo, hi
	g.body = m.m.NewFunc(sym+"_body", types.Void, params...)
	g.body.Linkage = enum.LinkageInternal
	g.body.FuncAttrs = append(m.kernelAttrs(), enum.FuncAttrAlwaysInline)
	g.entry = g.body.NewBlock("entry")
	g.first = g.newBlock("start")
	g.b = g.first
	for _, a := range args {
		k, isShared := shared[a]
		if _, ok := g.ptrs[a]; ok || !isShared {
			continue
		}
		p := g.outs[k]
		if t := types.NewPointer(storageType(a.Type.DType)); !t.Equal(p.Type()) {
			p = g.entry.NewBitCast(p, t)
		}
		g.ptrs[a] = p
	}

	// The exported frame: it calls the body with the buffers' pointers.
	g.frame = m.t.lower().frame(m.m, sym, m.kernelAttrs())
	g.frame.callBody(g.body)
	return g
}

// newHugeKernel declares g as one exported optnone function that loads
// its operand and result pointers from bufs (no noalias: an in-place
// operand is read through its own pointer, the result's address).
func (m *module) newHugeKernel(g *kernelBuilder, args []*ir.Value, res []*ir.Value) *kernelBuilder {
	fr := m.t.lower().frame(m.m, g.sym, append(m.kernelAttrs(), enum.FuncAttrNoInline, enum.FuncAttrOptNone))
	g.frame = fr
	g.body, g.entry, g.lo, g.hi = fr.Func, fr.Entry, fr.Lo, fr.Hi
	g.first = g.newBlock("start")
	g.b = g.first
	for i, a := range args {
		if _, ok := g.ptrs[a]; !ok {
			g.ptrs[a] = fr.Buf(g.entry, i, types.NewPointer(storageType(a.Type.DType)))
		}
	}
	for k, r := range res {
		g.outs = append(g.outs, fr.Buf(g.entry, len(args)+k, types.NewPointer(storageType(r.Type.DType))))
	}
	g.out = g.outs[0]
	return g
}

// finish terminates the body.
func (g *kernelBuilder) finish() {
	g.entry.NewBr(g.first)
	g.b.NewRet(nil)
}

func (g *kernelBuilder) newBlock(name string) *llir.Block {
	g.nblk++
	return g.body.NewBlock(fmt.Sprintf("%s%d", name, g.nblk))
}

// alloca reserves a stack slot in the entry block.
func (g *kernelBuilder) alloca(t types.Type) value.Value {
	return g.entry.NewAlloca(t)
}

func i64c(v int64) *constant.Int { return constant.NewInt(types.I64, v) }
func i32c(v int64) *constant.Int { return constant.NewInt(types.I32, int64(int32(v))) }

// forLoop emits for i := from; i < to; i++ { body(i) } and continues after
// it.
func (g *kernelBuilder) forLoop(name string, from, to value.Value, body func(i value.Value)) {
	g.strideLoop(name, from, to, i64c(1), body)
}

// strideLoop emits for i := from; i < to; i += step { body(i) }.
func (g *kernelBuilder) strideLoop(name string, from, to, step value.Value, body func(i value.Value)) {
	g.hintedLoop(name, from, to, step, nil, body)
}

// hintedLoop is strideLoop with loop hints (loophints.go).
func (g *kernelBuilder) hintedLoop(name string, from, to, step value.Value, hints []metadata.Field, body func(i value.Value)) {
	pre := g.b
	head, bb, exit := g.newBlock(name+".head"), g.newBlock(name+".body"), g.newBlock(name+".exit")
	pre.NewBr(head)
	phi := head.NewPhi(llir.NewIncoming(from, pre))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, phi, to), bb, exit)
	g.b = bb
	body(phi)
	next := g.b.NewAdd(phi, step)
	g.mod.hintLoop(g.b.NewBr(head), hints)
	phi.Incs = append(phi.Incs, llir.NewIncoming(next, g.b))
	g.b = exit
}

// ifThen emits if cond { body() } and continues after it.
func (g *kernelBuilder) ifThen(name string, cond value.Value, body func()) {
	then, done := g.newBlock(name+".then"), g.newBlock(name+".end")
	g.b.NewCondBr(cond, then, done)
	g.b = then
	body()
	g.b.NewBr(done)
	g.b = done
}

// loadIf returns load()'s value where cond holds, else zero, loading only
// then: a branch the GPU predicates. A select of the address instead
// (always loading, from a safe place otherwise) makes every address a
// register of its own, where a thread's loads were one base and offsets.
func (g *kernelBuilder) loadIf(cond value.Value, load func() value.Value, zero value.Value) value.Value {
	pre := g.b
	then, done := g.newBlock("ld.then"), g.newBlock("ld.end")
	pre.NewCondBr(cond, then, done)
	g.b = then
	x := load()
	from := g.b
	g.b.NewBr(done)
	g.b = done
	return done.NewPhi(llir.NewIncoming(x, from), llir.NewIncoming(zero, pre))
}

// gep addresses element i of the buffer p of dtype d.
func (g *kernelBuilder) gep(d ir.DType, p, i value.Value) value.Value {
	return g.b.NewGetElementPtr(storageType(d), p, i)
}

// loadAt loads element i of buffer p of dtype d as a compute value.
func (g *kernelBuilder) loadAt(d ir.DType, p, i value.Value) value.Value {
	return g.fromStorage(d, g.b.NewLoad(storageType(d), g.gep(d, p, i)))
}

// storeAt stores the compute value x as element i of buffer p of dtype d.
func (g *kernelBuilder) storeAt(d ir.DType, x, p, i value.Value) {
	g.b.NewStore(g.toStorage(d, x), g.gep(d, p, i))
}

// fromStorage converts a loaded element to its compute type.
func (g *kernelBuilder) fromStorage(d ir.DType, x value.Value) value.Value {
	b := g.b
	switch d {
	case ir.F16:
		return b.NewFPExt(b.NewBitCast(x, types.Half), types.Double)
	case ir.BF16:
		w := b.NewShl(b.NewZExt(x, types.I32), i32c(16))
		return b.NewFPExt(b.NewBitCast(w, types.Float), types.Double)
	case ir.Bool:
		return b.NewICmp(enum.IPredNE, x, constant.NewInt(types.I8, 0))
	}
	return x
}

// toStorage converts a compute value (already rounded to d) to its storage
// type.
func (g *kernelBuilder) toStorage(d ir.DType, x value.Value) value.Value {
	b := g.b
	switch d {
	case ir.F16:
		// Exact: x holds an f16 value.
		return b.NewBitCast(b.NewFPTrunc(b.NewFPTrunc(x, types.Float), types.Half), types.I16)
	case ir.BF16:
		w := b.NewBitCast(b.NewFPTrunc(x, types.Float), types.I32)
		return b.NewTrunc(b.NewLShr(w, i32c(16)), types.I16)
	case ir.Bool:
		return b.NewZExt(x, types.I8)
	}
	return x
}

// min64 returns the smaller of two i64 values.
func (g *kernelBuilder) min64(x, y value.Value) value.Value {
	return g.b.NewSelect(g.b.NewICmp(enum.IPredSLT, x, y), x, y)
}

// clampIndex sign-extends the index x to i64 and clamps it to [0, n-1].
func (g *kernelBuilder) clampIndex(x value.Value, n int) value.Value {
	b := g.b
	if x.Type().Equal(types.I32) {
		x = b.NewSExt(x, types.I64)
	}
	x = b.NewSelect(b.NewICmp(enum.IPredSLT, x, i64c(0)), i64c(0), x)
	return b.NewSelect(b.NewICmp(enum.IPredSGT, x, i64c(int64(n-1))), i64c(int64(n-1)), x)
}
