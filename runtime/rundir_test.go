package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

// TestRunDirs checks the numbering of run folders: the next is one past
// the largest of the model's (files, other models' folders and other names
// ignored), and the newest to resume is the largest that holds a
// checkpoint.
func TestRunDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "out")
	if d, err := NextRunDir(root, "gpt"); err != nil || d != filepath.Join(root, "gpt-1") {
		t.Errorf("no root yet: %q, %v", d, err)
	}
	if d, err := NewestRunDir(root, "gpt"); err != nil || d != "" {
		t.Errorf("no root yet: newest %q, %v", d, err)
	}
	for _, d := range []string{"gpt-1", "gpt-3", "gpt-x", "gptx-9", "bert-12", "gpt-2b"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "gpt-7"), nil, 0o644) // a file, not a run
	os.WriteFile(filepath.Join(root, "gpt-1", CheckpointName), nil, 0o644)
	if d, _ := NextRunDir(root, "gpt"); d != filepath.Join(root, "gpt-4") {
		t.Errorf("next %q, want gpt-4", d)
	}
	if d, _ := NextRunDir(root, "bert"); d != filepath.Join(root, "bert-13") {
		t.Errorf("next %q, want bert-13", d)
	}
	if d, _ := NewestRunDir(root, "gpt"); d != filepath.Join(root, "gpt-1") {
		t.Errorf("newest %q, want gpt-1: gpt-3 holds no checkpoint", d)
	}
	// A new run's folder must not exist when Train creates it.
	err := makeOutDir(TrainOptions{OutDir: filepath.Join(root, "gpt-3"), NewDir: true})
	if err == nil || !strings.Contains(err.Error(), "another run took the folder") {
		t.Errorf("NewDir on an existing folder: %v", err)
	}
	if err := makeOutDir(TrainOptions{OutDir: filepath.Join(root, "gpt-4"), NewDir: true}); err != nil {
		t.Error(err)
	}
}

// TestRunDiff checks how a refusal describes the run already there.
func TestRunDiff(t *testing.T) {
	here := map[string]string{"model": "gpt", "model_source": "src", "data": "builtin",
		"settings": `[{"Key":"layers","Value":"2"},{"Key":"lr","Value":"0.1"}]`}
	cases := []struct {
		there map[string]string
		want  string
	}{
		{map[string]string{"model": "gpt", "model_source": "src", "data": "builtin", "seed": "1",
			"settings": `[{"Key":"lr","Value":"0.5"},{"Key":"layers","Value":"2"},{"Key":"lr","Value":"0.1"}]`},
			"of the same model, settings, data and seed"},
		{map[string]string{"model": "gpt", "model_source": "edited", "data": "a.txt", "seed": "2",
			"settings": `[{"Key":"layers","Value":"2"},{"Key":"d","Value":"64"}]`},
			"with another source of model gpt, other settings (-D d=64 there, -D lr=0.1 here), other data (a.txt there, builtin here), another seed (2 there, 1 here)"},
		{map[string]string{"model": "bert", "data": "builtin", "seed": "1", "settings": "null"},
			"with another model (bert there, gpt here), other settings (none there, -D layers=2 -D lr=0.1 here)"},
	}
	for _, c := range cases {
		if got := runDiff(c.there, here, "1"); got != c.want {
			t.Errorf("have %q\nwant %q", got, c.want)
		}
	}
}

// TestCheckpointMeta checks that reading the metadata alone agrees with
// loading the whole checkpoint, and reports damage.
func TestCheckpointMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), CheckpointName)
	x := interp.NewTensor(ir.T(ir.F32, 4))
	meta := map[string]string{"model": "gpt", "step": "3"}
	if err := SaveCheckpoint(path, map[string]*interp.Tensor{"x": x}, meta); err != nil {
		t.Fatal(err)
	}
	got, err := CheckpointMeta(path)
	if err != nil || !reflect.DeepEqual(got, meta) {
		t.Errorf("CheckpointMeta = %v, %v; want %v", got, err, meta)
	}
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:20], 0o644)
	if _, err := CheckpointMeta(path); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated header: %v", err)
	}
}
