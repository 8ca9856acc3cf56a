package codegen

import (
	"strings"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// A lowering is how kernels meet one kind of machine: the exported entry
// that receives the buffers and the range of units, the functions that
// compute math, where scratch memory comes from, how a kernel that cannot
// go on stops, and the tools' settings. The emitters build a kernel's body
// and ask the target's lowering for the rest, so that a new kind of
// machine (a GPU) is one more implementation, as Go's ssa.Config holds one
// set of lowering functions per architecture.
type lowering interface {
	// frame adds to mod the exported kernel sym with attrs and returns
	// its entry block, from which the caller reads its buffers and range.
	frame(mod *llir.Module, sym string, attrs []llir.FuncAttribute) *kernelFrame
	// mathSym names the function computing name (exp, log, sqrt, fma,
	// copysign... as LLVM names its intrinsics) on floats of type t;
	// libm asks for the C library's function where LLVM has no intrinsic
	// (tanh, erf).
	mathSym(name string, t types.Type, libm bool) string
	// alloc emits in b a request for bytes (an i64) of scratch memory
	// aligned to align bytes; the result, an i8 pointer, is null when
	// there is none. release gives it back.
	alloc(b *llir.Block, decl declFunc, bytes value.Value, align int64) value.Value
	release(b *llir.Block, decl declFunc, p value.Value)
	// defineFail adds to mod the internal function name(i8 *msg, i64 len)
	// that reports msg and stops the kernel; it never returns.
	defineFail(mod *llir.Module, name string, decl declFunc) *llir.Func
	// vectorAttrs are the function attributes that let the fast dot use
	// vectors of vec f32 lanes.
	vectorAttrs(vec int) []llir.FuncAttribute
	// tools returns opt's flags and the libraries a shared object links.
	tools() (opt, link []string)
}

// declFunc returns a module's declaration of an external function or an
// intrinsic, adding it on first use.
type declFunc func(name string, ret types.Type, params ...types.Type) *llir.Func

// A kernelFrame is a kernel's exported function as its lowering made it:
// code appended to Entry reads buffer i's pointer with Buf and runs the
// units [Lo, Hi).
type kernelFrame struct {
	Func   *llir.Func
	Entry  *llir.Block
	Lo, Hi value.Value
	// Buf loads, in block b, the pointer to buffer i as type t.
	Buf func(b *llir.Block, i int, t types.Type) value.Value
	// Launch, when not nil, completes a GPU kernel's frame once its launch
	// is known: n units (threads) in grid blocks of threads, coop when the
	// threads synchronize.
	Launch func(n int64, threads, grid int, coop bool)
	// Stride, when set, makes the frame a grid-stride loop: the thread
	// runs units Lo, Lo+Stride, ... below N, each as [u, u+1).
	Stride, N value.Value
}

// callBody makes f's frame call body with each buffer's pointer, typed as
// body's parameters, then lo and hi, and return.
func (f *kernelFrame) callBody(body *llir.Func) {
	ps := body.Params[:len(body.Params)-2]
	var args []value.Value
	for i, p := range ps {
		args = append(args, f.Buf(f.Entry, i, p.Typ))
	}
	if f.Stride == nil {
		f.Entry.NewCall(body, append(args, f.Lo, f.Hi)...)
		f.Entry.NewRet(nil)
		return
	}
	head, step, exit := f.Func.NewBlock("unit.head"), f.Func.NewBlock("unit.body"), f.Func.NewBlock("unit.exit")
	f.Entry.NewBr(head)
	u := head.NewPhi(llir.NewIncoming(f.Lo, f.Entry))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, u, f.N), step, exit)
	step.NewCall(body, append(args, u, step.NewAdd(u, i64c(1)))...)
	u.Incs = append(u.Incs, llir.NewIncoming(step.NewAdd(u, f.Stride), step))
	step.NewBr(head)
	exit.NewRet(nil)
}

// lowerings are the lowerings by architecture (GOARCH names).
var lowerings = map[string]lowering{"amd64": x86Lowering{}, "arm64": armLowering{}, "nvptx64": ptxLowering{}}

// lower returns t's lowering.
func (t *Target) lower() lowering {
	if t.Emulates != "" {
		return ptxLowering{emu: true}
	}
	return lowerFor(t.Arch)
}

// lowerFor returns the lowering of an architecture; x86-64's for one it
// does not know.
func lowerFor(arch string) lowering {
	if l, ok := lowerings[arch]; ok {
		return l
	}
	return x86Lowering{}
}

// archOf is the GOARCH name of a target triple's architecture, or "".
func archOf(triple string) string {
	return map[string]string{"x86_64": "amd64", "aarch64": "arm64", "nvptx64": "nvptx64"}[strings.Split(triple, "-")[0]]
}
