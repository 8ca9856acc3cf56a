package codegen

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"xlc/codegen/internal/dlopen"
)

// TestScatterAddOutOfMemory checks that a scatter_add kernel whose
// accumulator cannot be allocated says so on stderr and aborts, instead of
// writing through the null pointer malloc returned: a child process calls
// the kernel on a range of 2^44 rows (a 2^50-byte accumulator, beyond any
// address space; an f16 table has one accumulator row per table row).
func TestScatterAddOutOfMemory(t *testing.T) {
	needTools(t)
	if os.Getenv("XLC_OOM_CHILD") == "" {
		t.Setenv("XLC_CACHE", t.TempDir())
	}
	p := compileText(t, `func @f(%u: f16[4,8], %i: i32[4]) -> (r: f16[16,8]) {
  %0 = scatter_add %u, %i {axis=0} : f16[16,8]
  return %0
}`)
	so, err := SharedObject(p.LL)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("XLC_OOM_CHILD") != "" {
		lib, err := dlopen.Open(so)
		if err != nil {
			t.Fatal(err)
		}
		k, err := lib.Kernel(p.Kernels[0].Symbol)
		if err != nil {
			t.Fatal(err)
		}
		u, idx, r := make([]float32, 32), make([]float32, 4), make([]float32, 128) // idx: i32 zeros
		k.CallF32([][]float32{u, idx, r}, 0, 1<<44)
		t.Fatal("the kernel returned")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScatterAddOutOfMemory$")
	cmd.Env = append(os.Environ(), "XLC_OOM_CHILD=1", "XLC_CACHE="+os.Getenv("XLC_CACHE"))
	out, err := cmd.CombinedOutput()
	want := "xlc: out of memory in " + p.Kernels[0].Symbol + "\n"
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("child: %v, want it to abort saying %q; output:\n%s", err, want, out)
	}
}
