package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"
)

// The GPU targets: NVIDIA GPUs through LLVM's NVPTX backend, which turns a
// module into PTX (Assemble). A class is a compute capability; the CUDA
// runtime that loads the PTX is the CUDA backend's.
var (
	ptxTriple = "nvptx64-nvidia-cuda"
	ptxLayout = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"

	gpuClasses = map[string]Target{
		"sm_80": {Arch: "nvptx64", Triple: ptxTriple, DataLayout: ptxLayout, CPU: "sm_80", Vec: 1, FMA: true},
		"sm_90": {Arch: "nvptx64", Triple: ptxTriple, DataLayout: ptxLayout, CPU: "sm_90", Vec: 1, FMA: true},
	}

	gpuNames = map[string]string{"a100": "sm_80", "h100": "sm_90", "h200": "sm_90"}
)

// GPU reports whether t is a GPU target (its kernels are PTX).
func (t *Target) GPU() bool { return t.Arch == "nvptx64" }

// ptxLowering frames each kernel as a ptx_kernel of one unit of its range
// per thread, computes math with NVPTX's native intrinsics or libdevice's
// __nv_ functions, takes scratch memory from the device heap and stops a
// failing kernel with a trap.
type ptxLowering struct{}

// frame is the kernel void sym(i8 **bufs, i64 n): bufs is a device array
// of the buffers' device addresses, and thread ctaid.x·ntid.x + tid.x runs
// unit [gid, gid+1) of the range [0, n), none when gid ≥ n.
func (ptxLowering) frame(mod *llir.Module, sym string, attrs []llir.FuncAttribute) *kernelFrame {
	bufs := llir.NewParam("bufs", types.NewPointer(types.I8Ptr))
	n := llir.NewParam("n", types.I64)
	f := mod.NewFunc(sym, types.Void, bufs, n)
	f.CallingConv = enum.CallingConvPTXKernel
	f.FuncAttrs = append(f.FuncAttrs, attrs...)
	b := f.NewBlock("entry")
	sreg := func(name string) value.Value {
		r := b.NewCall(declareIn(mod, "llvm.nvvm.read.ptx.sreg."+name, types.I32))
		return b.NewZExt(r, types.I64)
	}
	gid := b.NewAdd(b.NewMul(sreg("ctaid.x"), sreg("ntid.x")), sreg("tid.x"))
	hi := b.NewSelect(b.NewICmp(enum.IPredSLT, gid, n), b.NewAdd(gid, i64c(1)), gid)
	return &kernelFrame{Func: f, Entry: b, Lo: gid, Hi: hi,
		Buf: func(b *llir.Block, i int, t types.Type) value.Value {
			raw := b.NewLoad(types.I8Ptr, b.NewGetElementPtr(types.I8Ptr, bufs, i64c(int64(i))))
			return b.NewBitCast(raw, t)
		}}
}

// ptxNative are the math intrinsics NVPTX lowers to instructions; the
// others are libdevice's functions.
var ptxNative = map[string]bool{"sqrt": true, "fabs": true, "fma": true, "copysign": true,
	"minnum": true, "maxnum": true, "floor": true, "ceil": true, "trunc": true, "rint": true}

func (ptxLowering) mathSym(name string, t types.Type, libm bool) string {
	if ptxNative[name] {
		return "llvm." + name + "." + fsuffix(t)
	}
	if t.Equal(types.Float) {
		return "__nv_" + name + "f"
	}
	return "__nv_" + name
}

// alloc is the device heap's malloc (16-byte aligned); no GPU kernel asks
// for more alignment.
func (ptxLowering) alloc(b *llir.Block, decl declFunc, bytes value.Value, align int64) value.Value {
	if align > 16 {
		fail("the device heap gives 16-byte alignment, not %d", align)
	}
	return b.NewCall(decl("malloc", types.I8Ptr, types.I64), bytes)
}

func (ptxLowering) release(b *llir.Block, decl declFunc, p value.Value) {
	b.NewCall(decl("free", types.Void, types.I8Ptr), p)
}

// defineFail traps: the launch fails and the runtime reports the kernel.
func (ptxLowering) defineFail(mod *llir.Module, name string, decl declFunc) *llir.Func {
	msg, n := llir.NewParam("msg", types.I8Ptr), llir.NewParam("len", types.I64)
	f := mod.NewFunc(name, types.Void, msg, n)
	f.Linkage = enum.LinkageInternal
	f.FuncAttrs = append(f.FuncAttrs, enum.FuncAttrCold, enum.FuncAttrNoInline, enum.FuncAttrNoReturn, enum.FuncAttrNoUnwind)
	b := f.NewBlock("entry")
	b.NewCall(decl("llvm.trap", types.Void))
	b.NewUnreachable()
	return f
}

func (ptxLowering) vectorAttrs(vec int) []llir.FuncAttribute { return nil }

func (ptxLowering) tools() (opt, link []string) { return []string{"-O3"}, nil }

// ptxLLCFlags are llc's settings for a PTX module: the compute capability its
// functions name (target-cpu) and PTX ISA 7.8, which CUDA 11.8's ptxas
// and every later driver read.
func ptxLLCFlags(ll string) []string {
	cpu := "sm_80"
	if m := targetCPU.FindStringSubmatch(ll); m != nil && strings.HasPrefix(m[1], "sm_") {
		cpu = m[1]
	}
	return []string{"-mcpu=" + cpu, "-mattr=+ptx78"}
}

var targetCPU = regexp.MustCompile(`"target-cpu"="([^"]+)"`)

// Libdevice is the path of CUDA's libdevice (the __nv_ math functions as
// LLVM bitcode): $XLC_LIBDEVICE, else where Debian's nvidia-cuda-toolkit
// or NVIDIA's CUDA installs it; "" when there is none.
func Libdevice() string {
	for _, p := range []string{os.Getenv("XLC_LIBDEVICE"),
		"/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc", "/usr/local/cuda/nvvm/libdevice/libdevice.10.bc"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// linkLibdevice links into the bitcode file bc, in place, the libdevice
// functions the module text ll calls, internalized, and optimizes the
// result again (NVVMReflect resolves libdevice's per-target branches). A
// module that calls none, or a machine without libdevice, keeps bc as it
// is: the PTX then declares the functions it needs.
func linkLibdevice(ll, bc, dir string) error {
	lib := Libdevice()
	if lib == "" || !strings.Contains(ll, "@__nv_") {
		return nil
	}
	link, err := exec.LookPath(linkTool)
	if err != nil {
		return fmt.Errorf("codegen: %s not found in PATH: install the Debian package llvm-19", linkTool)
	}
	linked := filepath.Join(dir, "linked.bc")
	if err := runTool([]string{link, "--only-needed", "--internalize", bc, lib, "-o", linked}); err != nil {
		return err
	}
	return runTool([]string{toolInfo.opt, "-O3", linked, "-o", bc})
}

const linkTool = "llvm-link-19"
