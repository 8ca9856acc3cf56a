package build

import (
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"xlc/parser"
)

// TestBundleEncoding round-trips a bundle through its file format and
// checks that every truncation and every flipped byte is refused, without
// a panic (no LLVM needed: the shared objects are stand-ins).
func TestBundleEncoding(t *testing.T) {
	b := &Bundle{
		Name: "m", Path: "m.xl", Source: []byte("model m {}"), Defines: []parser.Define{{Key: "d", Value: "16"}},
		Optimizer: "adamw", Combiner: "sum", Schedule: "cosine", Steps: 3,
		CPU: "znver4", Features: []string{"avx2"}, GOARCH: "amd64",
		StepIR: "func @train_step() -> () {\n}\n", EvalIR: "func @forward() -> () {\n}\n",
		StepSO: []byte("\x7fELF step"), EvalSO: []byte("\x7fELF eval"), StepLL: strings.Repeat("a", 64), EvalLL: strings.Repeat("b", 64),
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	nosum := *b
	nosum.StepLL = ""
	if d, err := nosum.Encode(); err != nil {
		t.Fatal(err)
	} else if _, err := DecodeBundle(d); err == nil || !strings.Contains(err.Error(), "checksums") {
		t.Errorf("a bundle without module checksums: %v", err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
	}
	for n := 0; n < len(data); n++ {
		if _, err := DecodeBundle(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		} else if n > 20 && !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := range data {
		bad := append([]byte{}, data...)
		bad[i] ^= 0x40
		if _, err := DecodeBundle(bad); err == nil {
			t.Fatalf("byte %d flipped: no error", i)
		}
	}
	bad := append([]byte{}, data...)
	bad[len(bad)-1] ^= 1
	if _, err := DecodeBundle(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("wrong checksum: %v", err)
	}
	other := *b
	other.Features, other.GOARCH = []string{"avx9000"}, goruntime.GOARCH
	if err := other.CheckHost(); err == nil || !strings.Contains(err.Error(), "lacks avx9000") {
		t.Errorf("another CPU: %v", err)
	}
}
