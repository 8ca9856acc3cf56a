package main

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"xlc/runtime"
)

// TestNaNPatience drives a run to a non-finite loss (SGD at lr 1e6,
// unclipped) with a checkpoint every step: it stops within nan_patience
// steps of the first bad one, with one line naming the step, exits
// non-zero, and leaves the last checkpoint whose state was finite (the
// step before the first bad loss may already have made it NaN).
func TestNaNPatience(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := append(append([]string{"train"}, tinyGPT...), "--out", out, "--steps", "40", "--ckpt-every", "1",
		"-D", "optimizer=sgd", "-D", "lr=1e6", "-D", "clip=0", "-D", "nan_patience=3")
	_, stderr, code := xlc(t, args...)
	line := regexp.MustCompile(`^xlc train: step (\d+): stopped with the loss not finite since step (\d+) \(3 steps in a row, nan_patience 3\); the checkpoint of step (\d+) is kept\n$`)
	m := line.FindStringSubmatch(stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:])
	if code == 0 || m == nil {
		t.Fatalf("exit %d, stderr:\n%s\nwant a last line matching %s", code, stderr, line)
	}
	stop, since, kept := atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3])
	if stop != since+2 || kept >= since || kept < 1 {
		t.Errorf("stopped at %d, bad since %d, kept %d: want since+2, and a checkpoint before since", stop, since, kept)
	}
	tensors, meta, err := runtime.LoadCheckpoint(filepath.Join(out, runtime.CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if meta["step"] != strconv.Itoa(kept) {
		t.Errorf("the checkpoint is at step %s, want %d", meta["step"], kept)
	}
	for name, v := range tensors {
		for i := range v.Len() {
			if x := v.At(i); math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("the kept checkpoint's %s[%d] is %v", name, i, x)
			}
		}
	}
	rows, err := runtime.ReadMetrics(filepath.Join(out, runtime.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != stop {
		t.Errorf("%d metrics lines, want one per step to %d", len(rows), stop)
	}
	if _, err := os.Stat(filepath.Join(out, runtime.PlotName)); err == nil {
		t.Errorf("a plot was drawn for a run that stopped on a non-finite loss")
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
