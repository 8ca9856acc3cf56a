package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	messyModel = "model m{input a:f32[2]\noutput y=sum(a*2)}"
	tidyModel  = "model m {\n  input a: f32[2]\n  output y = sum(a * 2)\n}\n"
)

// TestFmtSymlink checks that fmt -w on a symbolic link rewrites the file it
// points at and leaves the link a link.
func TestFmtSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.xl")
	link := filepath.Join(dir, "link.xl")
	if err := os.WriteFile(real, []byte(messyModel), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.xl", link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if _, errs, code := xlc(t, "fmt", "-w", link); code != 0 {
		t.Fatalf("fmt -w: exit %d: %s", code, errs)
	}
	st, err := os.Lstat(link)
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link.xl is no longer a symbolic link (%v, %v)", st.Mode(), err)
	}
	got, _ := os.ReadFile(real)
	if string(got) != tidyModel {
		t.Errorf("real.xl holds %q, want %q", got, tidyModel)
	}
	if st, _ := os.Stat(real); st.Mode().Perm() != 0o640 {
		t.Errorf("real.xl has mode %v, want 0640", st.Mode().Perm())
	}
}

// TestFmtGoesOn checks that a file that does not parse or cannot be read is
// reported while the other files are still formatted, with exit status 1.
func TestFmtGoesOn(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.xl")
	good := filepath.Join(dir, "good.xl")
	missing := filepath.Join(dir, "missing.xl")
	os.WriteFile(bad, []byte("model m {\n  output y = sum(\n}\n"), 0o644)
	os.WriteFile(good, []byte(messyModel), 0o644)
	_, errs, code := xlc(t, "fmt", "-w", bad, missing, good)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errs, bad+":2:") || !strings.Contains(errs, "missing.xl") {
		t.Errorf("stderr does not report both files:\n%s", errs)
	}
	if got, _ := os.ReadFile(good); string(got) != tidyModel {
		t.Errorf("good.xl holds %q, want %q", got, tidyModel)
	}
	out, _, code := xlc(t, "fmt", bad, good)
	if code != 1 || out != tidyModel {
		t.Errorf("fmt without -w: exit %d, stdout %q; want 1 and the good file", code, out)
	}
}
