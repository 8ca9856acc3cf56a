package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWrite checks the new content replaces the old, the mode is set, and
// no temporary file is left behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new content" {
		t.Fatalf("read %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the folder, want 1 (a temporary file left over?)", len(entries))
	}
	if err := Write(filepath.Join(dir, "no", "such", "dir", "f"), nil, 0o644); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
