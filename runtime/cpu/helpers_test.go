package cpu

import (
	"fmt"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/runtime"
	"xlc/runtime/backendtest"
	"xlc/runtime/interp"
)

// needLLVM skips the test when the LLVM toolchain is missing, except under
// CI=true, where it fails.
func needLLVM(t testing.TB) {
	t.Helper()
	llvmtest.Require(t, codegen.ToolchainError())
}

// load compiles f for the cpu backend; the executable is closed when the
// test ends.
func load(t testing.TB, f *ir.Func) *Executable {
	t.Helper()
	x, err := Backend{}.LoadExec(f)
	if err != nil {
		t.Fatalf("load @%s: %v", f.Name, err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// loader is load as a backendtest.Loader.
func loader(t testing.TB, f *ir.Func) runtime.Executable { return load(t, f) }

// runBoth runs f on args with the interpreter and the cpu backend.
func runBoth(t testing.TB, f *ir.Func, args []*interp.Tensor) (want, got []*interp.Tensor) {
	t.Helper()
	return backendtest.RunBoth(t, loader, f, args)
}

// The comparisons and random inputs are backendtest's, which runtime/cuda's
// tests share.
var (
	tolerance    = backendtest.Tolerance
	diff         = backendtest.Diff
	diffAbs      = backendtest.DiffAbs
	randomTensor = backendtest.RandomTensor
	randomArgs   = backendtest.RandomArgs
	absTerms     = backendtest.AbsTerms
	instrText    = backendtest.InstrText
)

// parseFunc makes a function of the given parameters and body (one
// instruction a line); the last instruction is returned.
func parseFunc(t testing.TB, params, body string) *ir.Func {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(body), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	name, rest, _ := strings.Cut(last, " = ")
	_ = rest
	ty := last[strings.LastIndex(last, ": ")+2:]
	src := fmt.Sprintf("func @f(%s) -> (r: %s) {\n%s\n  return %s\n}\n", params, ty, body, name)
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return f
}
