package codegen

import (
	"strings"
	"testing"
)

// TestPTXTarget compiles a function with a large dot, scatter_add and f64
// sin for sm_90: every kernel is a ptx_kernel taking its buffers and unit
// count, indexed by the thread's position in the grid, the dot is the
// tiled one (shared memory, barriers; no CPU dot tile), sin is
// libdevice's, and no kernel needs the device heap (scatter_add is one
// thread per result element); the PTX targets sm_90 with one entry per
// kernel.
func TestPTXTarget(t *testing.T) {
	tg, err := TargetFor("h200")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Runs(); tg.CPU != "sm_90" || err == nil || !strings.Contains(err.Error(), "GPU target") {
		t.Fatalf("h200: target-cpu %q, Runs: %v", tg.CPU, tg.Runs())
	}
	p := compileTextFor(t, `func @f(%a: f32[64,64], %b: f32[64,64], %u: f32[4,64], %i: i32[4], %x: f64[64]) -> (r: f32[64,64], s: f32[16,64], y: f64[64]) {
  %0 = dot %a, %b {batch=[[],[]], contract=[[1],[0]]} : f32[64,64]
  %1 = exp %0 : f32[64,64]
  %2 = scatter_add %u, %i {axis=0} : f32[16,64]
  %3 = sin %x : f64[64]
  return %1, %2, %3
}`, tg)
	ll := p.LL
	for _, want := range []string{`target triple = "nvptx64-nvidia-cuda"`, "define ptx_kernel void @xlc_k0(i8** noalias readonly %bufs, i64 %n)",
		"@llvm.nvvm.read.ptx.sreg.ctaid.x()", "@llvm.nvvm.read.ptx.sreg.tid.x()", "@__nv_sin(", "@llvm.nvvm.barrier0()", "addrspace(3) global", `"target-cpu"="sm_90"`} {
		if !strings.Contains(ll, want) {
			t.Errorf("the module lacks %s", want)
		}
	}
	for _, bad := range []string{"xlc.gemm", "@llvm.sin.", "@malloc(", "@aligned_alloc", "@write", "i8** %bufs, i64 %lo, i64 %hi)"} {
		if strings.Contains(ll, bad) {
			t.Errorf("the module has %s", bad)
		}
	}
	if n := strings.Count(ll, "define ptx_kernel"); n != len(p.Kernels) {
		t.Errorf("%d ptx_kernels for %d kernels", n, len(p.Kernels))
	}
	if _, err := SharedObject(ll); err == nil || !strings.Contains(err.Error(), "Assemble") {
		t.Errorf("SharedObject of a PTX module: %v, want a refusal pointing to Assemble", err)
	}
	needTools(t)
	asm, err := Assemble(ll)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(asm, ".target sm_90") || strings.Count(asm, ".visible .entry ") != len(p.Kernels) {
		t.Errorf("PTX without .target sm_90 or one entry per kernel:\n%.600s", asm)
	}
}

// TestGPUEmulator checks the emulator's frame: each kernel is the GPU
// kernel function, internal, reading its special registers from the
// emulator's scheduler, whose entry an exported CPU frame calls with the
// kernel's launch and its range of blocks (runtime/cpu's tests, run with
// XLC_CPU=gpu-emu, compare its results with the interpreter).
func TestGPUEmulator(t *testing.T) {
	tg, err := TargetFor("gpu-emu")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Runs(); err != nil && !strings.Contains(err.Error(), "lacks") {
		t.Fatalf("gpu-emu does not run on this x86-64 host: %v", err)
	}
	p := compileTextFor(t, `func @f(%x: f32[64,64]) -> (r: f32[64,64]) {
  %0 = exp %x : f32[64,64]
  return %0
}`, tg)
	for _, want := range []string{"define internal void @xlc_k0.thread(i8** noalias readonly %bufs, i64 %n)",
		"define void @xlc_k0(i8** %bufs, i64 %lo, i64 %hi)", "call i32 @xlc_emu_sreg(i32 0)",
		"call void @xlc_emu_run(void (i8**, i64)* @xlc_k0.thread, i8** %bufs, i64 ", "i64 %lo, i64 %hi, i32 256, i32 16, i32 0)"} {
		if !strings.Contains(p.LL, want) {
			t.Errorf("the module lacks %s", want)
		}
	}
	if strings.Contains(p.LL, "ptx_kernel") || strings.Contains(p.LL, "llvm.nvvm") {
		t.Error("the emulator's module keeps a GPU-only construct")
	}
	if k := p.Kernels[0]; k.Extent != 16 || k.Grid != 16 || k.Threads != 256 {
		t.Errorf("kernel 0: extent %d, grid %d, threads %d; want 16 blocks of 256 threads", k.Extent, k.Grid, k.Threads)
	}
}
