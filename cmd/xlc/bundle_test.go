package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"xlc/bundle"
	"xlc/codegen"
	"xlc/internal/llvmtest"
)

// TestMain lets a test run this binary as xlc in a child process
// (XLC_TEST_AS_XLC=1), with an environment of its choosing (a PATH without
// LLVM).
func TestMain(m *testing.M) {
	if os.Getenv("XLC_TEST_AS_XLC") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// xlcNoLLVM runs xlc in a child process whose PATH holds no tool at all, so
// that codegen finds neither opt-19, llc-19 nor cc.
func xlcNoLLVM(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// LD_LIBRARY_PATH: a cuda-tagged xlc needs it to find libcuda.so.1.
	cmd.Env = append([]string{"XLC_TEST_AS_XLC=1", "PATH=" + t.TempDir(), "HOME=" + os.Getenv("HOME"), "LD_LIBRARY_PATH=" + os.Getenv("LD_LIBRARY_PATH")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// bundleGPT is the tiny GPT of the bundle tests, without a backend.
var bundleGPT = []string{"../../models/gpt.xl", "-D", "layers=1", "-D", "d=16", "-D", "heads=2", "-D", "seq=8", "-D", "batch=2"}

const fallbackWarning = "xlc: LLVM 19 not found (apt-get install llvm-19); training on the interpreter"

// TestBackendFallback simulates a machine without LLVM: --backend auto
// (the default) trains on the interpreter after a one-line warning; an
// explicit --backend=cpu and a bundle build are one-line errors naming the
// Debian package.
func TestBackendFallback(t *testing.T) {
	saved := toolchain
	toolchain = func() error {
		return errors.New("codegen: opt-19 and llc-19 not found in PATH: install the Debian package llvm-19 (apt-get install llvm-19)")
	}
	defer func() { toolchain = saved }()
	dir := t.TempDir()
	args := append(append([]string{"train"}, bundleGPT...), "--steps", "1", "--out", filepath.Join(dir, "a"))
	_, stderr, code := xlc(t, args...)
	if code != 0 {
		t.Fatalf("auto without LLVM: exit %d: %s", code, stderr)
	}
	if first, _, _ := strings.Cut(stderr, "\n"); first != fallbackWarning {
		t.Errorf("auto without LLVM: first stderr line %q, want %q", first, fallbackWarning)
	}
	if !strings.Contains(stderr, "backend interp") {
		t.Errorf("auto without LLVM did not train on the interpreter: %s", stderr)
	}
	for _, c := range [][]string{
		append(append([]string{"train"}, bundleGPT...), "--backend", "cpu", "--out", filepath.Join(dir, "b")),
		append(append([]string{"bench"}, bundleGPT...), "--backend", "cpu"),
		append(append([]string{"build"}, bundleGPT...), "-o", filepath.Join(dir, "m.xlc")),
	} {
		before := snapshot(t, dir)
		_, stderr, code := xlc(t, c...)
		if code == 0 || !strings.Contains(stderr, "apt-get install llvm-19") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v without LLVM: exit %d, stderr %q; want one line naming llvm-19", c[:1], code, stderr)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("%v without LLVM: files changed", c[:1])
		}
	}
}

// TestBackendFallbackPath does the same with a real PATH that lacks LLVM,
// in a child process.
func TestBackendFallbackPath(t *testing.T) {
	dir := t.TempDir()
	args := append(append([]string{"train"}, bundleGPT...), "--steps", "1", "--out", dir)
	_, stderr, code := xlcNoLLVM(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if first, _, _ := strings.Cut(stderr, "\n"); first != fallbackWarning {
		t.Errorf("first stderr line %q, want %q", first, fallbackWarning)
	}
	_, stderr, code = xlcNoLLVM(t, nil, append(args, "--backend", "cpu")...)
	if code == 0 || !strings.Contains(stderr, "llvm-19") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("--backend=cpu: exit %d, stderr %q; want one line naming llvm-19", code, stderr)
	}
}

// needLLVM skips a test that needs the toolchain where it is missing,
// unless CI=true, where it must be there.
func needLLVM(t *testing.T) {
	t.Helper()
	llvmtest.Require(t, codegen.ToolchainError())
}

// TestBundle builds a bundle of the tiny GPT, trains 3 steps from it in a
// process without LLVM and 3 from the model file on cpu: the checkpoints are
// identical. A truncated bundle, one with a wrong checksum and one built
// for another CPU each fail with one line and change no file.
func TestBundle(t *testing.T) {
	needLLVM(t)
	dir := t.TempDir()
	cache := "XLC_CACHE=" + filepath.Join(dir, "cache")
	bundleFile := filepath.Join(dir, "model.xlc")
	// The model's cosine schedule compiles its horizon into the step, so
	// the bundle is built for the 3 steps the model file trains.
	if _, stderr, code := xlc(t, append(append([]string{"build"}, bundleGPT...), "-D", "steps=3", "-o", bundleFile)...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	fromModel, fromBundle := filepath.Join(dir, "model"), filepath.Join(dir, "bundle")
	_, stderr, code := xlc(t, append(append([]string{"train"}, bundleGPT...), "--steps", "3", "--out", fromModel)...)
	if code != 0 || !strings.Contains(stderr, "backend cpu") {
		t.Fatalf("train the model file (auto: cpu with LLVM): exit %d: %s", code, stderr)
	}
	_, stderr, code = xlcNoLLVM(t, []string{cache}, "train", "--bundle", bundleFile, "--steps", "3", "--out", fromBundle)
	if code != 0 {
		t.Fatalf("train --bundle without LLVM: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(filepath.Join(fromModel, "checkpoint.safetensors"))
	b, _ := os.ReadFile(filepath.Join(fromBundle, "checkpoint.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		sa, sb := loadState(t, fromModel), loadState(t, fromBundle)
		for k, va := range sa {
			for i := range va {
				if i < len(sb[k]) && va[i] != sb[k][i] {
					t.Fatalf("%s[%d]: %v from the model file, %v from the bundle", k, i, va[i], sb[k][i])
				}
			}
		}
		t.Fatalf("checkpoints differ (%d and %d bytes) though every tensor agrees: the metadata differs", len(a), len(b))
	}

	// Stopping at step 2 and resuming from the bundle gives the same
	// checkpoint again.
	split := filepath.Join(dir, "split")
	if _, stderr, code := xlcNoLLVM(t, []string{cache}, "train", "--bundle", bundleFile, "--stop-at", "2", "--out", split); code != 0 {
		t.Fatalf("train --bundle --stop-at 2: exit %d: %s", code, stderr)
	}
	if _, stderr, code := xlcNoLLVM(t, []string{cache}, "train", "--bundle", bundleFile, "--resume", "--out", split); code != 0 {
		t.Fatalf("train --bundle --resume: exit %d: %s", code, stderr)
	}
	if c, _ := os.ReadFile(filepath.Join(split, "checkpoint.safetensors")); !bytes.Equal(a, c) {
		t.Errorf("stop at 2 and resume from the bundle: checkpoint differs from 3 steps of the model file")
	}
	if _, stderr, code := xlcNoLLVM(t, []string{cache}, "train", "--bundle", bundleFile, "--steps", "5", "--out", filepath.Join(dir, "x")); code == 0 || !strings.Contains(stderr, "-D steps=5") {
		t.Errorf("--steps 5 on a bundle compiled for 3 cosine steps: exit %d, %q", code, stderr)
	}

	data, err := os.ReadFile(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.xlc")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)
	badSum := filepath.Join(dir, "badsum.xlc")
	bad := append([]byte{}, data...)
	bad[len(bad)-1] ^= 0xff
	os.WriteFile(badSum, bad, 0o644)
	otherCPU := filepath.Join(dir, "othercpu.xlc")
	bu, err := bundle.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	bu.Target.Name, bu.Target.Features = "future-cpu", append(bu.Target.Features, "avx9000")
	if err := bundle.Write(otherCPU, bu); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"truncated", []string{"--bundle", truncated}, "truncated"},
		{"wrong checksum", []string{"--bundle", badSum}, "checksum"},
		{"another CPU", []string{"--bundle", otherCPU}, "lacks avx9000"},
		{"with -D", []string{"--bundle", bundleFile, "-D", "layers=2"}, "rebuild the bundle"},
		{"with a model", []string{"--bundle", bundleFile, "../../models/gpt.xl"}, "drop"},
		{"on interp", []string{"--bundle", bundleFile, "--backend", "interp"}, "cpu backend"},
	}
	for _, c := range cases {
		before := snapshot(t, dir)
		_, stderr, code := xlcNoLLVM(t, []string{cache}, append(append([]string{"train"}, c.args...), "--out", fromBundle)...)
		if code == 0 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want one line mentioning %q", c.name, code, stderr, c.want)
		}
		if after := snapshot(t, dir); after != before {
			t.Errorf("%s: files changed", c.name)
		}
	}
}
