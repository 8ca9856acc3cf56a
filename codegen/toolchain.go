package codegen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The tools Build runs. opt-19 and llc-19 come from Debian's llvm-19
// package; cc (gcc) links the shared object.
const (
	optTool = "opt-19"
	llcTool = "llc-19"
	ccTool  = "cc"
)

var toolInfo struct {
	once     sync.Once
	err      error
	opt, llc string
	cc       string
	versions string // opt, llc and cc --version, for the cache key
	hostCPU  string
}

// lookTools finds the tools in PATH; the error is one line naming the
// Debian package to install.
func lookTools() (opt, llc, cc string, err error) {
	var err1, err2 error
	opt, err1 = exec.LookPath(optTool)
	llc, err2 = exec.LookPath(llcTool)
	if err1 != nil || err2 != nil {
		return "", "", "", fmt.Errorf("codegen: %s and %s not found in PATH: install the Debian package llvm-19 (apt-get install llvm-19)", optTool, llcTool)
	}
	if cc, err = exec.LookPath(ccTool); err != nil {
		return "", "", "", fmt.Errorf("codegen: %s not found in PATH: install the Debian package gcc (apt-get install gcc)", ccTool)
	}
	return opt, llc, cc, nil
}

func loadTools() error {
	t := &toolInfo
	t.once.Do(func() {
		if t.opt, t.llc, t.cc, t.err = lookTools(); t.err != nil {
			return
		}
		var vs []string
		for _, tool := range []string{t.opt, t.llc, t.cc} {
			out, err := exec.Command(tool, "--version").Output()
			if err != nil {
				t.err = fmt.Errorf("codegen: %s --version: %v", tool, err)
				return
			}
			vs = append(vs, string(out))
			if tool == t.llc {
				for _, line := range strings.Split(string(out), "\n") {
					if cpu, ok := strings.CutPrefix(strings.TrimSpace(line), "Host CPU:"); ok {
						t.hostCPU = strings.TrimSpace(cpu)
					}
				}
			}
		}
		t.versions = strings.Join(vs, "\x00")
		if t.hostCPU == "" || t.hostCPU == "(unknown)" {
			t.hostCPU = "x86-64"
		}
	})
	return t.err
}

// Available reports whether the toolchain (opt-19, llc-19, cc) is installed.
func Available() bool { return loadTools() == nil }

// ToolchainError says why the toolchain is unusable (one line naming the
// Debian package), or is nil.
func ToolchainError() error { return loadTools() }

// HostCPU is the host's CPU name as llc-19 reports it ("Host CPU:"), e.g.
// znver4; x86-64 when llc does not know it.
func HostCPU() (string, error) {
	if err := loadTools(); err != nil {
		return "", err
	}
	return toolInfo.hostCPU, nil
}

// CacheDir is the root of the shared-object cache: os.UserCacheDir()/xlc,
// or $XLC_CACHE when set.
func CacheDir() (string, error) {
	if d := os.Getenv("XLC_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("codegen: no cache folder: %v", err)
	}
	return filepath.Join(d, "xlc"), nil
}

// optFlags are opt's settings: -O3, and glibc's libmvec as the vector
// library, so that loops calling llvm.exp/log/sin/cos.f64 vectorize (calls
// to _ZGVdN4v_exp and the like; libmvec's double functions are within 4
// ulps, so the f32 results, rounded once from double, are libm's all but
// always). linkFlags link libmvec and libm. Both are part of the cache key.
var (
	optFlags  = []string{"-O3", "-vector-library=LIBMVEC-X86"}
	linkFlags = []string{"-lmvec", "-lm"}
)

// Build turns the module text ll into a shared object and returns its path:
// opt-19 -O3 (optFlags), llc-19 -O3 -filetype=obj -relocation-model=pic, cc -shared.
// Results are cached under CacheDir()/<sha256 of ll and the tools'
// versions and flags>/kernels.so; a build happens in a temporary folder that is
// renamed into place, so concurrent builds and interrupted ones never leave
// a partial entry. An entry keeps the shared object, its seal
// (kernels.so.sha256) and the module text kernels.ll (profiles point to
// it); the bitcode and object are deleted. A cache hit touches the entry's
// mtime, and after each build the cache is pruned (pruneCache).
func Build(ll string) (string, error) {
	if err := loadTools(); err != nil {
		return "", err
	}
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(toolInfo.versions))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(optFlags, " ") + " | " + strings.Join(linkFlags, " ")))
	h.Write([]byte{0})
	h.Write([]byte(ll))
	key := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(root, key)
	so := filepath.Join(dir, "kernels.so")
	if cached(so) {
		touch(dir)
		return so, nil
	}
	// A damaged entry (a crash mid-write, a truncated file) is rebuilt.
	os.RemoveAll(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	in := filepath.Join(tmp, "kernels.ll")
	if err := os.WriteFile(in, []byte(ll), 0o644); err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	bc, obj, lib := filepath.Join(tmp, "kernels.bc"), filepath.Join(tmp, "kernels.o"), filepath.Join(tmp, "kernels.so")
	steps := [][]string{
		append(append([]string{toolInfo.opt}, optFlags...), in, "-o", bc),
		{toolInfo.llc, "-O3", "-filetype=obj", "-relocation-model=pic", bc, "-o", obj},
		append([]string{toolInfo.cc, "-shared", "-o", lib, obj}, linkFlags...),
	}
	for _, s := range steps {
		if err := runTool(s); err != nil {
			return "", err
		}
	}
	for _, f := range []string{bc, obj} {
		if err := os.Remove(f); err != nil {
			return "", fmt.Errorf("codegen: %v", err)
		}
	}
	if err := seal(lib, tmp); err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another build may have placed the same entry first.
		if cached(so) {
			touch(dir)
			return so, nil
		}
		return "", fmt.Errorf("codegen: %v", err)
	}
	touch(dir)
	pruneCache(root, key)
	return so, nil
}

// The cache's bounds: pruneCache removes the least recently used entries
// beyond cacheMaxEntries entries or cacheMaxBytes bytes, but never one used
// (built or found by Build) less than cacheMinAge ago, which a process may
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
// bitcode and objects that entries of older versions of Build kept, and
// build folders (.build-*) that a killed process left more than
// cacheMinAge ago. Removal renames an entry out of the way first (atomic:
// a concurrent Build finds the whole entry or none, and two pruners never
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

func runTool(args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 4000 {
			msg = msg[:4000] + "..."
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("codegen: %s failed: %s", filepath.Base(args[0]), msg)
		}
		return fmt.Errorf("codegen: %s: %v: %s", filepath.Base(args[0]), err, msg)
	}
	return nil
}
