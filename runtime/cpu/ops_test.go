package cpu

import (
	"testing"

	"xlc/runtime/backendtest"
)

// TestOps runs every op of ir/op.go in every dtype it supports through the
// cpu backend and compares the results with the interpreter's on random
// inputs (backendtest.Ops).
func TestOps(t *testing.T) {
	needLLVM(t)
	backendtest.Ops(t, loader)
}

// TestSpecialValues checks the edge cases of the element semantics: NaN,
// infinities, signed zeros, integer division by 0 and -1, saturating
// conversions, rounding ties of f16 and bf16 (backendtest.SpecialValues).
func TestSpecialValues(t *testing.T) {
	needLLVM(t)
	backendtest.SpecialValues(t, loader)
}
