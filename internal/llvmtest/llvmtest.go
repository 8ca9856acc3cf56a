// Package llvmtest holds the one rule of every test that needs the LLVM
// toolchain: skip when it is missing on a developer's machine, fail under
// CI=true, so that a broken install cannot pass silently.
package llvmtest

import (
	"os"
	"testing"
)

// Require skips t when missing (the toolchain check's error, e.g.
// codegen.ToolchainError()) is not nil, except under CI=true, where it
// fails t.
func Require(t testing.TB, missing error) {
	t.Helper()
	if missing == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and the LLVM toolchain is missing: %v", missing)
	}
	t.Skipf("LLVM toolchain missing: %v", missing)
}
