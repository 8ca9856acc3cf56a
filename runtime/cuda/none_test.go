//go:build !cuda

package cuda

import (
	"testing"

	"xlc/codegen"
	"xlc/ir"
)

// TestWithoutCUDA checks the answers of an xlc built without the cuda tag:
// Available, Load and Runs say so in one line, and targets still resolve
// (a GPU bundle is built without CUDA).
func TestWithoutCUDA(t *testing.T) {
	const want = "cuda: this xlc was built without CUDA (go build -tags cuda, see README)"
	if err := Available(); err == nil || err.Error() != want+"; use --backend cpu" {
		t.Errorf("Available: %v", err)
	}
	f, err := ir.ParseFunc("func @f(%x: f32[4]) -> (r: f32[4]) {\n  %0 = neg %x : f32[4]\n  return %0\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Backend{}).Load(f); err == nil || err.Error() != want {
		t.Errorf("Load: %v", err)
	}
	sm90, _ := codegen.TargetFor("sm_90")
	if _, err := (Prebuilt{Target: sm90, PTX: map[*ir.Func]Module{f: {}}}).Load(f); err == nil || err.Error() != want {
		t.Errorf("Prebuilt.Load: %v", err)
	}
	if err := Runs(sm90); err == nil || err.Error() != want {
		t.Errorf("Runs: %v", err)
	}
	for gpu, name := range map[string]string{"": "sm_80", "h100": "h100", "sm_90": "sm_90"} {
		if tg, err := Target(gpu); err != nil || tg.Name != name || !tg.GPU() {
			t.Errorf("Target(%q) = %v, %v; want %s", gpu, tg, err, name)
		}
	}
	if _, err := Target("znver4"); err == nil {
		t.Error("Target(znver4): a CPU accepted as a GPU")
	}
	if (Backend{}).Name() != "cuda" || (Prebuilt{}).Name() != "cuda" {
		t.Error("Name is not cuda")
	}
}
