package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"xlc/runtime"
)

// tinyGPT is a GPT small enough to train in a test, pinned to the
// interpreter: these tests expect its one-line errors and no backend
// warning on machines without LLVM.
var tinyGPT = []string{"../../models/gpt.xl", "-D", "layers=1", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=4", "--backend", "interp"}

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
	// A cosine schedule without warmup, so every step's rate depends on the
	// horizon of 6 steps.
	opts := []string{"-D", "pdrop=0.1", "-D", "warmup=0", "-D", "schedule=cosine", "--eval-every", "3", "--steps", "6"}
	train(t, whole, opts...)
	if out := train(t, split, append(opts, "--stop-at", "3")...); !strings.HasPrefix(out, "stopped at step 3 (--stop-at)") {
		t.Errorf("--stop-at 3: %q", out)
	}
	train(t, split, append(opts, "--resume")...)
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

	edited := filepath.Join(dir, "edited.xl")
	src, _ := os.ReadFile("../../models/gpt.xl")
	os.WriteFile(edited, append(src, []byte("# edited\n")...), 0o644)

	badStep := filepath.Join(dir, "badstep")
	os.MkdirAll(badStep, 0o755)
	tensors, meta, err := runtime.LoadCheckpoint(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	tensors["step"].I[0] = -3
	if err := runtime.SaveCheckpoint(filepath.Join(badStep, runtime.CheckpointName), tensors, meta); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"edited model", append(append([]string{"train", edited}, tinyGPT[1:]...), "--resume", "--steps", "3", "--out", good), "different model_source"},
		{"corrupted step", append(append([]string{"train"}, tinyGPT...), "--resume", "--steps", "3", "--out", badStep), "corrupted: step"},
		{"missing data", append(append([]string{"train"}, tinyGPT...), "--data", filepath.Join(dir, "nope.txt"), "--out", filepath.Join(dir, "o1")), "no such file"},
		{"empty data", append(append([]string{"train"}, tinyGPT...), "--data", empty, "--out", filepath.Join(dir, "o2")), "empty.txt"},
		{"corrupted checkpoint", append(append([]string{"train"}, tinyGPT...), "--resume", "--steps", "3", "--out", corrupt), "checkpoint.safetensors"},
		{"truncated checkpoint", append(append([]string{"train"}, tinyGPT...), "--resume", "--steps", "3", "--out", truncated), "truncated"},
		{"another model", []string{"train", "../../models/gpt.xl", "-D", "layers=2", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=4", "--backend", "interp", "--resume", "--steps", "3", "--out", good}, "different settings"},
		{"other settings", append(append([]string{"train"}, tinyGPT...), "-D", "lr=0.5", "--resume", "--steps", "3", "--out", good), "different settings"},
		{"other data", append(append([]string{"train"}, tinyGPT...), "--data", "../../models/gpt.xl", "--resume", "--steps", "3", "--out", good), "different data"},
		{"other seed", append(append([]string{"train"}, tinyGPT...), "--seed", "9", "--resume", "--steps", "3", "--out", good), "--seed"},
		{"vocab too small for bytes", append(append([]string{"train"}, tinyGPT...), "-D", "vocab=64", "--out", filepath.Join(dir, "o4")), "needs 0..256"},
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

// TestSample checks xlc sample continues the prompt by --tokens bytes,
// deterministically for a seed, and rejects a file that is no checkpoint.
func TestSample(t *testing.T) {
	dir := t.TempDir()
	train(t, dir, "--steps", "2")
	ckpt := filepath.Join(dir, runtime.CheckpointName)
	a, stderr, code := xlc(t, "sample", ckpt, "--prompt", "Hello", "--tokens", "20", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(a, "Hello") || len(a) != len("Hello")+20+1 {
		t.Errorf("sample %q: want the prompt and 20 bytes", a)
	}
	if b, _, _ := xlc(t, "sample", ckpt, "--prompt", "Hello", "--tokens", "20", "--seed", "3"); b != a {
		t.Errorf("same seed, different samples: %q and %q", a, b)
	}
	greedy, _, _ := xlc(t, "sample", ckpt, "--prompt", "Hello", "--tokens", "5", "--temperature", "0")
	if len(greedy) != len("Hello")+5+1 {
		t.Errorf("greedy sample %q", greedy)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	if _, stderr, code := xlc(t, "sample", bad); code == 0 || !strings.Contains(stderr, "bad.safetensors") {
		t.Errorf("bad checkpoint: exit %d, %q", code, stderr)
	}
}

// TestInterrupt sends SIGINT during training: the run stops after the
// current step, saves a checkpoint at that step and exits 0.
func TestInterrupt(t *testing.T) {
	dir := t.TempDir()
	done := make(chan string)
	go func() {
		out, _, _ := xlc(t, append(append([]string{"train"}, tinyGPT...), "--out", dir, "--steps", "100000", "--eval-every", "1000")...)
		done <- out
	}()
	// Wait until steps run (so the signal handler is installed), then
	// interrupt; a SIGINT before that would end the test binary.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if rows, _ := runtime.ReadMetrics(filepath.Join(dir, "metrics.jsonl")); len(rows) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("training did not start within 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	out := <-done
	if !strings.Contains(out, "interrupted at step") {
		t.Fatalf("stdout %q: want an interruption message", out)
	}
	_, meta, err := runtime.LoadCheckpoint(filepath.Join(dir, runtime.CheckpointName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "step "+meta["step"]+";") {
		t.Errorf("stdout %q, checkpoint at step %s", out, meta["step"])
	}
}

// TestBertProgressShowsEveryLoss trains BERT, whose two tasks are mlm_loss
// and cls_loss: each progress line and the final summary show both and the
// combined objective, with the values metrics.jsonl records under the same
// names.
func TestBertProgressShowsEveryLoss(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := xlc(t, "train", "../../models/bert.xl", "-D", "layers=1", "-D", "d=16", "-D", "heads=2",
		"-D", "seq=8", "-D", "batch=4", "--backend", "interp", "--steps", "2", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows, err := runtime.ReadMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil || len(rows) != 2 {
		t.Fatalf("metrics: %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		want := fmt.Sprintf("step %d/2  mlm_loss %.4f  cls_loss %.4f  objective %.4f  ", int(r["step"]), r["mlm_loss"], r["cls_loss"], r["objective"])
		if !strings.Contains(stderr, want) {
			t.Errorf("progress %q: want a line starting %q", stderr, want)
		}
	}
	last := rows[1]
	want := fmt.Sprintf("step 2: mlm_loss=%.4g cls_loss=%.4g objective=%.4g val_mlm_loss=", last["mlm_loss"], last["cls_loss"], last["objective"])
	if !strings.HasPrefix(stdout, want) {
		t.Errorf("summary %q: want it to start %q", stdout, want)
	}
}
