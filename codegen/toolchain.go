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
	"sort"
	"strconv"
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
	if triple != "" && archOf(triple) != goruntime.GOARCH {
		return fmt.Errorf("codegen: cannot build a shared object for %s on this %s machine (Assemble gives its assembly)", triple, goruntime.GOARCH)
	}
	return nil
}

// Assemble runs opt -O3 and llc -O3 on the module text ll for the target
// it declares and returns the assembly: how kernels for another machine
// (aarch64 on an x86-64 host) are checked.
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
	optFlags, _ := toolFlags(moduleTriple(ll))
	if err := runTool(append(append([]string{toolInfo.opt}, optFlags...), in, "-o", bc)); err != nil {
		return "", err
	}
	if err := runTool([]string{toolInfo.llc, "-O3", "-filetype=asm", bc, "-o", asm}); err != nil {
		return "", err
	}
	out, err := os.ReadFile(asm)
	if err != nil {
		return "", fmt.Errorf("codegen: %v", err)
	}
	return string(out), nil
}

// Build turns the module text ll into a shared object and returns its path:
// opt-19 -O3 (toolFlags), llc-19 -O3 -filetype=obj -relocation-model=pic, cc -shared.
// A module of at least shardMinBytes is split into shards (splitModule:
// self-contained modules whose code is the same as in the whole module)
// that opt and llc compile concurrently, one process pair per shard; cc
// links their objects into the one shared object. The number of shards is
// $XLC_BUILD_SHARDS when set (1: never split), else GOMAXPROCS, at most
// maxShards. Results are cached under CacheDir()/<sha256 of ll and the tools'
// versions and flags>/kernels.so (the key does not depend on the shards); a build happens in a temporary folder that is
// renamed into place, so concurrent builds and interrupted ones never leave
// a partial entry. An entry keeps the shared object, its seal
// (kernels.so.sha256) and the module text kernels.ll (profiles point to
// it); the shards' texts, bitcode and objects are deleted. A cache hit touches the entry's
// mtime, and after each build the cache is pruned (pruneCache).
func Build(ll string) (string, error) {
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

// Sharding bounds: modules under shardMinBytes of text are built whole
// (a process pair's start-up outweighs the gain), and GOMAXPROCS gives at
// most maxShards shards.
const (
	shardMinBytes = 64 << 10
	maxShards     = 8
)

// buildShards is how many shards Build splits a module of size bytes into
// (see Build); 1 means whole.
func buildShards(size int) int {
	if s := os.Getenv("XLC_BUILD_SHARDS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 {
			return n
		}
	}
	if size < shardMinBytes {
		return 1
	}
	return min(goruntime.GOMAXPROCS(0), maxShards)
}

// llEntity is one top-level entity of a module's text: a header line
// (target, type or attribute group: copied into every shard), a global, a
// function declaration or a function definition.
type llEntity struct {
	kind  byte // 'h' header, 'g' global, 'd' declaration, 'f' definition
	name  string
	text  string // its lines, each ending in a newline
	local bool   // internal or private linkage
	// dup: the entity may be copied into every shard that uses it: a
	// local constant, or a local noinline function using only
	// declarations and other dup entities (the out-of-memory handler), whose
	// callers' code does not depend on how many callers it has. (Where all
	// of a copy's callers pass the same message, opt propagates it into
	// the copy: only that cold path's argument set-up differs.)
	dup  bool
	refs []string // the global names (@name) it mentions
}

// splitModule splits the module text ll into at most n self-contained
// module texts whose definitions are together those of ll, or returns nil
// when it cannot (fewer than two parts, or text it does not recognize:
// only llir's output is split). Definitions that reference one another are
// kept in one shard (union-find over references), so that every function is
// optimized with the same callees and callers as in the whole module and
// its code is the same; only dup entities (see llEntity) are copied into
// each shard that uses them, and each shard declares the external
// functions it calls. Parts are balanced by text size, largest first, and
// keep the entities' order.
func splitModule(ll string, n int) []string {
	var ents []*llEntity
	lines := strings.SplitAfter(ll, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trim := strings.TrimRight(line, "\n")
		switch {
		case strings.TrimSpace(trim) == "":
		case strings.HasPrefix(trim, "target ") || strings.HasPrefix(trim, "source_filename ") ||
			strings.HasPrefix(trim, "attributes #") || strings.HasPrefix(trim, "%"):
			if strings.Contains(trim, "@") {
				return nil
			}
			ents = append(ents, &llEntity{kind: 'h', text: ensureNL(line)})
		case strings.HasPrefix(trim, "@"):
			name, rest, ok := strings.Cut(trim[1:], " = ")
			if !ok || !isLLName(name) {
				return nil
			}
			e := &llEntity{kind: 'g', name: name, text: ensureNL(line)}
			e.local = strings.HasPrefix(rest, "private ") || strings.HasPrefix(rest, "internal ")
			e.dup = e.local && strings.Contains(rest, " constant ")
			if e.refs, ok = llRefs(rest); !ok {
				return nil
			}
			ents = append(ents, e)
		case strings.HasPrefix(trim, "declare "):
			name, ok := llFuncName(trim)
			if !ok {
				return nil
			}
			ents = append(ents, &llEntity{kind: 'd', name: name, text: ensureNL(line)})
		case strings.HasPrefix(trim, "define "):
			name, ok := llFuncName(trim)
			if !ok {
				return nil
			}
			var b strings.Builder
			b.WriteString(line)
			for i++; i < len(lines) && strings.TrimRight(lines[i], "\n") != "}"; i++ {
				b.WriteString(lines[i])
			}
			if i == len(lines) {
				return nil
			}
			b.WriteString("}\n")
			e := &llEntity{kind: 'f', name: name, text: b.String()}
			e.local = strings.HasPrefix(trim, "define internal ") || strings.HasPrefix(trim, "define private ")
			_, attrs, _ := strings.Cut(trim, ")")
			e.dup = e.local && strings.Contains(" "+attrs+" ", " noinline ")
			if e.refs, ok = llRefs(e.text); !ok {
				return nil
			}
			ents = append(ents, e)
		default:
			return nil
		}
	}
	byName := map[string]int{}
	for i, e := range ents {
		if e.kind != 'h' {
			if _, twice := byName[e.name]; twice {
				return nil
			}
			byName[e.name] = i
		}
	}
	// A dup function stays dup only while everything it uses is a
	// declaration or dup.
	for changed := true; changed; {
		changed = false
		for _, e := range ents {
			if e.kind != 'f' || !e.dup {
				continue
			}
			for _, r := range e.refs {
				if j, ok := byName[r]; ok && ents[j].kind != 'd' && !ents[j].dup {
					e.dup, changed = false, true
					break
				}
			}
		}
	}
	// Union the definitions and globals that are not dup by reference.
	parent := make([]int, len(ents))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owned := func(e *llEntity) bool { return (e.kind == 'f' || e.kind == 'g') && !e.dup }
	for i, e := range ents {
		if !owned(e) {
			continue
		}
		for _, r := range e.refs {
			if j, ok := byName[r]; ok && owned(ents[j]) {
				parent[find(i)] = find(j)
			}
		}
	}
	var clusters []int // roots, by first member
	size := map[int]int{}
	for i, e := range ents {
		if !owned(e) {
			continue
		}
		r := find(i)
		if _, ok := size[r]; !ok {
			clusters = append(clusters, r)
		}
		size[r] += len(e.text)
	}
	n = min(n, len(clusters))
	if n < 2 {
		return nil
	}
	sort.SliceStable(clusters, func(a, b int) bool { return size[clusters[a]] > size[clusters[b]] })
	shardOf := map[int]int{} // cluster root -> shard
	load := make([]int, n)
	for _, r := range clusters {
		best := 0
		for s := range load {
			if load[s] < load[best] {
				best = s
			}
		}
		shardOf[r] = best
		load[best] += size[r]
	}
	out := make([]string, n)
	for s := range out {
		in := make([]bool, len(ents))
		var mark func(i int)
		mark = func(i int) {
			if in[i] {
				return
			}
			in[i] = true
			for _, r := range ents[i].refs {
				if j, ok := byName[r]; ok {
					mark(j)
				}
			}
		}
		for i, e := range ents {
			if owned(e) && shardOf[find(i)] == s {
				mark(i)
			}
		}
		var b strings.Builder
		for i, e := range ents {
			if e.kind == 'h' || in[i] {
				if b.Len() > 0 && e.kind == 'f' {
					b.WriteString("\n")
				}
				b.WriteString(e.text)
			}
		}
		out[s] = b.String()
	}
	return out
}

func ensureNL(line string) string {
	if strings.HasSuffix(line, "\n") {
		return line
	}
	return line + "\n"
}

// isLLName reports whether s is an unquoted LLVM global name.
func isLLName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLLNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isLLNameByte(c byte) bool {
	return c == '_' || c == '.' || c == '$' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// llFuncName is the name in a define or declare line: @name( .
func llFuncName(line string) (string, bool) {
	at := strings.IndexByte(line, '@')
	if at < 0 {
		return "", false
	}
	end := strings.IndexByte(line[at:], '(')
	if end < 0 {
		return "", false
	}
	name := line[at+1 : at+end]
	return name, isLLName(name)
}

// llRefs lists the global names mentioned in text (@name), in order, once
// each; false for a quoted name (@"..."), which splitModule does not handle.
// A mention inside a string constant is harmless: it can only join
// entities or copy a declaration.
func llRefs(text string) ([]string, bool) {
	var refs []string
	seen := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		if i+1 < len(text) && text[i+1] == '"' {
			return nil, false
		}
		j := i + 1
		for j < len(text) && isLLNameByte(text[j]) {
			j++
		}
		if name := text[i+1 : j]; name != "" && !seen[name] {
			seen[name] = true
			refs = append(refs, name)
		}
		i = j - 1
	}
	return refs, true
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
