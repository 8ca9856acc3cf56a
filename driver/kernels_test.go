package driver

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
)

// kernelModels are every model of models/ in configurations whose products
// are large enough for the fast dot, for the kernel goldens and the
// cross-target builds.
var kernelModels = []modelCase{
	{"gpt", "gpt", defs("layers", "1", "d", "64", "heads", "2", "seq", "32", "batch", "2")},
	{"gpt_deepnorm_tied_tanh", "gpt", defs("layers", "2", "d", "64", "heads", "2", "seq", "32", "batch", "2", "norm", "deepnorm", "tie", "true", "gelu_approx", "tanh")},
	{"bert", "bert", defs("layers", "1", "d", "64", "heads", "2", "seq", "32", "batch", "2")},
	{"gpt_bf16", "gpt", defs("layers", "1", "d", "64", "heads", "2", "seq", "32", "batch", "2", "precision", "bf16")},
	{"mlp", "mlp", nil},
}

// kernelTargets are the targets whose modules the goldens pin, with two
// parallel parts so that the modules do not depend on the host.
var kernelTargets = []string{"x86-64-v3", "x86-64-v4", "aarch64", "sm_80"}

// compileKernelModels compiles each kernel model's train step and forward
// pass as the backends do (attention and its backward as one kernel each)
// and lowers both for every kernel target: name → target → [step,
// forward] module texts.
func compileKernelModels(t *testing.T) map[string]map[string][2]string {
	t.Helper()
	out := map[string]map[string][2]string{}
	for _, c := range kernelModels {
		m := compileFusedAttention(t, c)
		out[c.name] = map[string][2]string{}
		for _, name := range kernelTargets {
			tg, err := codegen.TargetFor(name)
			if err != nil {
				t.Fatal(err)
			}
			tg.Parts = 2
			var lls [2]string
			for i, f := range []*ir.Func{m.Step, m.Eval} {
				p, err := codegen.Compile(f, codegen.Options{Target: tg})
				if err != nil {
					t.Fatalf("%s for %s: %v", c.name, name, err)
				}
				lls[i] = p.LL
			}
			out[c.name][name] = lls
		}
	}
	return out
}

// TestKernelGoldens pins the SHA-256 of every kernel model's LLVM modules
// for each kernel target in testdata/kernels/<model>.txt, so that a change
// meant to leave the generated code alone shows that it did (go test
// ./build -update rewrites them; a changed line is a changed module).
func TestKernelGoldens(t *testing.T) {
	mods := compileKernelModels(t)
	for _, c := range kernelModels {
		var b strings.Builder
		for _, name := range kernelTargets {
			for i, kind := range []string{"step", "forward"} {
				fmt.Fprintf(&b, "%s %s %x\n", name, kind, sha256.Sum256([]byte(mods[c.name][name][i])))
			}
		}
		golden := filepath.Join("../testdata/kernels", c.name+".txt")
		if *updateReplay {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test ./driver -update writes it)", err)
		}
		if string(want) != b.String() {
			t.Errorf("%s: the generated modules differ from %s (go test ./driver -update rewrites it):\nhave:\n%swant:\n%s", c.name, golden, b.String(), want)
		}
	}
}

// TestKernelsAssembleForAArch64 runs opt and llc on every kernel model's
// modules for aarch64 and checks that the fast dot's micro-kernel is NEON:
// fused multiply-adds on four-float vectors (fmla vN.4s).
func TestKernelsAssembleForAArch64(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	fmla := regexp.MustCompile(`\bfmla\s+v\d+\.4s`)
	eachModule(t, "aarch64", func(kind, ll string) error {
		asm, err := codegen.Assemble(ll)
		switch {
		case err != nil:
			return err
		case strings.Contains(ll, "xlc.gemm.micro") && !fmla.MatchString(asm):
			return fmt.Errorf("no fmla on .4s vectors in the fast dot's assembly")
		case !strings.Contains(ll, "xlc.gemm.micro") && kind == "step":
			return fmt.Errorf("no fast dot in the module")
		}
		return nil
	})
}

// eachModule runs check on every kernel model's step and forward modules
// for target, concurrently, and reports each error with the model and the
// module's kind.
func eachModule(t *testing.T, target string, check func(kind, ll string) error) {
	t.Helper()
	mods := compileKernelModels(t)
	var wg sync.WaitGroup
	errs := make([]error, 2*len(kernelModels))
	for i, c := range kernelModels {
		for j, kind := range []string{"step", "forward"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := check(kind, mods[c.name][target][j]); err != nil {
					errs[2*i+j] = fmt.Errorf("%s %s: %v", c.name, kind, err)
				}
			}()
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestKernelsAssembleForPTX runs opt and llc on every kernel model's
// modules for sm_80 and checks that each kernel is a PTX entry; with ptxas
// ($XLC_PTXAS or on PATH; scripts/cuda-sdk.sh fetches it) it also compiles
// the PTX for sm_80 and sm_90, as the CUDA driver would, without spills.
func TestKernelsAssembleForPTX(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	ptxas := os.Getenv("XLC_PTXAS")
	if ptxas == "" {
		ptxas, _ = exec.LookPath("ptxas")
	}
	if os.Getenv("CI") == "true" && (ptxas == "" || codegen.Libdevice() == "") {
		t.Fatal("CI=true and ptxas or libdevice is missing: eval \"$(scripts/cuda-sdk.sh)\" fetches them and sets XLC_PTXAS, XLC_LIBDEVICE")
	}
	eachModule(t, "sm_80", func(kind, ll string) error { return checkPTX(ll, ptxas) })
}

// TestGPT2KernelsAssembleForPTX does what TestKernelsAssembleForPTX does
// for one layer of GPT-2 small's shape (d=768, 12 heads, seq 1024, batch
// 8), in f32 and bf16 (with each tensor-core tile), the shape the GPU
// check times: where the kernel models' loops are a tile or two, these
// run long k loops and many tiles, and their register pressure differs.
func TestGPT2KernelsAssembleForPTX(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	ptxas := os.Getenv("XLC_PTXAS")
	if ptxas == "" {
		ptxas, _ = exec.LookPath("ptxas")
	}
	tg, err := codegen.TargetFor("sm_80")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"f32", "bf16"} {
		c := modelCase{"gpt2_" + p, "gpt", defs("layers", "1", "d", "768", "heads", "12", "seq", "1024", "batch", "8", "precision", p)}
		m := compileFusedAttention(t, c)
		tiles := []string{""} // and bf16's tensor-core tile variants (XLC_GPU_MMA)
		if p == "bf16" {
			tiles = append(tiles, "128x128", "128x64")
		}
		for _, tile := range tiles {
			tg.GPUMMA = tile
			prog, err := codegen.Compile(m.Step, codegen.Options{Target: tg})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPTX(prog.LL, ptxas); err != nil {
				t.Errorf("%s, tensor-core tile %q: %v", c.name, tile, err)
			}
		}
	}
}

// checkPTX assembles the sm_80 module ll and checks that the PTX has one
// entry per ptx_kernel, and, when ptxas is not "", that ptxas compiles it
// for sm_80 and sm_90 (relocatable where libdevice was not linked in) with
// no kernel spilling registers.
func checkPTX(ll, ptxas string) error {
	asm, err := codegen.Assemble(ll)
	if err != nil {
		return err
	}
	want := strings.Count(ll, "define ptx_kernel void @")
	if want == 0 {
		return fmt.Errorf("no ptx_kernel in the module")
	}
	if got := strings.Count(asm, ".visible .entry "); got != want || !strings.Contains(asm, ".target sm_80") {
		return fmt.Errorf("%d PTX entries for %d kernels, or no .target sm_80", got, want)
	}
	if ptxas == "" {
		return nil
	}
	dir, err := os.MkdirTemp("", "xlc-ptx-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "k.ptx")
	if err := os.WriteFile(in, []byte(asm), 0o644); err != nil {
		return err
	}
	spills := regexp.MustCompile(`([1-9][0-9]*) bytes spill (stores|loads)`)
	for _, sm := range []string{"sm_80", "sm_90"} {
		args := []string{"-v", "-arch=" + sm, in, "-o", filepath.Join(dir, "k.cubin")}
		if strings.Contains(asm, ".extern .func  (.param .b64 func_retval0) __nv_") {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command(ptxas, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ptxas %s: %v: %s", sm, err, out)
		}
		if m := spills.FindString(string(out)); m != "" {
			return fmt.Errorf("ptxas %s: a kernel spills (%s)", sm, m)
		}
	}
	return nil
}
