package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/parser"
	"xlc/runtime/cuda"
)

// TestBundleEncoding round-trips a bundle through its file format and
// checks that every truncation and every flipped byte is refused, without
// a panic (no LLVM needed: the shared objects are stand-ins).
func TestBundleEncoding(t *testing.T) {
	zen4, err := codegen.TargetFor("znver4")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{
		Name: "m", Path: "m.xl", Source: []byte("model m {}"), Defines: []parser.Define{{Key: "d", Value: "16"}},
		Optimizer: "adamw", Combiner: "sum", Schedule: "cosine", Steps: 3,
		Target: zen4,
		StepIR: "func @train_step() -> () {\n}\n", EvalIR: "func @forward() -> () {\n}\n",
		StepSO: []byte("\x7fELF step"), EvalSO: []byte("\x7fELF eval"), StepLL: strings.Repeat("a", 64), EvalLL: strings.Repeat("b", 64),
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	nosum := *b
	nosum.StepLL = ""
	if d, err := nosum.Encode(); err != nil {
		t.Fatal(err)
	} else if _, err := Decode(d); err == nil || !strings.Contains(err.Error(), "checksums") {
		t.Errorf("a bundle without module checksums: %v", err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
	}
	for n := 0; n < len(data); n++ {
		if _, err := Decode(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		} else if n > 20 && !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := range data {
		bad := append([]byte{}, data...)
		bad[i] ^= 0x40
		if _, err := Decode(bad); err == nil {
			t.Fatalf("byte %d flipped: no error", i)
		}
	}
	bad := append([]byte{}, data...)
	bad[len(bad)-1] ^= 1
	if _, err := Decode(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("wrong checksum: %v", err)
	}
	other, tg := *b, *zen4
	other.Target = &tg
	tg.Features, tg.Arch = []string{"avx2", "avx9000"}, goruntime.GOARCH
	if err := other.CheckHost(); err == nil || !strings.Contains(err.Error(), "lacks avx9000") {
		t.Errorf("another CPU: %v", err)
	}
	// The features checked are the target's, not the building machine's.
	tg.Features = zen4.Features
	if missing := codegen.Missing(zen4.Features, codegen.HostFeatures()); len(missing) > 0 {
		if err := other.CheckHost(); err == nil || !strings.Contains(err.Error(), "lacks "+missing[0]) {
			t.Errorf("a znver4 bundle on a CPU without %s: %v", missing[0], err)
		}
	} else if err := other.CheckHost(); err != nil {
		t.Errorf("a znver4 bundle on a CPU with its features: %v", err)
	}
	tg.Arch = "riscv64"
	if err := other.CheckHost(); err == nil || !strings.Contains(err.Error(), "cannot run on this") {
		t.Errorf("another architecture: %v", err)
	}
	other.Target = nil
	if err := other.CheckHost(); err == nil {
		t.Error("a bundle without a target: no error")
	}
}

// TestGPUBundle round-trips a bundle of PTX kernels (sections step.ptx and
// eval.ptx instead of the shared objects), reads a format 1 file, refuses
// a newer format in one line, and checks that CheckHost refuses a GPU
// bundle where the cuda backend cannot run, naming the GPU.
func TestGPUBundle(t *testing.T) {
	h100, err := codegen.TargetFor("h100")
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{
		Name: "m", Path: "m.xl", Source: []byte("model m {}"), Optimizer: "adamw", Combiner: "sum", Schedule: "constant", Steps: 3,
		Target: h100,
		StepIR: "func @train_step() -> () {\n}\n", EvalIR: "func @forward() -> () {\n}\n",
		StepPTX: "//\n.version 7.8\n.target sm_90\n", EvalPTX: "//\n.version 7.8\n.target sm_90\n// eval\n",
		StepLL: strings.Repeat("a", 64), EvalLL: strings.Repeat("b", 64),
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("step.so")) || !bytes.Contains(data, []byte("step.ptx")) {
		t.Error("a GPU bundle's sections are not step.ptx and eval.ptx")
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) || !got.GPU() {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
	}
	for n := 0; n < len(data); n += 7 {
		if _, err := Decode(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	// Format 1 (CPU bundles only) reads; a later format is refused.
	cpu := *b
	cpu.Target, _ = codegen.TargetFor("x86-64")
	cpu.StepPTX, cpu.EvalPTX, cpu.StepSO, cpu.EvalSO = "", "", []byte("\x7fELF step"), []byte("\x7fELF eval")
	for v, ok := range map[uint32]bool{1: true, Version: true, Version + 1: false} {
		d, err := cpu.Encode()
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint32(d[len(magic):], v)
		sum := sha256.Sum256(d[:len(d)-sha256.Size])
		copy(d[len(d)-sha256.Size:], sum[:])
		if _, err := Decode(d); (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "this xlc reads formats 1 to") {
			t.Errorf("format %d: %v", v, err)
		}
	}
	if cuda.Available() != nil { // no cuda backend here: refused, in one line
		err := b.CheckHost()
		if err == nil || !strings.HasPrefix(err.Error(), "its kernels are for the GPU h100: cuda: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("a GPU bundle without a GPU: %v", err)
		}
	}
}
