//go:build cuda

package cuda

import (
	"os"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/driver"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/backendtest"
)

// noGPU is Available's answer on a machine whose driver library loads but
// finds no GPU (CI's: scripts/cuda-sdk.sh's libcuda.so.1).
const noGPU = "cuda: no NVIDIA GPU found (cuInit: no device); use --backend cpu"

// needGPU skips t, with Available's reason, when there is no usable GPU;
// under CI=true only for that reason: a driver that fails otherwise (the
// stub library loaded, say) fails t. It needs LLVM unless $XLC_CUDA_PTX
// holds the tests' PTX.
func needGPU(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" && err.Error() != noGPU {
			t.Fatalf("CI=true: %v; want a driver that starts and finds no GPU (%s)", err, noGPU)
		}
		t.Skip(err)
	}
	if os.Getenv("XLC_CUDA_PTX") == "" {
		// Else PTX recorded beforehand (TestRecordPTX) stands in for LLVM.
		llvmtest.Require(t, codegen.ToolchainError())
	}
}

// loader loads f on the cuda backend for backendtest.
func loader(t testing.TB, f *ir.Func) runtime.Executable {
	t.Helper()
	x, err := Backend{}.Load(f)
	if err != nil {
		t.Fatalf("load @%s: %v", f.Name, err)
	}
	t.Cleanup(func() { x.(*Executable).Close() })
	return x
}

// TestNoGPU checks, where the driver library loads but there is no GPU
// (this test binary started, although gorgonia.org/cu's init exits the
// process when cuInit fails: the interposed cuInit reported success), that
// every entry point answers with one line saying so, and that a kernel
// target still resolves (bundles are built without a GPU).
func TestNoGPU(t *testing.T) {
	err := Available()
	if err == nil {
		t.Skip("a GPU is present")
	}
	if err.Error() != noGPU {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Available: %v, want %q", err, noGPU)
		}
		t.Skipf("no driver here: %v", err)
	}
	want := strings.TrimSuffix(noGPU, "; use --backend cpu")
	f, perr := ir.ParseFunc("func @f(%x: f32[4]) -> (r: f32[4]) {\n  %0 = neg %x : f32[4]\n  return %0\n}\n")
	if perr != nil {
		t.Fatal(perr)
	}
	sm80, _ := codegen.TargetFor("sm_80")
	for name, err := range map[string]error{
		"Load":          loadErr(Backend{}.Load(f)),
		"Prebuilt.Load": loadErr(Prebuilt{Target: sm80, PTX: map[*ir.Func]Module{f: {}}}.Load(f)),
		"Runs":          Runs(sm80),
	} {
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	if tg, err := Target(""); err != nil || tg.Name != "sm_80" {
		t.Errorf(`Target(""): %v, %v; want sm_80 without a GPU`, tg, err)
	}
}

func loadErr(_ runtime.Executable, err error) error { return err }

// TestOps runs every op in every dtype on the GPU against the interpreter.
func TestOps(t *testing.T) {
	needGPU(t)
	backendtest.Ops(t, loader)
}

// TestSpecialValues checks NaN, infinities, signed zeros, integer edge cases
// and f16/bf16 rounding on the GPU.
func TestSpecialValues(t *testing.T) {
	needGPU(t)
	backendtest.SpecialValues(t, loader)
}

// TestModelForward runs the MLP's and a tiny GPT's forward pass on the GPU.
func TestModelForward(t *testing.T) {
	needGPU(t)
	backendtest.ModelForward(t, loader)
}

// TestTrainStep trains a tiny GPT three steps on the GPU, unfused and fused
// (as xlc trains on cuda), against the interpreter.
func TestTrainStep(t *testing.T) {
	needGPU(t)
	for _, fuse := range []bool{false, true} {
		opt := driver.Options{Passes: passes.Options{Fuse: fuse, FusionFuel: passes.UnlimitedFuel}}
		backendtest.TrainStep(t, loader, backendtest.Model(t, "gpt", backendtest.TinyGPT, opt).Step)
	}
}

// TestResidentState checks the state kept on the device between steps
// against the state copied in and out of every step, bit for bit.
func TestResidentState(t *testing.T) {
	needGPU(t)
	opt := driver.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}}
	backendtest.ResidentState(t, loader, backendtest.Model(t, "gpt", backendtest.TinyGPT, opt).Step)
}

// TestRunKeptSwap feeds back two state values that live in each other's
// buffers.
func TestRunKeptSwap(t *testing.T) {
	needGPU(t)
	backendtest.RunKeptSwap(t, loader)
}
