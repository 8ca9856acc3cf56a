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
	goruntime "runtime"
	"strings"
	"sync"
)

// The tools SharedObject runs. opt-19 and llc-19 come from Debian's llvm-19
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

// toolFlags returns opt's and the linker's settings for a module whose
// target triple is triple (its lowering's tools). Both are part of the
// cache key.
func toolFlags(triple string) (opt, link []string) {
	return lowerFor(archOf(triple)).tools()
}

// moduleTriple is the target triple the module text ll declares, or "".
func moduleTriple(ll string) string {
	for line := range strings.Lines(ll) {
		if rest, ok := strings.CutPrefix(line, "target triple = \""); ok {
			return strings.TrimSuffix(strings.TrimSpace(rest), "\"")
		}
	}
	return ""
}

// checkArch refuses a module for another architecture than this machine's:
// its shared object could not be linked or loaded here.
func checkArch(triple string) error {
	if archOf(triple) == "nvptx64" {
		return fmt.Errorf("codegen: a GPU module becomes PTX (Assemble), not a shared object")
	}
	if triple != "" && archOf(triple) != goruntime.GOARCH {
		return fmt.Errorf("codegen: cannot build a shared object for %s on this %s machine (Assemble gives its assembly)", triple, goruntime.GOARCH)
	}
	return nil
}

// Assemble runs opt -O3 and llc -O3 on the module text ll for the target
// it declares and returns the assembly: how kernels for another machine
// (aarch64 on an x86-64 host) are checked, and a GPU module's PTX (with
// libdevice linked in where it is installed, see Libdevice).
func Assemble(ll string) (string, error) {
	if err := loadTools(); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "xlc-asm-")
	if err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	defer os.RemoveAll(dir)
	in, bc, asm := filepath.Join(dir, "k.ll"), filepath.Join(dir, "k.bc"), filepath.Join(dir, "k.s")
	if err := os.WriteFile(in, []byte(ll), 0o644); err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	triple := moduleTriple(ll)
	optFlags, _ := toolFlags(triple)
	if err := runTool(append(append([]string{toolInfo.opt}, optFlags...), in, "-o", bc)); err != nil {
		return "", err
	}
	llc := []string{toolInfo.llc, "-O3", "-filetype=asm"}
	if archOf(triple) == "nvptx64" {
		llc = append(llc, ptxLLCFlags(ll)...)
		if err := linkLibdevice(ll, bc, dir); err != nil {
			return "", err
		}
	}
	if err := runTool(append(llc, bc, "-o", asm)); err != nil {
		return "", err
	}
	out, err := os.ReadFile(asm)
	if err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	return string(out), nil
}

// SharedObject turns the module text ll into a shared object and returns its
// path: opt-19 -O3, llc-19 -O3 -relocation-model=pic and cc -shared. A
// large module is split into shards (splitModule) that opt and llc compile
// concurrently ($XLC_BUILD_SHARDS, else GOMAXPROCS, at most maxShards); the
// code is the same as the whole module's. Results are cached under
// CacheDir()/<sha256 of ll, the tools' versions and flags>: an entry holds
// kernels.so, its seal kernels.so.sha256 and kernels.ll (profiles point
// to it). A build happens in a temporary folder renamed into place, so
// concurrent or interrupted builds never leave a partial entry; a hit
// touches the entry, and each build prunes the cache (pruneCache).
func SharedObject(ll string) (string, error) {
	if err := loadTools(); err != nil {
		return "", err
	}
	triple := moduleTriple(ll)
	if err := checkArch(triple); err != nil {
		return "", err
	}
	optFlags, linkFlags := toolFlags(triple)
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
	emu := strings.Contains(ll, "@"+emuRun+"(")
	if emu {
		h.Write([]byte{0})
		h.Write([]byte(emuSource))
	}
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
	lib := filepath.Join(tmp, "kernels.so")
	var shards []string
	if n := buildShards(len(ll)); n > 1 {
		shards = splitModule(ll, n)
	}
	var objs []string
	if shards == nil {
		obj, err := compileObject(tmp, "kernels", in, "", optFlags)
		if err != nil {
			return "", err
		}
		objs = []string{obj}
	} else {
		objs = make([]string, len(shards))
		errs := make([]error, len(shards))
		var wg sync.WaitGroup
		for i, text := range shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				objs[i], errs[i] = compileObject(tmp, fmt.Sprintf("shard%d", i), "", text, optFlags)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return "", err // the first shard's, for a deterministic message
			}
		}
	}
	if emu {
		obj, err := compileEmulator(tmp)
		if err != nil {
			return "", err
		}
		objs = append(objs, obj)
	}
	link := append(append([]string{toolInfo.cc, "-shared", "-o", lib}, objs...), linkFlags...)
	if err := runTool(link); err != nil {
		return "", err
	}
	// Only the module text, the shared object and (below) its seal stay.
	files, err := os.ReadDir(tmp)
	if err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	for _, f := range files {
		if name := f.Name(); name != "kernels.ll" && name != "kernels.so" {
			if err := os.Remove(filepath.Join(tmp, name)); err != nil {
				return "", fmt.Errorf("codegen: %v", err)
			}
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

// compileObject runs opt and llc on one module, the file in or else the
// text written to dir/<name>.ll, and returns the object's path,
// dir/<name>.o.
func compileObject(dir, name, in, text string, optFlags []string) (string, error) {
	if in == "" {
		in = filepath.Join(dir, name+".ll")
		if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("codegen: %v", err)
		}
	}
	bc, obj := filepath.Join(dir, name+".bc"), filepath.Join(dir, name+".o")
	if err := runTool(append(append([]string{toolInfo.opt}, optFlags...), in, "-o", bc)); err != nil {
		return "", err
	}
	if err := runTool([]string{toolInfo.llc, "-O3", "-filetype=obj", "-relocation-model=pic", bc, "-o", obj}); err != nil {
		return "", err
	}
	return obj, nil
}

// compileEmulator compiles the GPU emulator's scheduler (emurt/emu.c)
// into dir and returns the object's path.
func compileEmulator(dir string) (string, error) {
	src, obj := filepath.Join(dir, "emu.c"), filepath.Join(dir, "emu.o")
	if err := os.WriteFile(src, []byte(emuSource), 0o644); err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	return obj, runTool([]string{toolInfo.cc, "-O2", "-fPIC", "-c", src, "-o", obj})
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
