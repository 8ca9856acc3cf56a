package codegen

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCacheEntryFiles checks that a cache entry keeps the shared object,
// its seal and the module text only, and that a hit marks it used.
func TestCacheEntryFiles(t *testing.T) {
	needTools(t)
	root := t.TempDir()
	t.Setenv("XLC_CACHE", root)
	so, err := SharedObject(`define void @f() {
  ret void
}`)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(so)
	if got := strings.Join(dirNames(t, dir), " "); got != "kernels.ll kernels.so kernels.so.sha256" {
		t.Errorf("entry holds %s, want kernels.ll kernels.so kernels.so.sha256", got)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	if again, err := SharedObject(`define void @f() {
  ret void
}`); err != nil || again != so {
		t.Fatalf("second build: %q, %v", again, err)
	}
	if info, err := os.Stat(dir); err != nil || time.Since(info.ModTime()) > time.Hour {
		t.Errorf("a cache hit did not mark the entry used: %v %v", info.ModTime(), err)
	}
}

// TestPruneCache checks pruneCache on a cache of fake entries: the least
// recently used beyond the count and byte bounds go, except entries used
// within cacheMinAge, the entry just built, and anything not named like an
// entry; stale build folders go, fresh ones (a build in progress) stay;
// old entries lose their bitcode and object files.
func TestPruneCache(t *testing.T) {
	root := t.TempDir()
	defer func(n int, b int64) { cacheMaxEntries, cacheMaxBytes = n, b }(cacheMaxEntries, cacheMaxBytes)
	cacheMaxEntries, cacheMaxBytes = 4, 1000
	now := time.Now()
	key := func(i int) string { return fmt.Sprintf("%064x", i) }
	mk := func(name string, age time.Duration, files map[string]int) {
		t.Helper()
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, n := range files {
			if err := os.WriteFile(filepath.Join(dir, f), make([]byte, n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		at := now.Add(-age)
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
	}
	small := map[string]int{"kernels.so": 100}
	// Entries 0..5 used 10 min .. 60 h ago; 6 is the newest build, oldest
	// by mtime; 7 used 2 h ago but too big for the byte bound.
	mk(key(0), 10*time.Minute, small)
	mk(key(1), 20*time.Minute, small)
	mk(key(2), 2*time.Hour, map[string]int{"kernels.so": 100, "kernels.bc": 5000, "kernels.o": 5000})
	mk(key(3), 3*time.Hour, small)
	mk(key(4), 30*time.Hour, small)
	mk(key(5), 60*time.Hour, small)
	mk(key(6), 90*time.Hour, small)
	mk(key(7), 2*time.Hour+time.Minute, map[string]int{"kernels.so": 900})
	mk(".build-fresh", time.Minute, small)
	mk(".build-stale", 5*time.Hour, small)
	mk("notes", 100*time.Hour, small)
	mk(strings.Repeat("g", 64), 100*time.Hour, small)

	pruneCache(root, key(6))

	got := dirNames(t, root)
	want := []string{key(0), key(1), key(2), key(3), key(6), ".build-fresh", "notes", strings.Repeat("g", 64)}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after pruning:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(root, key(2), "kernels.bc")); !os.IsNotExist(err) {
		t.Errorf("an old entry kept its bitcode (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, key(2), "kernels.so")); err != nil {
		t.Errorf("an old entry lost its shared object: %v", err)
	}

	// With room for one entry, the entries used within the hour stay.
	cacheMaxEntries = 1
	pruneCache(root, key(6))
	got = got[:0]
	for _, name := range dirNames(t, root) {
		if isKey(name) {
			got = append(got, name)
		}
	}
	if want := []string{key(0), key(1), key(6)}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("with one entry allowed, kept %v, want %v", got, want)
	}
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
