package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xlc/runtime"
)

// files reads every file under dir, by path relative to dir.
func files(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFiles fails unless dir holds exactly the files of want, byte for byte.
func sameFiles(t *testing.T, what, dir string, want map[string][]byte) {
	t.Helper()
	have := files(t, dir)
	if len(have) != len(want) {
		t.Errorf("%s: %d files in %s, want the first run's %d", what, len(have), dir, len(want))
	}
	for name, b := range want {
		if !bytes.Equal(have[name], b) {
			t.Errorf("%s: %s changed", what, name)
		}
	}
}

// TestRefuseOverwrite trains into a folder, then tries again in the ways a
// user might: each fresh run into it is refused with one line saying what
// is there and how it differs, and leaves every file of the first run byte
// for byte; --resume continues it (its metrics lines kept), and --force
// replaces it, but only once every input check has passed.
func TestRefuseOverwrite(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first")
	train(t, first, "--steps", "2")
	orig := files(t, first)
	if len(orig) != 3 {
		t.Fatalf("the first run wrote %d files, want a checkpoint, metrics and a plot", len(orig))
	}
	base := func(extra ...string) []string {
		return append(append(append([]string{"train"}, tinyGPT...), "--out", first), extra...)
	}
	other := []string{"train", "../../models/mlp.xl", "--backend", "interp", "--steps", "2", "--out", first}
	ckpt := "holds a run (checkpoint.safetensors at step 2, metrics.jsonl, loss.png) "
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"same run", base("--steps", "2"), ckpt + "of the same model, settings, data and seed; --resume continues it, --force replaces it"},
		{"other steps", base("--steps", "4"), "of the same model, settings, data and seed"},
		{"other settings", base("-D", "lr=0.5"), "with other settings (none there, -D lr=0.5 here)"},
		{"other data", base("--data", "../../models/gpt.xl"), "with other data (builtin there, ../../models/gpt.xl here)"},
		{"other seed", base("--seed", "7"), "with another seed (1 there, 7 here)"},
		{"other model", other, "with another model (gpt there, mlp here)"},
		{"resume and force", base("--resume", "--force"), "give one"},
		{"force, bad data", base("--force", "--data", filepath.Join(dir, "nope.txt")), "no such file"},
	}
	for _, c := range cases {
		_, stderr, code := xlc(t, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want a refusal mentioning %q", c.name, code, stderr, c.want)
		}
		if !strings.HasPrefix(stderr, "xlc train: ") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: want one error line, have %q", c.name, stderr)
		}
		sameFiles(t, c.name, first, orig)
	}

	// --resume continues the run: the first two metrics lines stay.
	resumed := filepath.Join(dir, "resumed")
	os.CopyFS(resumed, os.DirFS(first))
	if out := train(t, resumed, "--steps", "3", "--resume"); !strings.HasPrefix(out, "step 3:") {
		t.Errorf("--resume: %q", out)
	}
	if m, _ := os.ReadFile(filepath.Join(resumed, "metrics.jsonl")); !bytes.HasPrefix(m, orig["metrics.jsonl"]) || bytes.Count(m, []byte("\n")) != 3 {
		t.Errorf("--resume: metrics.jsonl does not continue the first run's:\n%s", m)
	}
	sameFiles(t, "after --resume of a copy", first, orig)

	// --force replaces it: a new run from step 0, no line of the old one.
	if out := train(t, first, "--steps", "1", "--force"); !strings.HasPrefix(out, "step 1:") {
		t.Errorf("--force: %q", out)
	}
	_, meta, err := runtime.LoadCheckpoint(filepath.Join(first, runtime.CheckpointName))
	if err != nil || meta["step"] != "1" {
		t.Errorf("--force: checkpoint at step %q, %v; want 1", meta["step"], err)
	}
	if rows, _ := runtime.ReadMetrics(filepath.Join(first, "metrics.jsonl")); len(rows) != 1 {
		t.Errorf("--force: %d metrics lines, want the new run's one", len(rows))
	}
}

// TestRunFolders trains without --out: each run gets a new folder
// out/<model>-<n>, said at the start, and leaves the earlier ones byte for
// byte; --resume without --out continues the newest run of the model.
func TestRunFolders(t *testing.T) {
	model, err := filepath.Abs("../../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	args := append([]string{"train", model}, tinyGPT[1:]...)
	for n, want := range []string{"out/gpt-1", "out/gpt-2"} {
		before := map[string][]byte{}
		if n > 0 {
			before = files(t, "out/gpt-1")
		}
		_, stderr, code := xlc(t, append(args, "--steps", "2")...)
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", n+1, code, stderr)
		}
		if !strings.HasPrefix(stderr, "run folder "+want+" (new") {
			t.Errorf("run %d: stderr %q; want it to start naming %s", n+1, stderr, want)
		}
		if _, err := os.Stat(filepath.Join(want, runtime.CheckpointName)); err != nil {
			t.Errorf("run %d: %v", n+1, err)
		}
		if n > 0 {
			sameFiles(t, "a second run", "out/gpt-1", before)
		}
	}
	// A run of another model numbers its own folders.
	if _, stderr, code := xlc(t, "train", filepath.Join(filepath.Dir(model), "mlp.xl"), "--backend", "interp", "--steps", "1"); code != 0 || !strings.Contains(stderr, "run folder out/mlp-1 ") {
		t.Errorf("mlp: exit %d, %q", code, stderr)
	}
	first := files(t, "out/gpt-1")
	stdout, stderr, code := xlc(t, append(args, "--steps", "3", "--resume")...)
	if code != 0 || !strings.HasPrefix(stderr, "resuming out/gpt-2, the newest run of gpt\n") || !strings.HasPrefix(stdout, "step 3:") {
		t.Errorf("--resume: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	sameFiles(t, "--resume of gpt-2", "out/gpt-1", first)
	if _, stderr, code := xlc(t, "train", "--resume", filepath.Join(filepath.Dir(model), "bert.xl"), "--backend", "interp"); code == 0 || !strings.Contains(stderr, "xlc train: --resume: no run of bert in out/ to continue") {
		t.Errorf("--resume without a run: exit %d, %q", code, stderr)
	}
}
