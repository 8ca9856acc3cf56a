// Package cuda is the CUDA backend: it lowers a function to PTX with
// codegen (one kernel per instruction or fusion, the same kernel table as
// runtime/cpu) and runs it on the first NVIDIA GPU through the driver API
// (gorgonia.org/cu, with a little cgo where cu lacks a call).
//
// It mirrors runtime/cpu: one device arena laid out by the buffer plan
// (parameters, then the planned arena; aliases share their operand's
// buffer; donated results are written in place), kernels run in
// instruction order on one stream, Run copies arguments in and results
// out, RunKept (runtime.Resident) keeps a train step's weights and
// optimizer state on the device between steps, Result and Close. The
// step's launches are captured once as a CUDA graph and replayed
// (XLC_CUDA_GRAPH=0 launches them one by one; XLC_DEBUG=1 also
// synchronizes after each kernel to name one that fails; XLC_DEBUG=2
// prints each kernel's device time, profile.go).
//
// The driver code is built only with -tags cuda (the binary then links
// libcuda.so.1). Without the tag, and on a machine without a GPU,
// Available says why in one line and Load fails with it.
package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"xlc/codegen"
	"xlc/internal/atomicfile"
	"xlc/ir"
	"xlc/runtime"
)

// Backend runs functions on GPU 0.
type Backend struct {
	// GPU names the target (codegen.TargetFor: sm_80, sm_90, a100, h100,
	// h200); "" means the device's compute capability: sm_90 for 9.x and
	// later, sm_80 for 8.x.
	GPU string
}

var _ runtime.Backend = Backend{}

// Name is "cuda".
func (Backend) Name() string { return "cuda" }

// Load compiles f for the GPU (codegen.Compile, codegen.Assemble: needs
// LLVM), loads the PTX, which the driver compiles for the device, and
// allocates f's buffers on the device. The caller closes the result.
func (b Backend) Load(f *ir.Func) (runtime.Executable, error) {
	t, err := Target(b.GPU)
	if err != nil {
		return nil, err
	}
	if err := Runs(t); err != nil {
		return nil, err
	}
	prog, err := codegen.Compile(f, codegen.Options{Target: t})
	if err != nil {
		return nil, err
	}
	for _, w := range prog.Warnings {
		fmt.Fprintln(os.Stderr, "xlc: warning: cuda:", w)
	}
	ptx, err := PTX(prog.LL)
	if err != nil {
		return nil, err
	}
	return load(f, prog, ptx)
}

// PTX assembles a GPU module (codegen.Program.LL) with LLVM: codegen.Assemble,
// refusing a module that calls CUDA's libdevice functions where libdevice
// is not installed, whose PTX the driver could not load. With
// $XLC_CUDA_PTX a folder, it is a cache of <sha256 of ll>.ptx files read
// before LLVM runs and written after: how the GPU tests run on a machine
// without LLVM, from PTX recorded beforehand (TestRecordPTX).
func PTX(ll string) (string, error) {
	dir := os.Getenv("XLC_CUDA_PTX")
	sum := sha256.Sum256([]byte(ll))
	path := filepath.Join(dir, hex.EncodeToString(sum[:])+".ptx")
	if dir != "" {
		if b, err := os.ReadFile(path); err == nil {
			return string(b), nil
		}
		if codegen.ToolchainError() != nil {
			// A machine without LLVM runs from recorded PTX alone.
			return "", fmt.Errorf("cuda: XLC_CUDA_PTX=%s has no %s, and LLVM is not here to make it (record it with TestRecordPTX where LLVM is)", dir, filepath.Base(path))
		}
	}
	if strings.Contains(ll, "@__nv_") && codegen.Libdevice() == "" {
		return "", fmt.Errorf("cuda: the kernels call CUDA's libdevice, which is not installed: eval \"$(scripts/cuda-sdk.sh)\" (XLC_LIBDEVICE) or apt-get install nvidia-cuda-toolkit")
	}
	ptx, err := codegen.Assemble(ll)
	if err != nil || dir == "" {
		return ptx, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cuda: XLC_CUDA_PTX: %v", err)
	}
	if err := atomicfile.Write(path, []byte(ptx), 0o644); err != nil {
		return "", fmt.Errorf("cuda: XLC_CUDA_PTX: %v", err)
	}
	return ptx, nil
}

// Module is a function's kernels compiled earlier for a GPU target (a
// bundle's): PTX is codegen.Assemble's text of the module whose SHA-256
// (hex) is LLSum.
type Module struct {
	PTX   string
	LLSum string
}

// Prebuilt is a Backend named "cuda" that loads each function from its
// prebuilt PTX (a bundle's) instead of compiling it: no LLVM tool runs.
// The kernel table is codegen.Compile's for the function and Target
// (deterministic), checked against LLSum, so PTX from another xlc version
// is refused.
type Prebuilt struct {
	Target *codegen.Target
	PTX    map[*ir.Func]Module
}

var _ runtime.Backend = Prebuilt{}

// Name is "cuda".
func (Prebuilt) Name() string { return "cuda" }

// Load loads f from its module in PTX.
func (p Prebuilt) Load(f *ir.Func) (runtime.Executable, error) {
	m, ok := p.PTX[f]
	if !ok || p.Target == nil {
		return nil, fmt.Errorf("cuda: @%s: no prebuilt kernels for this function", f.Name)
	}
	if err := Runs(p.Target); err != nil {
		return nil, err
	}
	prog, err := codegen.Compile(f, codegen.Options{Target: p.Target})
	if err != nil {
		return nil, err
	}
	if s := sha256.Sum256([]byte(prog.LL)); hex.EncodeToString(s[:]) != m.LLSum {
		return nil, fmt.Errorf("cuda: @%s: the prebuilt kernels were generated by another version of xlc; rebuild them with this one", f.Name)
	}
	return load(f, prog, m.PTX)
}

// Available reports, in one line ending in what to do instead, why this
// xlc cannot run the cuda backend here (built without CUDA, no driver, no
// GPU); nil when it can.
func Available() error {
	if err := available(); err != nil {
		return fmt.Errorf("%v; use --backend cpu", err)
	}
	return nil
}

// Target is the codegen target of a GPU name (sm_80, sm_90, a100, h100,
// h200). "" means GPU 0's compute capability (sm_90 for 9.x and later,
// sm_80 for 8.x) and, without a usable GPU, sm_80, whose PTX the driver
// compiles for any later GPU too.
func Target(gpu string) (*codegen.Target, error) {
	if gpu == "" {
		gpu = "sm_80"
		if major, _, _, err := device(); err == nil && major >= 9 {
			gpu = "sm_90"
		}
	}
	t, err := codegen.TargetFor(gpu)
	if err != nil || !t.GPU() {
		return nil, fmt.Errorf("cuda: GPU %q: want sm_80, sm_90, a100, h100 or h200", gpu)
	}
	return t, nil
}

// Runs reports, in one line, why GPU 0 cannot run kernels compiled for
// GPU target t: no CUDA in this xlc, no GPU, or a GPU of a lower compute
// capability than t's (PTX for sm_90 does not load on an 8.x GPU).
func Runs(t *codegen.Target) error {
	if t == nil || !t.GPU() {
		return fmt.Errorf("cuda: not a GPU target")
	}
	if err := available(); err != nil {
		return err
	}
	major, minor, name, err := device()
	if err != nil {
		return err
	}
	need, _ := strconv.Atoi(t.CPU[len("sm_"):])
	if have := major*10 + minor; have < need {
		return fmt.Errorf("cuda: kernels for %s need a GPU of compute capability %d.%d or later; GPU 0 (%s) is %d.%d", t.Name, need/10, need%10, name, major, minor)
	}
	return nil
}
