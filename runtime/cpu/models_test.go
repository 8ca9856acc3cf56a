package cpu

import (
	"testing"
	"time"

	"xlc/driver"
	"xlc/runtime/backendtest"
)

// tinyGPTModel compiles models/gpt.xl in backendtest.TinyGPT's
// configuration.
func tinyGPTModel(t testing.TB, opt driver.Options) *driver.Model {
	t.Helper()
	return backendtest.Model(t, "gpt", backendtest.TinyGPT, opt)
}

// TestModelForward runs the whole forward pass of the MLP and of a tiny GPT
// through the cpu backend and the interpreter: every result within 1e-4
// relative.
func TestModelForward(t *testing.T) {
	needLLVM(t)
	backendtest.ModelForward(t, loader)
}

// TestTrainStep runs three train steps of the tiny GPT with the cpu backend
// and with the interpreter, each feeding its own updated parameters and
// state back: the losses agree within 1e-4 relative at every step.
func TestTrainStep(t *testing.T) {
	needLLVM(t)
	f := tinyGPTModel(t, driver.Options{}).Step
	start := time.Now()
	load(t, f)
	t.Logf("train step: %d instructions, loaded in %v", len(f.Body), time.Since(start))
	backendtest.TrainStep(t, loader, f)
}
