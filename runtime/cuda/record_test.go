package cuda

import (
	"os"
	"testing"

	"xlc/codegen"
	"xlc/driver"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/backendtest"
	"xlc/runtime/cpu"
)

// TestRecordPTX writes into $XLC_CUDA_PTX the PTX of every function the
// GPU tests load, for the GPU $XLC_CUDA_PTX_GPU (sm_90 when unset), so
// that they run on a GPU machine without LLVM (scripts/gpu-prepare.sh
// carries the folder). It runs the same checks with the cpu backend
// standing in for the GPU, which needs no GPU; skipped without
// $XLC_CUDA_PTX.
func TestRecordPTX(t *testing.T) {
	if os.Getenv("XLC_CUDA_PTX") == "" {
		t.Skip("XLC_CUDA_PTX is not set")
	}
	llvmtest.Require(t, codegen.ToolchainError())
	gpu := os.Getenv("XLC_CUDA_PTX_GPU")
	if gpu == "" {
		gpu = "sm_90"
	}
	tg, err := codegen.TargetFor(gpu)
	if err != nil || !tg.GPU() {
		t.Fatalf("XLC_CUDA_PTX_GPU=%s: not a GPU target (%v)", gpu, err)
	}
	record := func(t testing.TB, f *ir.Func) runtime.Executable {
		t.Helper()
		p, err := codegen.Compile(f, codegen.Options{Target: tg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := PTX(p.LL); err != nil {
			t.Fatal(err)
		}
		x, err := cpu.Backend{}.LoadExec(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x
	}
	backendtest.Ops(t, record)
	backendtest.SpecialValues(t, record)
	backendtest.ModelForward(t, record)
	fused := driver.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}}
	for _, opt := range []driver.Options{{}, fused} {
		backendtest.TrainStep(t, record, backendtest.Model(t, "gpt", backendtest.TinyGPT, opt).Step)
	}
	backendtest.ResidentState(t, record, backendtest.Model(t, "gpt", backendtest.TinyGPT, fused).Step)
	backendtest.RunKeptSwap(t, record)
}
