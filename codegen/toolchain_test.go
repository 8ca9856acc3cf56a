package codegen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"xlc/ir"
)

// shardCase is a function with several kernels, a fast dot among them
// when compiled for an AVX-512 CPU (its internal gemm functions and the
// out-of-memory handler they share).
const shardCase = `func @f(%a: f32[128,256], %b: f32[256,128], %x: f32[128,128]) -> (r: f32[128,128], s: f32[128]) {
  %0 = dot %a, %b {batch=[[],[]], contract=[[1],[0]]} : f32[128,128]
  %1 = exp %x : f32[128,128]
  %2 = add %0, %1 : f32[128,128]
  %3 = reduce_sum %2 {axes=[1]} : f32[128]
  %4 = tanh %2 : f32[128,128]
  return %4, %3
}`

// TestSplitModule checks splitModule on a compiled module: every
// definition lands in exactly one shard except the copied ones (local
// noinline functions and local constants), a kernel's internal functions
// stay with it, shards keep the module's header, and each shard is a
// valid module (opt-19 verifies it). Text it does not recognize is not split.
func TestSplitModule(t *testing.T) {
	f, err := ir.ParseFunc(shardCase)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(f, Options{CPU: "skylake-avx512"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.LL, ".gemm") {
		t.Fatalf("no fast dot in the module")
	}
	shards := splitModule(p.LL, 3)
	if len(shards) != 3 {
		t.Fatalf("%d shards, want 3", len(shards))
	}
	defined := func(text string) map[string]string {
		d := map[string]string{}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "define ") {
				name, _ := llFuncName(line)
				d[name] = line
			}
		}
		return d
	}
	where := map[string][]int{}
	for i, s := range shards {
		if !strings.HasPrefix(s, "target datalayout") {
			t.Errorf("shard %d does not start with the header:\n%.200s", i, s)
		}
		for name := range defined(s) {
			where[name] = append(where[name], i)
		}
	}
	for name, line := range defined(p.LL) {
		local := strings.HasPrefix(line, "define internal ")
		switch n := len(where[name]); {
		case n == 0:
			t.Errorf("@%s is in no shard", name)
		case n > 1 && !(local && strings.Contains(line, " noinline")):
			t.Errorf("@%s is in shards %v", name, where[name])
		}
		if k, _, ok := strings.Cut(name, "."); ok && len(where[k]) == 1 && len(where[name]) == 1 && where[k][0] != where[name][0] {
			t.Errorf("@%s is not in its kernel's shard", name)
		}
	}
	if testing.Short() || loadTools() != nil {
		return
	}
	dir := t.TempDir()
	for i, s := range shards {
		in := filepath.Join(dir, "s"+string(rune('0'+i))+".ll")
		if err := os.WriteFile(in, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(toolInfo.opt, "-passes=verify", "-disable-output", in).CombinedOutput(); err != nil {
			t.Errorf("shard %d: %v\n%s", i, err, out)
		}
	}

	for _, bad := range []string{
		"this is not LLVM IR",
		"define void @f() {\n  ret void\n}\n", // one definition: nothing to split
		"@\"quoted name\" = global i32 0\ndefine void @f() {\n  ret void\n}\ndefine void @g() {\n  ret void\n}\n",
		"define void @f() {\n  ret void\n", // no closing brace
	} {
		if s := splitModule(bad, 2); s != nil {
			t.Errorf("splitModule(%q) = %q, want nil", bad, s)
		}
	}
}

// TestShardedBuildCache builds one module in three shards: the entry keeps
// only the module text, the shared object and its seal, exports every
// kernel, and is found again by a whole build of the same text (the key
// does not depend on sharding).
func TestShardedBuildCache(t *testing.T) {
	needTools(t)
	t.Setenv("XLC_CACHE", t.TempDir())
	p := compileText(t, shardCase)
	t.Setenv("XLC_BUILD_SHARDS", "3")
	so, err := SharedObject(p.LL)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dirNames(t, filepath.Dir(so)), " "); got != "kernels.ll kernels.so kernels.so.sha256" {
		t.Errorf("entry holds %s", got)
	}
	if ll, _ := os.ReadFile(filepath.Join(filepath.Dir(so), "kernels.ll")); string(ll) != p.LL {
		t.Errorf("the entry's kernels.ll is not the whole module")
	}
	out, err := exec.Command("nm", "-D", "--defined-only", so).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range p.Kernels {
		if !strings.Contains(string(out), " T "+k.Symbol+"\n") {
			t.Errorf("%s not exported:\n%s", k.Symbol, out)
		}
	}
	info, err := os.Stat(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XLC_BUILD_SHARDS", "1")
	again, err := SharedObject(p.LL)
	if err != nil || again != so {
		t.Fatalf("whole build after sharded: %q, %v; want %q", again, err, so)
	}
	if now, err := os.Stat(so); err != nil || !now.ModTime().Equal(info.ModTime()) {
		t.Errorf("the entry was rebuilt")
	}
	// A module that fails in one shard reports the tool's message.
	t.Setenv("XLC_CACHE", t.TempDir())
	t.Setenv("XLC_BUILD_SHARDS", "2")
	bad := "define void @f() {\n  ret void\n}\n\ndefine void @g() {\n  %x = add i32 1\n  ret void\n}\n"
	if _, err := SharedObject(bad); err == nil || !strings.Contains(err.Error(), "opt-19 failed") {
		t.Errorf("bad shard: err = %v", err)
	}
}
