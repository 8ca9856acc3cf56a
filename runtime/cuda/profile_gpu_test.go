//go:build cuda

package cuda

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"xlc/driver"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/backendtest"
)

// TestProfileGPU trains the tiny GPT three steps with the profile on
// (XLC_DEBUG=2), with and without the step's graph, against the
// interpreter: runs kernel by kernel between events, and graph replays in
// turn, compute the same step. Close then prints the profile: every
// launched kernel timed, no gate opened on its timeout, no note.
func TestProfileGPU(t *testing.T) {
	needGPU(t)
	opt := driver.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}}
	f := backendtest.Model(t, "gpt", backendtest.TinyGPT, opt).Step
	for _, graph := range []string{"1", "0"} {
		t.Setenv("XLC_DEBUG", "2")
		t.Setenv("XLC_DEBUG_EVERY", "")
		t.Setenv("XLC_CUDA_GRAPH", graph)
		var x *Executable
		backendtest.TrainStep(t, func(t testing.TB, f *ir.Func) runtime.Executable {
			e := loader(t, f)
			x = e.(*Executable)
			return e
		}, f)
		if x.prof == nil || (x.res.graph != nil) != (graph == "1") {
			t.Fatalf("XLC_CUDA_GRAPH=%s: profile %v, graph %v", graph, x.prof != nil, x.res.graph != nil)
		}
		launched := 0
		for _, k := range x.kernels {
			if k.n > 0 {
				launched++
			}
		}
		var b strings.Builder
		x.prof.out = &b
		x.Close()
		out := b.String()
		t.Logf("XLC_CUDA_GRAPH=%s:\n%s", graph, out)
		head := map[string]string{"1": "1 kernel by kernel, 1 graph replays", "0": "2 kernel by kernel, 0 graph replays"}[graph]
		if !strings.Contains(out, "3 runs: 1 warm-up (not counted), "+head) ||
			!regexp.MustCompile(`(?m)^ +total +`+strconv.Itoa(launched)+` +[0-9.]+ 100\.0%$`).MatchString(out) ||
			graph == "1" && !strings.Contains(out, "graph replay: ") ||
			strings.Contains(out, "timeout") || strings.Contains(out, "note:") {
			t.Errorf("XLC_CUDA_GRAPH=%s: not the profile of %d launches per run:\n%s", graph, launched, out)
		}
		if x.prof.timeouts != 0 || x.prof.gates == 0 {
			t.Errorf("XLC_CUDA_GRAPH=%s: %d of %d gates timed out", graph, x.prof.timeouts, x.prof.gates)
		}
	}
}
