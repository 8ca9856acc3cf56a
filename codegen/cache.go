package codegen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The cache's bounds: pruneCache removes the least recently used entries
// beyond cacheMaxEntries entries or cacheMaxBytes bytes, but never one used
// (built or found by SharedObject) less than cacheMinAge ago, which a process may
// be about to open; so the cache can exceed the bounds by what an hour of
// builds adds.
var (
	cacheMaxEntries = 200
	cacheMaxBytes   = int64(2 << 30)
	cacheMinAge     = time.Hour
)

// touch marks a cache entry used now (its folder's mtime); failures (a
// read-only cache) only weaken pruning's order.
func touch(dir string) {
	now := time.Now()
	os.Chtimes(dir, now, now)
}

// pruneCache bounds the cache under root (see cacheMaxEntries): entries are
// the folders named by a 64-hex-digit key, ordered by mtime, the newest
// first; keep (the entry just built) always stays. It also deletes the
// bitcode and objects that entries of older versions of SharedObject kept, and
// build folders (.build-*) that a killed process left more than
// cacheMinAge ago. Removal renames an entry out of the way first (atomic:
// a concurrent SharedObject finds the whole entry or none, and two pruners never
// delete twice), then deletes it. Errors are ignored: pruning is
// housekeeping, and a process that lost a race simply skips that entry.
func pruneCache(root, keep string) {
	es, err := os.ReadDir(root)
	if err != nil {
		return
	}
	type entry struct {
		name  string
		mtime time.Time
		bytes int64
	}
	var entries []entry
	now := time.Now()
	for _, e := range es {
		if !e.IsDir() {
			continue
		}
		name, path := e.Name(), filepath.Join(root, e.Name())
		info, err := e.Info()
		if err != nil {
			continue
		}
		if strings.HasPrefix(name, ".build-") || strings.HasPrefix(name, ".evict-") {
			if now.Sub(info.ModTime()) > cacheMinAge {
				os.RemoveAll(path)
			}
			continue
		}
		if !isKey(name) {
			continue
		}
		stripped := false
		for _, f := range []string{"kernels.bc", "kernels.o"} {
			stripped = os.Remove(filepath.Join(path, f)) == nil || stripped
		}
		if stripped { // keep the entry's age
			os.Chtimes(path, info.ModTime(), info.ModTime())
		}
		ent := entry{name: name, mtime: info.ModTime()}
		files, _ := os.ReadDir(path)
		for _, f := range files {
			if fi, err := f.Info(); err == nil {
				ent.bytes += fi.Size()
			}
		}
		entries = append(entries, ent)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].mtime.After(entries[j].mtime) })
	n, total := 0, int64(0)
	for _, e := range entries {
		n++
		total += e.bytes
		if e.name == keep || (n <= cacheMaxEntries && total <= cacheMaxBytes) || now.Sub(e.mtime) < cacheMinAge {
			continue
		}
		path := filepath.Join(root, e.name)
		if info, err := os.Stat(path); err != nil || now.Sub(info.ModTime()) < cacheMinAge {
			continue // gone, or used since the scan
		}
		gone := filepath.Join(root, fmt.Sprintf(".evict-%s-%d-%d", e.name, os.Getpid(), now.UnixNano()))
		if os.Rename(path, gone) == nil {
			n--
			total -= e.bytes
			os.RemoveAll(gone)
		}
	}
}

// isKey reports whether name is a cache key: 64 lowercase hex digits.
func isKey(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// seal records the shared object's SHA-256 beside it (kernels.so.sha256)
// and syncs both and their folder, so that an entry renamed into the cache
// is whole and can be checked.
func seal(lib, dir string) error {
	data, err := os.ReadFile(lib)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(lib+".sha256", []byte(hex.EncodeToString(sum[:])), 0o644); err != nil {
		return err
	}
	for _, path := range []string{lib, lib + ".sha256", dir} {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// cached reports whether so is a whole cache entry: it exists and matches
// the SHA-256 that seal recorded.
func cached(so string) bool {
	want, err := os.ReadFile(so + ".sha256")
	if err != nil {
		return false
	}
	data, err := os.ReadFile(so)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == string(want)
}
