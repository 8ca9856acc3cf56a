package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xlc/runtime"
)

// tinyGPT is a GPT small enough to train in a test.
var tinyGPT = []string{"../../models/gpt.xl", "-D", "layers=1", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=4"}

func train(t *testing.T, out string, extra ...string) string {
	t.Helper()
	args := append(append([]string{"train"}, tinyGPT...), "--out", out)
	stdout, stderr, code := xlc(t, append(args, extra...)...)
	if code != 0 {
		t.Fatalf("xlc train %v: exit %d: %s", extra, code, stderr)
	}
	return stdout
}

func loadState(t *testing.T, dir string) map[string][]float64 {
	t.Helper()
	tensors, _, err := runtime.LoadCheckpoint(filepath.Join(dir, runtime.CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for k, v := range tensors {
		vals := make([]float64, v.Len())
		for i := range vals {
			vals[i] = v.At(i)
		}
		out[k] = vals
	}
	return out
}

// TestResumeBitIdentical checks that N steps, then --resume to 2N, leave
// every parameter and optimizer state bit-identical to 2N steps in one run.
func TestResumeBitIdentical(t *testing.T) {
	dir := t.TempDir()
	whole, split := filepath.Join(dir, "whole"), filepath.Join(dir, "split")
	opts := []string{"-D", "pdrop=0.1", "--eval-every", "3"}
	train(t, whole, append(opts, "--steps", "6")...)
	train(t, split, append(opts, "--steps", "3")...)
	train(t, split, append(opts, "--steps", "6", "--resume")...)
	a, b := loadState(t, whole), loadState(t, split)
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d tensors vs %d", len(a), len(b))
	}
	for k, va := range a {
		vb := b[k]
		for i := range va {
			if va[i] != vb[i] && !(va[i] != va[i] && vb[i] != vb[i]) {
				t.Fatalf("%s[%d]: %v after one run, %v after resume", k, i, va[i], vb[i])
			}
		}
	}
	rows, err := runtime.ReadMetrics(filepath.Join(split, "metrics.jsonl"))
	if err != nil || len(rows) != 6 {
		t.Errorf("resumed metrics: %d rows, %v; want 6 rows, one per step", len(rows), err)
	}
}

// TestTrainBadInput checks each bad input gets one clear error line and
// leaves the output folder as it was.
func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	train(t, good, "--steps", "2")
	ckpt := filepath.Join(good, runtime.CheckpointName)
	orig, _ := os.ReadFile(ckpt)
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)

	corrupt := filepath.Join(dir, "corrupt")
	os.MkdirAll(corrupt, 0o755)
	bad := append([]byte{}, orig...)
	copy(bad[8:], "{garbage")
	os.WriteFile(filepath.Join(corrupt, runtime.CheckpointName), bad, 0o644)

	truncated := filepath.Join(dir, "truncated")
	os.MkdirAll(truncated, 0o755)
	os.WriteFile(filepath.Join(truncated, runtime.CheckpointName), orig[:len(orig)-100], 0o644)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing data", append(append([]string{"train"}, tinyGPT...), "--data", filepath.Join(dir, "nope.txt"), "--out", filepath.Join(dir, "o1")), "no such file"},
		{"empty data", append(append([]string{"train"}, tinyGPT...), "--data", empty, "--out", filepath.Join(dir, "o2")), "empty.txt"},
		{"corrupted checkpoint", append(append([]string{"train"}, tinyGPT...), "--resume", "--steps", "3", "--out", corrupt), "checkpoint.safetensors"},
		{"truncated checkpoint", append(append([]string{"train"}, tinyGPT...), "--resume", "--steps", "3", "--out", truncated), "truncated"},
		{"another model", []string{"train", "../../models/gpt.xl", "-D", "layers=2", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=4", "--resume", "--steps", "3", "--out", good}, "different model"},
		{"missing checkpoint", append(append([]string{"train"}, tinyGPT...), "--resume", "--out", filepath.Join(dir, "o3")), "no such file"},
	}
	for _, c := range cases {
		before := snapshot(t, dir)
		_, stderr, code := xlc(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want an error mentioning %q", c.name, code, stderr, c.want)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 0 && !strings.Contains(stderr, "training ") {
			t.Errorf("%s: want one error line, have %d:\n%s", c.name, n+1, stderr)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("%s: files changed:\nbefore %s\nafter  %s", c.name, before, after)
		}
	}
	if now, _ := os.ReadFile(ckpt); string(now) != string(orig) {
		t.Error("the good checkpoint changed")
	}
}

// snapshot lists every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(path + " " + info.ModTime().String() + " " + string(rune('0'+info.Size()%10)) + "\n")
		}
		return nil
	})
	return b.String()
}
