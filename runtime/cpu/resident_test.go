package cpu

import (
	"testing"

	"xlc/driver"
	"xlc/runtime/backendtest"
)

// TestResidentState trains a tiny GPT 4 steps with the state copied in and
// out of every step and 4 with it kept in the executable: the losses and
// the state are bit for bit the same (backendtest.ResidentState).
func TestResidentState(t *testing.T) {
	needLLVM(t)
	backendtest.ResidentState(t, loader, tinyGPTModel(t, driver.Options{}).Step)
}

// TestRunKeptSwap keeps two parameters whose results are each other's old
// values: each is fed back from the buffer the other overwrites.
func TestRunKeptSwap(t *testing.T) {
	needLLVM(t)
	backendtest.RunKeptSwap(t, loader)
}
