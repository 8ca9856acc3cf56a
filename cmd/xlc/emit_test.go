package main

import (
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
)

// TestEmitKernels checks --emit=ll and --emit=asm for a CPU and a GPU
// target: the module names the target, and the assembly is NEON for
// aarch64 and PTX for sm_80.
func TestEmitKernels(t *testing.T) {
	model := []string{"build", "../../models/gpt.xl", "-D", "layers=1", "-D", "d=64", "-D", "seq=32", "-D", "batch=2"}
	out, errs, code := xlc(t, append(model, "--emit=ll", "--cpu", "aarch64")...)
	if code != 0 || !strings.Contains(out, `target triple = "aarch64-unknown-linux-gnu"`) || !strings.Contains(errs, "kernels") {
		t.Fatalf("--emit=ll --cpu aarch64: exit %d, stderr %q, module %.200q", code, errs, out)
	}
	llvmtest.Require(t, codegen.ToolchainError())
	for cpu, want := range map[string]string{"aarch64": "fmla\tv", "sm_80": ".target sm_80"} {
		out, errs, code := xlc(t, append(model, "--emit=asm", "--cpu", cpu)...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--emit=asm --cpu %s: exit %d, stderr %q; want %q in %.200q", cpu, code, errs, want, out)
		}
	}
}
