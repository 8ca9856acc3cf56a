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
		// The emulator: the GPU lowering's kernels as x86-64-v3 code that
		// runtime/cpu runs, each unit a simulated thread.
		"gpu-emu": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v3",
			Features: v3Features, Vec: 1, Regs: 16, FMA: true, L1: 32 << 10, L2: 512 << 10, Emulates: "sm_80"},
	}

	gpuNames = map[string]string{"a100": "sm_80", "h100": "sm_90", "h200": "sm_90"}
)

// GPU reports whether t is a GPU target (its kernels are PTX).
func (t *Target) GPU() bool { return t.Arch == "nvptx64" }

// ptxLowering frames each kernel as a ptx_kernel run by Kernel.Threads
// threads per block, computes math with NVPTX's native intrinsics or
// libdevice's __nv_ functions, takes scratch memory from the device heap
// and stops a failing kernel with a trap. Thread and block indices,
// barriers, warp shuffles and shared memory are gpuOps (gpu.go).
//
// With emu set it is the host emulator's: the same kernel function,
// internal, its gpuOps calls into the emulator's scheduler (emurt/emu.c,
// linked into the shared object), under an exported CPU frame sym(bufs,
// lo, hi) that runs blocks lo..hi; math, failure and tools are the x86-64
// CPU's.
type ptxLowering struct{ emu bool }

// gpuBlock is the threads per block of a kernel that runs one unit of its
// range per thread.
const gpuBlock = 256

// GPUUnitGrid is the most blocks such a kernel is launched with: a few
// waves of an H100's or H200's resident threads, each looping over units
// a grid apart (the frame's grid-stride loop). Tests lower it to make the
// threads loop at small sizes.
var GPUUnitGrid = 4096

// launchOf is k's launch configuration: a block kernel's (k.Threads set by
// its emitter) runs Extent threads, every one of its blocks; a unit
// kernel's, gpuBlock threads a block and at most GPUUnitGrid blocks.
func launchOf(k Kernel) (grid, threads int) {
	if k.Threads != 0 {
		return int((k.Extent + int64(k.Threads) - 1) / int64(k.Threads)), k.Threads
	}
	return int(min((k.Extent+gpuBlock-1)/gpuBlock, int64(GPUUnitGrid))), gpuBlock
}

// frame is the kernel void sym(i8 **bufs, i64 n): bufs is a device array
// of the buffers' device addresses, and thread gid = ctaid.x·ntid.x + tid.x
// runs units gid, gid + nctaid.x·ntid.x, ... of the range [0, n). A block
// kernel's body reads its indices itself and ignores the unit; its grid
// covers n, so each thread runs it once. bufs is
// noalias and readonly, so that its loads can move to their uses (a
// kernel of 196 buffers otherwise holds them all in registers).
func (l ptxLowering) frame(mod *llir.Module, sym string, attrs []llir.FuncAttribute) *kernelFrame {
	bufs := llir.NewParam("bufs", types.NewPointer(types.I8Ptr))
	bufs.Attrs = append(bufs.Attrs, enum.ParamAttrNoAlias, enum.ParamAttrReadOnly)
	n := llir.NewParam("n", types.I64)
	name := sym
	if l.emu {
		name = sym + ".thread"
	}
	f := mod.NewFunc(name, types.Void, bufs, n)
	f.CallingConv = enum.CallingConvPTXKernel
	fr := &kernelFrame{Func: f}
	if l.emu {
		f.CallingConv, f.Linkage = enum.CallingConvNone, enum.LinkageInternal
		fr.Launch = func(n int64, threads, grid int, coop bool) {
			emuFrame(mod, sym, f, attrs, n, threads, grid, coop)
		}
	}
	f.FuncAttrs = append(f.FuncAttrs, attrs...)
	b := f.NewBlock("entry")
	sreg := func(name string) value.Value {
		return b.NewZExt(l.sreg(mod, b, name), types.I64)
	}
	gid := b.NewAdd(b.NewMul(sreg("ctaid.x"), sreg("ntid.x")), sreg("tid.x"))
	hi := b.NewSelect(b.NewICmp(enum.IPredSLT, gid, n), b.NewAdd(gid, i64c(1)), gid)
	fr.Entry, fr.Lo, fr.Hi = b, gid, hi
	fr.Stride, fr.N = b.NewMul(sreg("nctaid.x"), sreg("ntid.x")), n
	fr.Buf = func(b *llir.Block, i int, t types.Type) value.Value {
		raw := b.NewLoad(types.I8Ptr, b.NewGetElementPtr(types.I8Ptr, bufs, i64c(int64(i))))
		return b.NewBitCast(raw, t)
	}
	return fr
}

// ptxNative are the math intrinsics NVPTX lowers to instructions; the
// others are libdevice's functions.
var ptxNative = map[string]bool{"sqrt": true, "fabs": true, "fma": true, "copysign": true,
	"minnum": true, "maxnum": true, "floor": true, "ceil": true, "trunc": true, "rint": true}

func (l ptxLowering) mathSym(name string, t types.Type, libm bool) string {
	if l.emu {
		return cpuLowering{}.mathSym(name, t, libm)
	}
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
func (l ptxLowering) defineFail(mod *llir.Module, name string, decl declFunc) *llir.Func {
	if l.emu {
		return cpuLowering{}.defineFail(mod, name, decl)
	}
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

func (l ptxLowering) tools() (opt, link []string) {
	if l.emu {
		return x86Lowering{}.tools()
	}
	return []string{"-O3"}, nil
}

// emuFrame adds the emulator's exported void sym(i8 **bufs, i64 lo, i64
// hi), which runs blocks lo..hi of kernel function k (grid blocks of
// threads threads, n its unit count) on the emulator's scheduler; coop
// says whether k synchronizes its threads (barriers or shuffles).
func emuFrame(mod *llir.Module, sym string, k *llir.Func, attrs []llir.FuncAttribute, n int64, threads, grid int, coop bool) {
	bufs := llir.NewParam("bufs", types.NewPointer(types.I8Ptr))
	lo, hi := llir.NewParam("lo", types.I64), llir.NewParam("hi", types.I64)
	f := mod.NewFunc(sym, types.Void, bufs, lo, hi)
	f.FuncAttrs = append(f.FuncAttrs, attrs...)
	b := f.NewBlock("entry")
	run := declareIn(mod, emuRun, types.Void, k.Type(), types.NewPointer(types.I8Ptr), types.I64, types.I64, types.I64, types.I32, types.I32, types.I32)
	c := int64(0)
	if coop {
		c = 1
	}
	b.NewCall(run, k, bufs, i64c(n), lo, hi, i32c(int64(threads)), i32c(int64(grid)), i32c(c))
	b.NewRet(nil)
}

// emuRun is the emulator scheduler's entry (emurt/emu.c); a module that
// calls it links the scheduler in (SharedObject).
const emuRun = "xlc_emu_run"

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
