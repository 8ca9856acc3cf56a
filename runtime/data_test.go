package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func writeTextFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadTextFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.txt")
	writeTextFile(t, p, strings.Repeat("0123456789", 10))
	d, err := LoadText(p, 0.1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Train) != 90 || len(d.Val) != 10 || string(d.Val) != "0123456789" || d.Source != p {
		t.Fatalf("split %d/%d, val %q, source %q", len(d.Train), len(d.Val), d.Val, d.Source)
	}
}

func TestLoadTextDir(t *testing.T) {
	dir := t.TempDir()
	writeTextFile(t, filepath.Join(dir, "b.txt"), "bbbb")
	writeTextFile(t, filepath.Join(dir, "a.txt"), "aaaa")
	writeTextFile(t, filepath.Join(dir, "sub", "c.md"), "cccc")
	writeTextFile(t, filepath.Join(dir, ".hidden"), "HHHH")
	writeTextFile(t, filepath.Join(dir, ".git", "x.txt"), "GGGG")
	writeTextFile(t, filepath.Join(dir, "bin.dat"), "x\x00y")
	writeTextFile(t, filepath.Join(dir, "latin1.txt"), "caf\xe9")
	writeTextFile(t, filepath.Join(dir, "empty.txt"), "")
	d, err := LoadText(dir, 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := string(d.Train) + string(d.Val)
	if want := "aaaa\nbbbb\ncccc"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if string(d.Val) != "cccc" { // round(14 * 0.25) = 4
		t.Fatalf("val %q", d.Val)
	}
}

func TestLoadTextErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.txt")
	writeTextFile(t, short, strings.Repeat("x", 100))
	binDir := filepath.Join(dir, "bin")
	writeTextFile(t, filepath.Join(binDir, "a.bin"), "\x00\x01")
	emptyDir := filepath.Join(dir, "none")
	os.Mkdir(emptyDir, 0o755)
	tests := []struct {
		path    string
		valFrac float64
		minLen  int
		want    string
	}{
		{filepath.Join(dir, "missing"), 0.1, 1, "missing: no such file or directory"},
		{emptyDir, 0.1, 1, "none: no text data"},
		{binDir, 0.1, 1, "bin: no text data (1 files skipped as binary or not UTF-8)"},
		{short, 0.1, 11, "short.txt: 100 bytes is too little data: the splits have 90 (train) and 10 (validation) bytes, each needs at least 11"},
		{short, 0, 1, "validation fraction 0 is not between 0 and 1"},
	}
	for _, tc := range tests {
		_, err := LoadText(tc.path, tc.valFrac, tc.minLen)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("LoadText(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestBuiltinText(t *testing.T) {
	d := BuiltinText()
	all := append(slices.Clone(d.Train), d.Val...)
	if len(all) < 200_000 || len(all) > 300_000 {
		t.Fatalf("builtin corpus has %d bytes", len(all))
	}
	if !utf8.Valid(all) || bytes.IndexByte(all, 0) >= 0 || d.Source != "builtin" {
		t.Fatal("builtin corpus is not plain text")
	}
	if len(d.Val)*10 < len(all)-10 || len(d.Val)*10 > len(all)+10 {
		t.Fatalf("val split %d of %d", len(d.Val), len(all))
	}
	e := BuiltinText()
	if !bytes.Equal(d.Train, e.Train) || !bytes.Equal(d.Val, e.Val) {
		t.Fatal("BuiltinText is not deterministic")
	}
	// English-like: mostly lowercase letters and spaces, many distinct words.
	words := map[string]bool{}
	for _, w := range strings.Fields(string(all)) {
		words[strings.Trim(w, ".,?\"")] = true
	}
	if len(words) < 200 {
		t.Fatalf("only %d distinct words", len(words))
	}
	if !strings.HasPrefix(string(all), "Chapter 1\n\n") {
		t.Fatalf("starts %q", all[:40])
	}
}

func TestBatch(t *testing.T) {
	d := &Dataset{Train: []byte("abcdefghijklmnopqrstuvwxyz"), Val: []byte("0123456789")}
	const batch, seq = 64, 5
	tok, tgt := d.Batch("train", batch, seq, 7, 3)
	if len(tok) != batch*seq || len(tgt) != batch*seq {
		t.Fatalf("lengths %d %d", len(tok), len(tgt))
	}
	starts := map[int64]bool{}
	for i := 0; i < batch; i++ {
		row, next := tok[i*seq:(i+1)*seq], tgt[i*seq:(i+1)*seq]
		for j := range seq {
			if row[j] != int64('a')+row[0]-'a'+int64(j) || next[j] != row[j]+1 {
				t.Fatalf("row %d: tokens %v targets %v are not a window and its shift", i, row, next)
			}
		}
		starts[row[0]] = true
	}
	// 64 draws over 21 window starts should hit nearly all of them, the last included.
	if len(starts) < 15 || !starts['a'] && !starts['u'] {
		t.Fatalf("window starts %v", starts)
	}
	tok2, tgt2 := d.Batch("train", batch, seq, 7, 3)
	if !slices.Equal(tok, tok2) || !slices.Equal(tgt, tgt2) {
		t.Fatal("Batch is not deterministic")
	}
	if tok3, _ := d.Batch("train", batch, seq, 7, 4); slices.Equal(tok, tok3) {
		t.Fatal("steps 3 and 4 drew the same batch")
	}
	if tok3, _ := d.Batch("train", batch, seq, 8, 3); slices.Equal(tok, tok3) {
		t.Fatal("seeds 7 and 8 drew the same batch")
	}
	vt, _ := d.Batch("val", 4, 10-1, 7, 3)
	for _, v := range vt {
		if v < '0' || v > '9' {
			t.Fatalf("val batch %v", vt)
		}
	}
	// Resuming at step k sees the batches of an uninterrupted run: a batch
	// depends on nothing but its arguments, whatever was drawn before.
	fresh := &Dataset{Train: d.Train, Val: d.Val}
	if a, _ := fresh.Batch("train", batch, seq, 7, 3); !slices.Equal(a, tok) {
		t.Fatal("Batch depends on history")
	}
}

func TestBatchPanics(t *testing.T) {
	d := &Dataset{Train: []byte("abc"), Val: []byte("de")}
	for _, f := range []func(){
		func() { d.Batch("test", 1, 1, 0, 0) },
		func() { d.Batch("val", 1, 2, 0, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
	d.Batch("val", 1, 1, 0, 0) // exactly seq+1 bytes is enough
}
