package codegen_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"xlc/codegen"
	"xlc/driver"
	"xlc/internal/llvmtest"
	"xlc/parser"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
)

// TestShardedBuildSameResults trains a small fused GPT (large enough for
// the fast dot on AVX-512 hosts) for two steps from a module built whole
// (XLC_BUILD_SHARDS=1) and from one built in three shards, each in its own
// cache: losses and every updated parameter and state tensor are equal bit
// for bit. Both builds have the same cache entry name, and loading again
// with the sharded setting is a cache hit.
func TestShardedBuildSameResults(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	path := "../models/gpt.xl"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defs := []parser.Define{{Key: "layers", Value: "1"}, {Key: "d", Value: "64"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "32"}, {Key: "batch", Value: "4"}}
	m, err := driver.Compile(path, src, defs, driver.Options{Passes: passes.Options{Fuse: true, FusionFuel: passes.UnlimitedFuel}})
	if err != nil {
		t.Fatal(err)
	}
	f := m.Step
	if p, err := codegen.Compile(f, codegen.Options{}); err == nil {
		fast := 0
		for _, k := range p.Kernels {
			if k.Lowering == codegen.LowerFastDot || k.Lowering == codegen.LowerFastDotEp {
				fast++
			}
		}
		t.Logf("%d kernels (%d fast dots), %d bytes of module text", len(p.Kernels), fast, len(p.LL))
	}
	data := runtime.BuiltinText()
	var (
		losses [2][]map[string]float64
		states [2]map[string]*interp.Tensor
		sos    [2]string
	)
	for b, shards := range []string{"1", "3"} {
		t.Setenv("XLC_BUILD_SHARDS", shards)
		t.Setenv("XLC_CACHE", t.TempDir())
		exe, err := cpu.Backend{}.LoadExec(f)
		if err != nil {
			t.Fatal(err)
		}
		defer exe.Close()
		so := soPath(t)
		sos[b] = so
		if states[b], err = runtime.FreshState(f, 1); err != nil {
			t.Fatal(err)
		}
		for step := int64(0); step < 2; step++ {
			l, err := runtime.RunStep(exe, f, data, 1, step, states[b])
			if err != nil {
				t.Fatal(err)
			}
			losses[b] = append(losses[b], l)
		}
		if shards != "1" {
			info, _ := os.Stat(so)
			again, err := cpu.Backend{}.LoadExec(f)
			if err != nil {
				t.Fatal(err)
			}
			again.Close()
			if now, err := os.Stat(so); err != nil || !now.ModTime().Equal(info.ModTime()) || soPath(t) != so {
				t.Errorf("loading the sharded build again rebuilt it")
			}
		}
	}
	if filepath.Base(filepath.Dir(sos[0])) != filepath.Base(filepath.Dir(sos[1])) {
		t.Errorf("cache entries differ: %s and %s", sos[0], sos[1])
	}
	for s := range losses[0] {
		for name, w := range losses[0][s] {
			if g := losses[1][s][name]; math.Float64bits(g) != math.Float64bits(w) {
				t.Errorf("step %d: %s = %v sharded, %v whole", s, name, g, w)
			}
		}
	}
	for name, w := range states[0] {
		g := states[1][name]
		if !g.Identical(w) {
			t.Errorf("%s differs between the sharded and the whole build", name)
		}
	}
	t.Logf("losses %v", losses[1])
}

// soPath is the one cache entry's shared object under $XLC_CACHE.
func soPath(t *testing.T) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.Getenv("XLC_CACHE"), "*", "kernels.so"))
	if err != nil || len(m) != 1 {
		t.Fatalf("cache holds %v (%v), want one entry", m, err)
	}
	return m[0]
}
