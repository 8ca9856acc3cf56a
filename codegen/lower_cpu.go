package codegen

import (
	"slices"
	"strconv"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// cpuLowering is what every CPU target shares: the C ABI of runtime/cpu,
// libm and LLVM's intrinsics for math, and the C heap for scratch memory.
type cpuLowering struct{}

// frame is void sym(i8 **bufs, i64 lo, i64 hi): runtime/cpu passes the
// buffers' addresses in one array and each part of the range in a call
// of its own.
func (cpuLowering) frame(mod *llir.Module, sym string, attrs []llir.FuncAttribute) *kernelFrame {
	bufs := llir.NewParam("bufs", types.NewPointer(types.I8Ptr))
	lo, hi := llir.NewParam("lo", types.I64), llir.NewParam("hi", types.I64)
	f := mod.NewFunc(sym, types.Void, bufs, lo, hi)
	f.FuncAttrs = append(f.FuncAttrs, attrs...)
	return &kernelFrame{Func: f, Entry: f.NewBlock("entry"), Lo: lo, Hi: hi,
		Buf: func(b *llir.Block, i int, t types.Type) value.Value {
			raw := b.NewLoad(types.I8Ptr, b.NewGetElementPtr(types.I8Ptr, bufs, i64c(int64(i))))
			return b.NewBitCast(raw, t)
		}}
}

// mathSym is LLVM's intrinsic llvm.<name>.f32/f64, which llc lowers to an
// instruction or a libm call, or with libm the C function (name, or
// name+"f" for float).
func (cpuLowering) mathSym(name string, t types.Type, libm bool) string {
	if !libm {
		return "llvm." + name + "." + fsuffix(t)
	}
	if t.Equal(types.Float) {
		return name + "f"
	}
	return name
}

// alloc is malloc, or aligned_alloc when more than malloc's 16 bytes of
// alignment are asked for (its size rounded up to a multiple of align).
func (cpuLowering) alloc(b *llir.Block, decl declFunc, bytes value.Value, align int64) value.Value {
	if align <= 16 {
		return b.NewCall(decl("malloc", types.I8Ptr, types.I64), bytes)
	}
	var n value.Value
	if c, ok := bytes.(*constant.Int); ok {
		n = i64c((c.X.Int64() + align - 1) / align * align)
	} else {
		n = b.NewAnd(b.NewAdd(bytes, i64c(align-1)), i64c(-align))
	}
	return b.NewCall(decl("aligned_alloc", types.I8Ptr, types.I64, types.I64), i64c(align), n)
}

func (cpuLowering) release(b *llir.Block, decl declFunc, p value.Value) {
	b.NewCall(decl("free", types.Void, types.I8Ptr), p)
}

// defineFail is cold and noinline: write(2, msg, len), then abort().
func (cpuLowering) defineFail(mod *llir.Module, name string, decl declFunc) *llir.Func {
	write := decl("write", types.I64, types.I32, types.I8Ptr, types.I64)
	abort := decl("abort", types.Void)
	if !slices.Contains(abort.FuncAttrs, llir.FuncAttribute(enum.FuncAttrNoReturn)) {
		abort.FuncAttrs = append(abort.FuncAttrs, enum.FuncAttrNoReturn)
	}
	msg, n := llir.NewParam("msg", types.I8Ptr), llir.NewParam("len", types.I64)
	f := mod.NewFunc(name, types.Void, msg, n)
	f.Linkage = enum.LinkageInternal
	f.FuncAttrs = append(f.FuncAttrs, enum.FuncAttrCold, enum.FuncAttrNoInline, enum.FuncAttrNoReturn, enum.FuncAttrNoUnwind)
	b := f.NewBlock("entry")
	b.NewCall(write, constant.NewInt(types.I32, 2), msg, n)
	b.NewCall(abort)
	b.NewUnreachable()
	return f
}

// vectorAttrs are none: LLVM's defaults pick the vector width.
func (cpuLowering) vectorAttrs(vec int) []llir.FuncAttribute { return nil }

// widthAttrs make vectors of vec f32 lanes legal and preferred.
func widthAttrs(vec int) []llir.FuncAttribute {
	w := strconv.Itoa(32 * vec)
	return []llir.FuncAttribute{
		llir.AttrPair{Key: "min-legal-vector-width", Value: w},
		llir.AttrPair{Key: "prefer-vector-width", Value: w},
	}
}
