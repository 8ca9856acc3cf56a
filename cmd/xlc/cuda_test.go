package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/runtime/cpu"
	"xlc/runtime/cuda"
)

// TestBackendAuto checks which backend --backend auto picks: cuda where
// cuda.Available is nil (simulated here), unless --cpu names a CPU or the
// command does not run on cuda (xlc experiment); cpu where it is not; and
// that an explicit cuda that cannot run is one line saying why.
func TestBackendAuto(t *testing.T) {
	savedT, savedC := toolchain, cudaAvailable
	defer func() { toolchain, cudaAvailable = savedT, savedC }()
	toolchain = func() error { return nil }
	cudaAvailable = func() error { return nil }
	for _, c := range []struct {
		name, cpuName string
		gpu           bool
		want          string
	}{
		{"auto", "", true, "cuda"},
		{"auto", "x86-64", true, "cpu"},
		{"auto", "", false, "cpu"},
		{"cuda", "", true, "cuda"},
		{"cpu", "", true, "cpu"},
	} {
		b, err := backend(c.name, io.Discard, "training", c.cpuName, c.gpu)
		if err != nil || b.Name() != c.want {
			t.Errorf("--backend %s --cpu %q (gpu %v): %v, %v; want %s", c.name, c.cpuName, c.gpu, b, err, c.want)
		}
	}
	if _, err := backend("cuda", io.Discard, "experimenting", "", false); err == nil || !strings.Contains(err.Error(), "unknown backend (have: auto, cpu, interp)") {
		t.Errorf("--backend cuda on xlc experiment: %v", err)
	}
	if _, err := backend("cuda", io.Discard, "training", "x86-64", true); err == nil || !strings.Contains(err.Error(), "--cpu applies to the cpu backend") {
		t.Errorf("--backend cuda --cpu: %v", err)
	}
	cudaAvailable = func() error { return errors.New("cuda: no NVIDIA GPU found (cuInit: no device); use --backend cpu") }
	if b, err := backend("auto", io.Discard, "training", "", true); err != nil || b.Name() != "cpu" {
		t.Errorf("auto without a GPU: %v, %v; want cpu", b, err)
	}
	dir := t.TempDir()
	for _, cmd := range []string{"train", "bench"} {
		args := append(append([]string{cmd}, bundleGPT...), "--backend", "cuda")
		if cmd == "train" {
			args = append(args, "--out", filepath.Join(dir, "run"))
		}
		_, stderr, code := xlc(t, args...)
		if want := "xlc " + cmd + ": --backend=cuda: cuda: no NVIDIA GPU found (cuInit: no device); use --backend cpu\n"; code != 1 || stderr != want {
			t.Errorf("%s --backend cuda without a GPU: exit %d, stderr %q; want %q", cmd, code, stderr, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused run left %d files", len(entries))
	}
	if opt := compileOptions(cuda.Backend{}, false); !opt.Passes.Fuse {
		t.Error("the cuda backend compiles without fusion")
	}
	if opt := compileOptions(cpu.Backend{}, false); !opt.Passes.Fuse {
		t.Error("the cpu backend compiles without fusion")
	}
}

// TestGPUBundle builds a GPU bundle and its PTX without a GPU (LLVM and
// libdevice only). Where the cuda backend cannot run, training or timing
// it is refused with one line naming the GPU, as is --backend cpu; where it
// can, the bundle trains 3 steps to the checkpoint the model file trains
// on cuda, and xlc bench --bundle prints its tokens/s.
func TestGPUBundle(t *testing.T) {
	needLLVM(t)
	if codegen.Libdevice() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and CUDA's libdevice is missing: eval \"$(scripts/cuda-sdk.sh)\"")
		}
		t.Skip("CUDA's libdevice is missing: eval \"$(scripts/cuda-sdk.sh)\"")
	}
	dir := t.TempDir()
	bundleFile, ptx := filepath.Join(dir, "gpu.xlc"), filepath.Join(dir, "step.ptx")
	build := append(append([]string{"build"}, bundleGPT...), "-D", "steps=3", "--target", "cuda", "--gpu", "sm_80")
	if _, stderr, code := xlc(t, append(build, "-o", bundleFile)...); code != 0 || !strings.Contains(stderr, "for GPU sm_80") {
		t.Fatalf("build --target cuda: exit %d: %s", code, stderr)
	}
	if _, stderr, code := xlc(t, append(build, "--emit=ptx", "-o", ptx)...); code != 0 {
		t.Fatalf("build --target cuda --emit=ptx: exit %d: %s", code, stderr)
	}
	if text, _ := os.ReadFile(ptx); !bytes.Contains(text, []byte(".target sm_80")) || !bytes.Contains(text, []byte(".entry xlc_k")) {
		t.Errorf("--emit=ptx wrote no sm_80 kernels: %.200s", text)
	}
	if _, stderr, code := xlc(t, "train", "--bundle", bundleFile, "--backend", "cpu", "--out", filepath.Join(dir, "cpu")); code == 0 || !strings.Contains(stderr, "runs on the cuda backend") {
		t.Errorf("a GPU bundle on --backend cpu: exit %d, %q", code, stderr)
	}
	if err := cuda.Available(); err != nil {
		for _, cmd := range [][]string{{"train", "--bundle", bundleFile, "--out", filepath.Join(dir, "run")}, {"bench", "--bundle", bundleFile}} {
			_, stderr, code := xlc(t, cmd...)
			if want := "its kernels are for the GPU sm_80: cuda: "; code != 1 || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("%s without the cuda backend: exit %d, stderr %q; want one line with %q", cmd[0], code, stderr, want)
			}
		}
		return
	}
	fromModel, fromBundle := filepath.Join(dir, "model"), filepath.Join(dir, "bundle")
	if _, stderr, code := xlc(t, append(append([]string{"train"}, bundleGPT...), "--steps", "3", "--backend", "cuda", "--out", fromModel)...); code != 0 {
		t.Fatalf("train on cuda: exit %d: %s", code, stderr)
	}
	if _, stderr, code := xlc(t, "train", "--bundle", bundleFile, "--out", fromBundle); code != 0 || !strings.Contains(stderr, "backend cuda") {
		t.Fatalf("train --bundle on cuda: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(filepath.Join(fromModel, "checkpoint.safetensors"))
	b, _ := os.ReadFile(filepath.Join(fromBundle, "checkpoint.safetensors"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the GPU bundle's checkpoint differs from the model file's on cuda (%d, %d bytes)", len(a), len(b))
	}
	out, stderr, code := xlc(t, "bench", "--bundle", bundleFile, "--steps", "2", "--warmup", "1")
	if code != 0 || !strings.Contains(out, "tokens/s") || strings.Count(out, "\n") != 1 {
		t.Errorf("bench --bundle on cuda: exit %d, %q, %s", code, out, stderr)
	}
}

// TestBenchBundle times a CPU bundle: one line with tokens/s, and no
// compiler flags.
func TestBenchBundle(t *testing.T) {
	needLLVM(t)
	bundleFile := filepath.Join(t.TempDir(), "cpu.xlc")
	if _, stderr, code := xlc(t, append(append([]string{"build"}, bundleGPT...), "-o", bundleFile)...); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	out, stderr, code := xlc(t, "bench", "--bundle", bundleFile, "--steps", "2", "--warmup", "1")
	if code != 0 || !strings.HasPrefix(out, "gpt on cpu (bundle "+bundleFile) || !strings.Contains(out, "tokens/s") || strings.Count(out, "\n") != 1 {
		t.Errorf("bench --bundle: exit %d, %q, %s", code, out, stderr)
	}
	if _, stderr, code := xlc(t, "bench", "--bundle", bundleFile, "--fuse", "off"); code == 0 || !strings.Contains(stderr, "does not apply to a bundle") {
		t.Errorf("bench --bundle --fuse off: exit %d, %q", code, stderr)
	}
	if _, stderr, code := xlc(t, "bench", "--bundle", bundleFile, "-D", "layers=2"); code == 0 || !strings.Contains(stderr, "rebuild the bundle") {
		t.Errorf("bench --bundle -D: exit %d, %q", code, stderr)
	}
}
