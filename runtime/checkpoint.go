package runtime

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"math/bits"
	"os"
	"slices"

	"github.com/x448/float16"

	"xlc/internal/atomicfile"
	"xlc/ir"
	"xlc/runtime/interp"
)

// ChecksumKey is the metadata key of the CRC-32C (Castagnoli) of a
// checkpoint's tensor data, as 8 hex digits: SaveCheckpoint writes it and
// LoadCheckpoint refuses a file whose data no longer matches it. It is not
// among the metadata either returns.
const ChecksumKey = "data_crc32c"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stNames maps each dtype to its safetensors name.
var stNames = map[ir.DType]string{
	ir.F32: "F32", ir.F16: "F16", ir.BF16: "BF16", ir.F64: "F64",
	ir.I32: "I32", ir.I64: "I64", ir.Bool: "BOOL",
}

// stEntry is one tensor's entry in a safetensors header.
type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// SaveCheckpoint writes tensors and string metadata to path in the
// safetensors format: an 8-byte little-endian header length, a JSON header
// mapping each tensor name to its dtype, shape and data_offsets (plus
// "__metadata__" when meta is not empty), padded with spaces to a multiple
// of 8 bytes, then the tensors' little-endian bytes, contiguous in name
// order; the metadata also holds the data's checksum (ChecksumKey). The
// file is replaced atomically. An empty or reserved name, or a
// malformed tensor, is an error naming it.
func SaveCheckpoint(path string, tensors map[string]*interp.Tensor, meta map[string]string) error {
	data, err := encodeCheckpoint(tensors, meta)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return atomicfile.Write(path, data, 0o644)
}

func encodeCheckpoint(tensors map[string]*interp.Tensor, meta map[string]string) ([]byte, error) {
	names := slices.Sorted(maps.Keys(tensors))
	header := map[string]any{}
	var size int64
	for _, n := range names {
		t := tensors[n]
		if n == "" || n == "__metadata__" {
			return nil, fmt.Errorf("tensor name %q is not allowed", n)
		}
		if t == nil {
			return nil, fmt.Errorf("tensor %q is nil", n)
		}
		if err := t.Check(t.Type); err != nil {
			return nil, fmt.Errorf("tensor %q: %v", n, err)
		}
		st, ok := stNames[t.Type.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: dtype %v has no safetensors name", n, t.Type.DType)
		}
		shape := make([]int64, len(t.Type.Shape))
		for i, d := range t.Type.Shape {
			shape[i] = int64(d)
		}
		end := size + int64(t.Len()*t.Type.DType.Size())
		header[n] = stEntry{st, shape, []int64{size, end}}
		size = end
	}
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]string{}
	}
	// The checksum's 8 hex digits keep the header's length whatever their
	// value: the header is written with zeros, then again over them once
	// the data that follows it gives the sum.
	h, err := checkpointHeader(header, m, 0)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8, 8+int64(len(h))+size)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, n := range names {
		out = appendTensor(out, tensors[n])
	}
	h, err = checkpointHeader(header, m, crc32.Checksum(out[8+len(h):], castagnoli))
	if err != nil {
		return nil, err
	}
	copy(out[8:], h)
	return out, nil
}

// checkpointHeader is the JSON header of tensor entries header with
// metadata m and the data's checksum sum, padded to a multiple of 8 bytes.
func checkpointHeader(header map[string]any, m map[string]string, sum uint32) ([]byte, error) {
	m[ChecksumKey] = fmt.Sprintf("%08x", sum)
	header["__metadata__"] = m
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	if pad := len(h) % 8; pad != 0 {
		h = append(h, bytes.Repeat([]byte{' '}, 8-pad)...)
	}
	return h, nil
}

// appendTensor appends t's elements to b as little-endian bytes.
func appendTensor(b []byte, t *interp.Tensor) []byte {
	le := binary.LittleEndian
	d := t.Type.DType
	if d.IsFloat() {
		for _, v := range t.F {
			v = interp.Round(d, v) // a no-op for well-formed tensors
			switch d {
			case ir.F64:
				b = le.AppendUint64(b, math.Float64bits(v))
			case ir.F32:
				b = le.AppendUint32(b, math.Float32bits(float32(v)))
			case ir.F16:
				b = le.AppendUint16(b, float16.Fromfloat32(float32(v)).Bits())
			case ir.BF16:
				b = le.AppendUint16(b, uint16(math.Float32bits(float32(v))>>16))
			}
		}
		return b
	}
	for _, v := range t.I {
		switch d {
		case ir.I64:
			b = le.AppendUint64(b, uint64(v))
		case ir.I32:
			b = le.AppendUint32(b, uint32(int32(v)))
		case ir.Bool:
			if v != 0 {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b
}

// LoadCheckpoint reads a safetensors file written by SaveCheckpoint or any
// other safetensors writer, and returns its tensors and metadata (an empty
// map when there is none). It validates the whole file: the header length
// lies within the file; the header is one well-formed JSON object with no
// duplicate names; every entry has a known dtype, a non-negative shape and
// data_offsets [begin, end] whose span is the shape's byte size; the tensors
// exactly tile the data that follows the header, with no overlap, gap,
// truncation or trailing bytes; and bool bytes are 0 or 1. Each problem is
// one error line starting with the path.
func LoadCheckpoint(path string) (map[string]*interp.Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	tensors, meta, err := decodeCheckpoint(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", path, err)
	}
	return tensors, meta, nil
}

// stTensor is a validated header entry.
type stTensor struct {
	name       string
	typ        ir.Type
	begin, end int64
}

func decodeCheckpoint(data []byte) (map[string]*interp.Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("truncated: %d bytes, too short for the 8-byte header length", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("truncated: header length %d exceeds the %d bytes after it", hlen, len(data)-8)
	}
	header, body := data[8:8+hlen], data[8+hlen:]
	entries, rawMeta, err := parseHeader(header)
	if err != nil {
		return nil, nil, fmt.Errorf("bad header: %v", err)
	}
	meta, err := decodeMeta(rawMeta)
	if err != nil {
		return nil, nil, err
	}
	var list []stTensor
	var total int64
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		e, err := parseEntry(name, entries[name])
		if err != nil {
			return nil, nil, fmt.Errorf("bad header: tensor %q: %v", name, err)
		}
		list = append(list, e)
		total = max(total, e.end)
	}
	if total > int64(len(body)) {
		return nil, nil, fmt.Errorf("truncated: header says %d bytes of tensor data, file has %d", total, len(body))
	}
	slices.SortStableFunc(list, func(a, b stTensor) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var prev int64
	for i, e := range list {
		switch {
		case e.begin < prev:
			return nil, nil, fmt.Errorf("bad offsets: tensors %q and %q overlap", list[i-1].name, e.name)
		case e.begin > prev:
			return nil, nil, fmt.Errorf("bad offsets: %d unused bytes before tensor %q", e.begin-prev, e.name)
		}
		prev = e.end
	}
	if total < int64(len(body)) {
		return nil, nil, fmt.Errorf("trailing garbage: %d bytes after the %d bytes of tensor data", int64(len(body))-total, total)
	}
	if want, ok := popChecksum(meta); ok {
		if got := fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)); got != want {
			return nil, nil, fmt.Errorf("corrupted: the tensor data's CRC-32C is %s, the metadata records %s (the file changed after it was written)", got, want)
		}
	}
	tensors := make(map[string]*interp.Tensor, len(list))
	for _, e := range list {
		t, err := decodeTensor(e.typ, body[e.begin:e.end])
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", e.name, err)
		}
		tensors[e.name] = t
	}
	return tensors, meta, nil
}

// parseHeader splits the header JSON object into its tensor entries and the
// raw __metadata__ value (nil when absent), rejecting duplicate keys and
// anything after the object but whitespace.
func parseHeader(h []byte) (map[string]json.RawMessage, json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	entries := map[string]json.RawMessage{}
	var meta json.RawMessage
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, err
		}
		_, dup := entries[key]
		if dup || key == "__metadata__" && seenMeta {
			return nil, nil, fmt.Errorf("duplicate key %q", key)
		}
		if key == "__metadata__" {
			meta, seenMeta = raw, true
		} else {
			entries[key] = raw
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("data after the JSON object")
	}
	return entries, meta, nil
}

// parseEntry validates one tensor entry of the header.
func parseEntry(name string, raw json.RawMessage) (stTensor, error) {
	if name == "" {
		return stTensor{}, errors.New("empty tensor name")
	}
	var e stEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return stTensor{}, err
	}
	var dt ir.DType
	for d, n := range stNames {
		if n == e.DType {
			dt = d
		}
	}
	if dt == ir.Invalid {
		return stTensor{}, fmt.Errorf("unknown dtype %q", e.DType)
	}
	if e.Shape == nil {
		return stTensor{}, errors.New("no shape")
	}
	if len(e.DataOffsets) != 2 {
		return stTensor{}, fmt.Errorf("data_offsets has %d numbers, want [begin, end]", len(e.DataOffsets))
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin < 0 || end < begin {
		return stTensor{}, fmt.Errorf("bad data_offsets [%d, %d]", begin, end)
	}
	shape := make(ir.Shape, len(e.Shape))
	for i, d := range e.Shape {
		if d < 0 {
			return stTensor{}, fmt.Errorf("negative dim in shape %v", e.Shape)
		}
		shape[i] = int(d)
	}
	// The byte size, or -1 when it overflows int64.
	size := int64(dt.Size())
	if slices.Contains(e.Shape, 0) {
		size = 0
	}
	for _, d := range e.Shape {
		if hi, lo := bits.Mul64(uint64(size), uint64(d)); size > 0 && (hi != 0 || lo > math.MaxInt64) {
			size = -1
		} else if size > 0 {
			size = int64(lo)
		}
	}
	if size != end-begin {
		need := "over 2^63"
		if size >= 0 {
			need = fmt.Sprint(size)
		}
		return stTensor{}, fmt.Errorf("%s%v needs %s bytes, data_offsets [%d, %d] span %d", e.DType, e.Shape, need, begin, end, end-begin)
	}
	return stTensor{name, ir.Type{DType: dt, Shape: shape}, begin, end}, nil
}

// decodeTensor converts little-endian bytes, already checked to be the
// right size, to a tensor of type t.
func decodeTensor(t ir.Type, b []byte) (*interp.Tensor, error) {
	x := interp.NewTensor(t)
	le := binary.LittleEndian
	switch t.DType {
	case ir.F64:
		for i := range x.F {
			x.F[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case ir.F32:
		for i := range x.F {
			x.F[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case ir.F16:
		for i := range x.F {
			x.F[i] = float64(float16.Frombits(le.Uint16(b[2*i:])).Float32())
		}
	case ir.BF16:
		for i := range x.F {
			x.F[i] = float64(math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16))
		}
	case ir.I64:
		for i := range x.I {
			x.I[i] = int64(le.Uint64(b[8*i:]))
		}
	case ir.I32:
		for i := range x.I {
			x.I[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case ir.Bool:
		for i := range x.I {
			if b[i] > 1 {
				return nil, fmt.Errorf("bool element %d is byte %d, not 0 or 1", i, b[i])
			}
			x.I[i] = int64(b[i])
		}
	}
	return x, nil
}

// CheckpointMeta reads only the metadata of the checkpoint at path (the
// header, not the tensors), to describe the run that wrote it.
func CheckpointMeta(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return nil, fmt.Errorf("%s: truncated: too short for the 8-byte header length", path)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if st, err := f.Stat(); err != nil || hlen > uint64(st.Size()-8) {
		return nil, fmt.Errorf("%s: truncated: header length %d exceeds the file", path, hlen)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(f, header); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	_, rawMeta, err := parseHeader(header)
	if err != nil {
		return nil, fmt.Errorf("%s: bad header: %v", path, err)
	}
	meta, err := decodeMeta(rawMeta)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	popChecksum(meta)
	return meta, nil
}

// popChecksum removes the checksum from meta and returns it.
func popChecksum(meta map[string]string) (string, bool) {
	v, ok := meta[ChecksumKey]
	delete(meta, ChecksumKey)
	return v, ok
}

// decodeMeta decodes the raw __metadata__ value of a header (nil: none).
func decodeMeta(raw json.RawMessage) (map[string]string, error) {
	meta := map[string]string{}
	if raw != nil {
		if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
			return nil, fmt.Errorf("bad header: __metadata__ is not an object of strings")
		}
	}
	return meta, nil
}
