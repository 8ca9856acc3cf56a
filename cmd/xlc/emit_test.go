package main

import (
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
)

// TestEmitKernels checks --emit=ll, asm and ptx for CPU and GPU targets:
// the module names the target, the assembly is NEON for aarch64 and PTX
// for sm_80 (the default of --emit=ptx) and for h200 (sm_90).
func TestEmitKernels(t *testing.T) {
	model := []string{"build", "../../models/gpt.xl", "-D", "layers=1", "-D", "d=64", "-D", "seq=32", "-D", "batch=2"}
	out, errs, code := xlc(t, append(model, "--emit=ll", "--cpu", "aarch64")...)
	if code != 0 || !strings.Contains(out, `target triple = "aarch64-unknown-linux-gnu"`) || !strings.Contains(errs, "kernels") {
		t.Fatalf("--emit=ll --cpu aarch64: exit %d, stderr %q, module %.200q", code, errs, out)
	}
	llvmtest.Require(t, codegen.ToolchainError())
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--emit=asm", "--cpu", "aarch64"}, "fmla\tv"},
		{[]string{"--emit=asm", "--gpu", "sm_80"}, ".target sm_80"},
		{[]string{"--emit=ptx"}, ".target sm_80"},
		{[]string{"--emit=ptx", "--gpu", "h200"}, ".target sm_90"},
	} {
		out, errs, code := xlc(t, append(model, c.flags...)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q in %.200q", c.flags, code, errs, c.want, out)
		}
	}
}
