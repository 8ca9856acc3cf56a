package codegen

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"xlc/internal/llvmtest"
	"xlc/ir"
)

var update = flag.Bool("update", false, "rewrite testdata/codegen/*.ll")

// needTools skips the test when the toolchain is missing, except under
// CI=true, where it fails.
func needTools(t *testing.T) {
	t.Helper()
	llvmtest.Require(t, loadTools())
}

// goldenCases are small functions whose emitted modules are kept in
// testdata/codegen/<name>.ll (for a fixed CPU, so they do not depend on the
// host); go test ./codegen -update rewrites them.
var goldenCases = map[string]string{
	"elementwise": `func @f(%x: f32[4,8], %y: f32[8]) -> (r: f32[4,8]) {
  %0 = broadcast %y {dims=[1]} : f32[4,8]
  %1 = mul %x, %0 : f32[4,8]
  return %1
}`,
	"reduce": `func @f(%x: f16[3,5]) -> (r: f16[3]) {
  %0 = reduce_sum %x {axes=[1]} : f16[3]
  return %0
}`,
}

func TestGolden(t *testing.T) {
	for name, src := range goldenCases {
		t.Run(name, func(t *testing.T) {
			f, err := ir.ParseFunc(src)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(f, Options{CPU: "x86-64-v3"})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "testdata", "codegen", name+".ll")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(p.LL), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./codegen -update writes it)", err)
			}
			if p.LL != string(want) {
				t.Errorf("%s: the module differs from %s (go test ./codegen -update rewrites it; review the diff)\n%s", name, path, p.LL)
			}
		})
	}
}

// TestCompileKernels checks the Program's kernels, extents and aliases.
func TestCompileKernels(t *testing.T) {
	f, err := ir.ParseFunc(`func @f(%x: f32[6,5], %k: i64[]) -> (a: f32[30], b: f32[6], c: f32[10]) {
  %0 = exp %x : f32[6,5]
  %1 = reshape %0 : f32[30]
  %2 = stop_gradient %1 : f32[30]
  %3 = reduce_max %x {axes=[1]} : f32[6]
  %4 = rng %k {dist=uniform, stream=1} : f32[10]
  return %2, %3, %4
}`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(f, Options{CPU: "x86-64"})
	if err != nil {
		t.Fatal(err)
	}
	type kk struct {
		sym    string
		instr  int
		extent int64
		args   int
	}
	want := []kk{{"xlc_k0", 0, 30, 1}, {"xlc_k3", 3, 6, 1}, {"xlc_k4", 4, 3, 1}}
	if len(p.Kernels) != len(want) {
		t.Fatalf("%d kernels, want %d: %+v", len(p.Kernels), len(want), p.Kernels)
	}
	for i, k := range p.Kernels {
		if got := (kk{k.Symbol, k.Instr, k.Extent, len(k.Args)}); got != want[i] {
			t.Errorf("kernel %d: %+v, want %+v", i, got, want[i])
		}
		if !strings.Contains(p.LL, "define void @"+k.Symbol+"(i8** %bufs, i64 %lo, i64 %hi)") {
			t.Errorf("no exported %s with the kernel ABI", k.Symbol)
		}
	}
	if len(p.Aliases) != 2 || p.Aliases[0].Instr != 1 || p.Aliases[0].Of != f.Body[0] || p.Aliases[1].Of != f.Body[1] {
		t.Errorf("aliases %+v, want reshape and stop_gradient", p.Aliases)
	}
	for _, s := range []string{`target triple = "x86_64-pc-linux-gnu"`, `"target-cpu"="x86-64"`, "noalias", "alwaysinline"} {
		if !strings.Contains(p.LL, s) {
			t.Errorf("module lacks %s", s)
		}
	}
}

// TestVectorized checks that opt-19 -O3 turns an elementwise f32 kernel
// into vector code: the assembly llc makes for the host uses ymm or zmm
// compileText parses src and compiles it for the host.
func compileText(t *testing.T, src string) *Program {
	t.Helper()
	return compileTextFor(t, src, nil)
}

// compileTextFor parses src and compiles it for tg (nil: the host).
func compileTextFor(t *testing.T, src string, tg *Target) *Program {
	t.Helper()
	p, err := Compile(parse(t, src), Options{Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// registers.
func TestVectorized(t *testing.T) {
	needTools(t)
	p := compileText(t, `func @f(%x: f32[64,256], %y: f32[64,256]) -> (r: f32[64,256]) {
  %0 = mul %x, %y : f32[64,256]
  return %0
}`)
	dir := t.TempDir()
	ll, bc, s := filepath.Join(dir, "k.ll"), filepath.Join(dir, "k.bc"), filepath.Join(dir, "k.s")
	if err := os.WriteFile(ll, []byte(p.LL), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{toolInfo.opt, "-O3", ll, "-o", bc}, {toolInfo.llc, "-O3", bc, "-o", s}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	asm, err := os.ReadFile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`vmulps\s+.*%[yz]mm`).Match(asm) {
		t.Errorf("no vector multiply (vmulps on ymm/zmm) in the kernel for %s:\n%s", p.CPU, asm)
	}
}

// TestBuildCache checks that SharedObject places one shared object per module
// text and finds it again.
func TestBuildCache(t *testing.T) {
	needTools(t)
	t.Setenv("XLC_CACHE", t.TempDir())
	p := compileText(t, `func @f(%x: f32[3]) -> (r: f32[3]) {
  %0 = neg %x : f32[3]
  return %0
}`)
	so, err := SharedObject(p.LL)
	if err != nil {
		t.Fatal(err)
	}
	again, err := SharedObject(p.LL)
	if err != nil || again != so {
		t.Fatalf("second build: %q, %v; want %q", again, err, so)
	}
	entries, err := os.ReadDir(os.Getenv("XLC_CACHE"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache holds %v (%v), want one entry and no temporary folder", entries, err)
	}
	// A damaged entry (here truncated, as after a crash) is rebuilt.
	whole, _ := os.ReadFile(so)
	if err := os.Truncate(so, 10); err != nil {
		t.Fatal(err)
	}
	if again, err := SharedObject(p.LL); err != nil || again != so {
		t.Fatalf("build after damage: %q, %v", again, err)
	}
	if now, _ := os.ReadFile(so); len(now) != len(whole) {
		t.Errorf("damaged cache entry served: %d bytes, want %d", len(now), len(whole))
	}
	if _, err := SharedObject("this is not LLVM IR"); err == nil || strings.Count(err.Error(), "\n") > 40 {
		t.Errorf("bad module: err = %v", err)
	}
}

// TestMissingToolsMessage checks the one-line error naming the Debian
// package when the tools are not in PATH.
func TestMissingToolsMessage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, _, err := lookTools()
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "llvm-19") {
		t.Errorf("error %q, want one line naming llvm-19", err)
	}
}

// TestInPlaceNoAlias checks a donated result written in place (the plan puts
// %0 in %w's buffer): the kernel reads %w through its result pointer, %w's
// own parameter is not noalias (the runtime passes the same address for
// both, and noalias on two pointers to bytes one of them writes is undefined
// behaviour), the other pointers stay noalias, and the kernel is not shared
// with the same update written to its own buffer.
func TestInPlaceNoAlias(t *testing.T) {
	f, err := ir.ParseFunc(`func @f(%x: f32[64,256] {role=input}, %w: f32[64,256] {role=param}, %v: f32[64,256] {role=param}) -> (w: f32[64,256], u: f32[64,256]) {
  %0 = sub %w, %x : f32[64,256]
  %1 = sub %v, %x : f32[64,256]
  return %0, %1
}`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(f, Options{CPU: "x86-64-v3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Kernels) != 2 {
		t.Fatalf("%d kernels, want 2", len(p.Kernels))
	}
	k0, k1 := p.Kernels[0], p.Kernels[1]
	if fmt.Sprint(k0.InPlace) != "map[0:0]" || len(k1.InPlace) != 0 {
		t.Errorf("InPlace = %v and %v, want map[0:0] and map[]", k0.InPlace, k1.InPlace)
	}
	if k0.Symbol == k1.Symbol {
		t.Errorf("the in-place kernel shares symbol %s with the one writing its own buffer", k0.Symbol)
	}
	body := func(sym string) (header, text string) {
		re := regexp.MustCompile(`(?ms)^define internal void @` + sym + `_body\(([^\n]*)\)[^\n]*\n(.*?)^}`)
		m := re.FindStringSubmatch(p.LL)
		if m == nil {
			t.Fatalf("no body for %s in\n%s", sym, p.LL)
		}
		return m[1], m[2]
	}
	h, text := body(k0.Symbol)
	if !regexp.MustCompile(`float\* %a0,`).MatchString(h) || !strings.Contains(h, "noalias %a1") || !strings.Contains(h, "noalias %out") {
		t.Errorf("in-place kernel %s: want %%a0 without noalias, %%a1 and %%out noalias: (%s)", k0.Symbol, h)
	}
	if strings.Contains(text, "%a0") {
		t.Errorf("in-place kernel %s reads %%a0, not the result pointer:\n%s", k0.Symbol, text)
	}
	if h, _ := body(k1.Symbol); !strings.Contains(h, "noalias %a0") {
		t.Errorf("kernel %s writing its own buffer lost noalias: (%s)", k1.Symbol, h)
	}
}
