package cpu

import (
	"os"
	"path/filepath"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/runtime/interp"
)

// TestPrebuiltTempRemoved checks that LoadPrebuilt, when the kernel cache
// is not writable, leaves no temporary copy of the library behind: not
// after a load, nor after a load that fails.
func TestPrebuiltTempRemoved(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	f, prog := compileFor(t, `func @f(%x: f32[3]) -> (r: f32[3]) {
  %0 = neg %x : f32[3]
  return %0
}`, "")
	t.Setenv("XLC_CACHE", t.TempDir())
	path, err := codegen.SharedObject(prog.LL)
	if err != nil {
		t.Fatal(err)
	}
	so, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A cache below a regular file cannot be created.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XLC_CACHE", filepath.Join(blocker, "cache"))
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	left := func(when string) {
		t.Helper()
		if es, _ := os.ReadDir(tmp); len(es) > 0 {
			t.Errorf("%s: %s left in the temporary folder", when, es[0].Name())
		}
	}
	e, err := LoadPrebuilt(f, prog.Target, Lib{SO: so})
	if err != nil {
		t.Fatal(err)
	}
	left("after a load")
	got, err := e.Run([]*interp.Tensor{interp.FromFloats(f.Params[0].Type, []float64{1, -2, 3})})
	if err != nil {
		t.Fatal(err)
	}
	if r := got[0].F; r[0] != -1 || r[1] != 2 || r[2] != -3 {
		t.Errorf("neg [1 -2 3] = %v after the library's file was removed", r)
	}
	e.Close()
	if _, err := LoadPrebuilt(f, prog.Target, Lib{SO: []byte("not a shared object")}); err == nil {
		t.Error("a library that is not one loaded")
	}
	left("after a failed load")
}
