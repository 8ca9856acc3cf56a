package codegen

import (
	"regexp"
	"strings"
	"testing"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// tagLowering is a lowering of its own kind, as a new machine's would be:
// its frame takes the buffers and a unit count, and its math, scratch
// memory and failure go through functions named "tag.*".
type tagLowering struct{ x86Lowering }

func (tagLowering) frame(mod *llir.Module, sym string, attrs []llir.FuncAttribute) *kernelFrame {
	bufs := llir.NewParam("bufs", types.NewPointer(types.I8Ptr))
	n := llir.NewParam("n", types.I32)
	f := mod.NewFunc(sym, types.Void, bufs, n)
	f.FuncAttrs = append(f.FuncAttrs, attrs...)
	b := f.NewBlock("entry")
	return &kernelFrame{Func: f, Entry: b, Lo: i64c(0), Hi: b.NewSExt(n, types.I64),
		Buf: func(b *llir.Block, i int, t types.Type) value.Value {
			return b.NewBitCast(b.NewLoad(types.I8Ptr, b.NewGetElementPtr(types.I8Ptr, bufs, i64c(int64(i)))), t)
		}}
}

func (tagLowering) mathSym(name string, t types.Type, libm bool) string {
	return "tag." + name + "." + fsuffix(t)
}

func (tagLowering) alloc(b *llir.Block, decl declFunc, bytes value.Value, align int64) value.Value {
	return b.NewCall(decl("tag.alloc", types.I8Ptr, types.I64, types.I64), bytes, i64c(align))
}

func (tagLowering) release(b *llir.Block, decl declFunc, p value.Value) {
	b.NewCall(decl("tag.free", types.Void, types.I8Ptr), p)
}

func (tagLowering) defineFail(mod *llir.Module, name string, decl declFunc) *llir.Func {
	msg, n := llir.NewParam("msg", types.I8Ptr), llir.NewParam("len", types.I64)
	f := mod.NewFunc(name, types.Void, msg, n)
	f.Linkage = enum.LinkageInternal
	b := f.NewBlock("entry")
	b.NewCall(decl("tag.trap", types.Void))
	b.NewUnreachable()
	return f
}

// TestLoweringHooks checks that a kernel meets its machine only through
// its target's lowering: with another lowering, no kernel keeps the CPU's
// frame, and nothing calls libm, LLVM's math intrinsics or the C heap.
// The function has a fast dot (packing buffers), a scatter_add
// (accumulators), f32 exp, log, tanh and erf (vmath's polynomials), and
// normal random numbers and sin in double (math calls).
func TestLoweringHooks(t *testing.T) {
	lowerings["tag"] = tagLowering{}
	defer delete(lowerings, "tag")
	tg, err := TargetFor("x86-64-v3")
	if err != nil {
		t.Fatal(err)
	}
	tg.Arch = "tag"
	p := compileTextFor(t, `func @f(%a: f32[64,64], %b: f32[64,64], %u: f32[4,64], %i: i32[4], %k: i64[]) -> (r: f32[64,64], s: f32[16,64], z: f32[64], w: f64[64]) {
  %0 = dot %a, %b {batch=[[],[]], contract=[[1],[0]]} : f32[64,64]
  %1 = exp %0 : f32[64,64]
  %2 = log %1 : f32[64,64]
  %3 = tanh %2 : f32[64,64]
  %4 = erf %3 : f32[64,64]
  %5 = scatter_add %u, %i {axis=0} : f32[16,64]
  %6 = rng %k {dist=normal, stream=1} : f32[64]
  %7 = convert %6 : f64[64]
  %8 = sin %7 : f64[64]
  return %4, %5, %6, %8
}`, tg)
	ll := p.LL
	for _, c := range []string{"tag.alloc", "tag.free", "tag.trap", "tag.log.f64", "tag.cos.f64", "tag.sin.f64"} {
		if !strings.Contains(ll, "@"+c) {
			t.Errorf("the module does not call %s", c)
		}
	}
	for _, bad := range []string{"@malloc", "@aligned_alloc", "@free", "@write", "@abort", "@llvm.exp.", "@llvm.log.", "@llvm.sin.", "@llvm.cos.", "@tanh", "@erf", "i8** %bufs, i64 %lo"} {
		if strings.Contains(ll, bad) {
			t.Errorf("the module still has %s", bad)
		}
	}
	exported := regexp.MustCompile(`(?m)^define void @(\S+)\((.*)\)`)
	ms := exported.FindAllStringSubmatch(ll, -1)
	if len(ms) != len(p.Kernels) {
		t.Errorf("%d exported functions, want one per kernel (%d)", len(ms), len(p.Kernels))
	}
	for _, m := range ms {
		if m[2] != "i8** %bufs, i32 %n" {
			t.Errorf("kernel %s(%s) is not in the lowering's frame", m[1], m[2])
		}
	}
	needTools(t)
	if _, err := Assemble(ll); err != nil {
		t.Error(err)
	}
}
