package runtime

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

// sameTensor reports whether a and b have the same type and elements, NaNs
// equal to NaNs and -0 distinct from +0.
func sameTensor(a, b *interp.Tensor) bool {
	if !a.Type.Equal(b.Type) || len(a.F) != len(b.F) || len(a.I) != len(b.I) {
		return false
	}
	for i := range a.F {
		x, y := a.F[i], b.F[i]
		if math.IsNaN(x) || math.IsNaN(y) {
			if !math.IsNaN(x) || !math.IsNaN(y) {
				return false
			}
		} else if x != y || math.Signbit(x) != math.Signbit(y) {
			return false
		}
	}
	for i := range a.I {
		if a.I[i] != b.I[i] {
			return false
		}
	}
	return true
}

func TestCheckpointRoundTrip(t *testing.T) {
	special := []float64{0, math.Copysign(0, -1), 1, -2.5, 1e-3, 3.14159, 65504, -1e30, 1e-40, 5.96e-8, math.Inf(1), math.Inf(-1), math.NaN()}
	tensors := map[string]*interp.Tensor{
		"i32":         interp.FromInts(ir.T(ir.I32, 2, 3), []int64{0, -1, math.MaxInt32, math.MinInt32, 7, 42}),
		"i64":         interp.FromInts(ir.T(ir.I64, 4), []int64{math.MaxInt64, math.MinInt64, -3, 0}),
		"mask":        interp.FromInts(ir.T(ir.Bool, 2, 2), []int64{1, 0, 0, 1}),
		"scalar":      interp.FromFloats(ir.T(ir.F32), []float64{0.125}),
		"empty":       interp.NewTensor(ir.T(ir.F32, 3, 0)),
		"layer.0.w":   interp.FromFloats(ir.T(ir.F64, 2, 2), []float64{math.Pi, -math.SmallestNonzeroFloat64, math.MaxFloat64, math.NaN()}),
		"random.norm": interp.FromFloats(ir.T(ir.BF16, 1000), interp.Normal(1, 2, 1000)),
	}
	for _, d := range []ir.DType{ir.F32, ir.F16, ir.BF16, ir.F64} {
		tensors["special."+d.String()] = interp.FromFloats(ir.T(d, len(special)), special)
		tensors["normal."+d.String()] = interp.FromFloats(ir.T(d, 10, 10), interp.Normal(3, uint64(d), 100))
	}
	meta := map[string]string{"step": "1200", "seed": "7", "config": `{"lr": 0.001}`}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := SaveCheckpoint(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tensors) {
		t.Fatalf("loaded %d tensors, saved %d", len(got), len(tensors))
	}
	for n, want := range tensors {
		if g := got[n]; g == nil || !sameTensor(g, want) || g.Check(want.Type) != nil {
			t.Errorf("tensor %s: got %v, want %v", n, g, want)
		}
	}
	if len(gotMeta) != len(meta) {
		t.Fatalf("metadata %v", gotMeta)
	}
	for k, v := range meta {
		if gotMeta[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, gotMeta[k], v)
		}
	}
	// Saving again gives the same bytes.
	b1, _ := os.ReadFile(path)
	if err := SaveCheckpoint(path, got, gotMeta); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path); string(b1) != string(b2) {
		t.Fatal("save, load, save changed the file")
	}
}

// TestCheckpointBytes pins the file layout against hand-written bytes.
func TestCheckpointBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	err := SaveCheckpoint(path, map[string]*interp.Tensor{
		"b": interp.FromFloats(ir.T(ir.BF16, 2), []float64{1, -2}),
		"a": interp.FromFloats(ir.T(ir.F16, 1), []float64{1}),
		"c": interp.FromInts(ir.T(ir.Bool, 3), []int64{1, 0, 1}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	// The metadata holds the CRC-32C of the 9 data bytes.
	header := `{"__metadata__":{"data_crc32c":"a940c969"},"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[2,6]},"c":{"dtype":"BOOL","shape":[3],"data_offsets":[6,9]}}`
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	want = append(want, header...)
	want = append(want, 0x00, 0x3c, 0x80, 0x3f, 0x00, 0xc0, 1, 0, 1)
	if string(b) != string(want) {
		t.Fatalf("file\n%q\nwant\n%q", b, want)
	}
}

// stFile builds a safetensors file from a header and body.
func stFile(header string, body []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), body...)
}

func TestCheckpointErrors(t *testing.T) {
	f32 := func(name string, shape string, begin, end int) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":[` + strconv.Itoa(begin) + `,` + strconv.Itoa(end) + `]}`
	}
	body8 := make([]byte, 8)
	good := stFile("{"+f32("w", "[2]", 0, 8)+"}", body8)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated: 0 bytes, too short for the 8-byte header length"},
		{"short length", []byte{1, 2, 3}, "truncated: 3 bytes"},
		{"header too long", good[:20], "truncated: header length 54 exceeds the 12 bytes after it"},
		{"truncated data", good[:len(good)-3], "truncated: header says 8 bytes of tensor data, file has 5"},
		{"trailing garbage", append(append([]byte{}, good...), 'x', 'y'), "trailing garbage: 2 bytes after the 8 bytes of tensor data"},
		{"not json", stFile("{nope", body8), "bad header: invalid character 'n'"},
		{"json array", stFile("[1,2]", nil), "bad header: not a JSON object"},
		{"json after", stFile("{} {}", nil), "bad header: data after the JSON object"},
		{"duplicate", stFile("{"+f32("w", "[1]", 0, 4)+","+f32("w", "[1]", 4, 8)+"}", body8), `bad header: duplicate key "w"`},
		{"unknown dtype", stFile(`{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `tensor "w": unknown dtype "F8"`},
		{"unknown field", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, body8[:4]), `unknown field "x"`},
		{"no shape", stFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, body8[:4]), `tensor "w": no shape`},
		{"negative dim", stFile("{"+f32("w", "[-1]", 0, 4)+"}", body8[:4]), "negative dim"},
		{"size mismatch", stFile("{"+f32("w", "[3]", 0, 8)+"}", body8), `tensor "w": F32[3] needs 12 bytes, data_offsets [0, 8] span 8`},
		{"huge shape", stFile("{"+f32("w", "[4611686018427387904,4611686018427387904,16]", 0, 8)+"}", body8), "needs over 2^63 bytes"},
		{"three offsets", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, body8), "data_offsets has 3 numbers"},
		{"reversed offsets", stFile("{"+f32("w", "[0]", 8, 4)+"}", body8), "bad data_offsets [8, 4]"},
		{"offsets outside", stFile("{"+f32("w", "[2]", 8, 16)+"}", body8), "truncated: header says 16 bytes of tensor data, file has 8"},
		{"overlap", stFile("{"+f32("a", "[2]", 0, 8)+","+f32("b", "[1]", 4, 8)+"}", body8), `bad offsets: tensors "a" and "b" overlap`},
		{"gap", stFile("{"+f32("a", "[1]", 4, 8)+"}", body8), `bad offsets: 4 unused bytes before tensor "a"`},
		{"bad metadata", stFile(`{"__metadata__":{"step":12}}`, nil), "__metadata__ is not an object of strings"},
		{"bad bool", stFile(`{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}), `tensor "m": bool element 1 is byte 2`},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		path := filepath.Join(dir, "ckpt.safetensors")
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadCheckpoint(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := LoadCheckpoint(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	// The good file and the metadata-only file load.
	for _, data := range [][]byte{good, stFile(`{"__metadata__":{"a":"b"}}   `, nil)} {
		if _, _, err := decodeCheckpoint(data); err != nil {
			t.Errorf("%q: %v", data, err)
		}
	}
}

func TestSaveCheckpointErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.safetensors")
	for _, ts := range []map[string]*interp.Tensor{
		{"": interp.NewTensor(ir.T(ir.F32))},
		{"__metadata__": interp.NewTensor(ir.T(ir.F32))},
		{"w": nil},
		{"w": {Type: ir.T(ir.F32, 2), F: []float64{1}}},
	} {
		if err := SaveCheckpoint(path, ts, nil); err == nil || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("SaveCheckpoint(%v): %v", ts, err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a failed save left a file")
	}
}

func FuzzLoadCheckpoint(f *testing.F) {
	good, err := encodeCheckpoint(map[string]*interp.Tensor{
		"a": interp.FromFloats(ir.T(ir.F16, 2), []float64{1, 2}),
		"b": interp.FromInts(ir.T(ir.I32, 1), []int64{5}),
		"c": interp.FromInts(ir.T(ir.Bool, 1), []int64{1}),
		"d": interp.FromFloats(ir.T(ir.BF16, 1, 1), []float64{-1}),
	}, map[string]string{"k": "v"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(stFile(`{}`, nil))
	f.Add([]byte{})
	// LoadCheckpoint is os.ReadFile, then decodeCheckpoint, whose errors it
	// prefixes with the path; fuzzing decodeCheckpoint skips the file system.
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, meta, err := decodeCheckpoint(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Whatever loads saves and loads back the same.
		again, err := encodeCheckpoint(tensors, meta)
		if err != nil {
			t.Fatalf("re-encoding a loaded checkpoint: %v", err)
		}
		tensors2, _, err := decodeCheckpoint(again)
		if err != nil {
			t.Fatalf("re-loading: %v", err)
		}
		for n, x := range tensors {
			if !sameTensor(x, tensors2[n]) {
				t.Fatalf("tensor %q changed in a round trip", n)
			}
		}
	})
}

// TestCheckpointChecksum flips each byte of a checkpoint's tensor data in
// turn: every flip is refused in one line naming the file, while the
// header (CheckpointMeta) still reads; the metadata either returns leaves
// the checksum out.
func TestCheckpointChecksum(t *testing.T) {
	tensors := map[string]*interp.Tensor{
		"w":    interp.FromFloats(ir.T(ir.F32, 3, 4), interp.Normal(1, 1, 12)),
		"step": interp.FromInts(ir.T(ir.I64), []int64{42}),
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := SaveCheckpoint(path, tensors, map[string]string{"step": "42"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := meta[ChecksumKey]; ok || meta["step"] != "42" {
		t.Errorf("metadata %v: want step 42 and no checksum", meta)
	}
	start := len(data) - (12*4 + 8)
	for i := start; i < len(data); i++ {
		bad := slices.Clone(data)
		bad[i] ^= 0x10
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadCheckpoint(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": corrupted: ") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("byte %d flipped: %v, want one line: %s: corrupted: ...", i, err, path)
		}
		if m, err := CheckpointMeta(path); err != nil || m["step"] != "42" {
			t.Fatalf("byte %d flipped: header %v, %v", i, m, err)
		}
	}
}
