package interp

import (
	"math"
	"testing"

	"xlc/ir"
)

// TestEncodeDecode round-trips a tensor of every dtype through the
// kernels' buffer layout and checks a few encodings bit for bit: f32 as
// IEEE single, f16 and bf16 as their uint16 bits, bool as one byte.
func TestEncodeDecode(t *testing.T) {
	floats := []float64{1.5, -2, 0, math.Inf(-1)}
	ints := []int64{1, -2, 0, 7}
	for _, d := range []ir.DType{ir.F32, ir.F64, ir.F16, ir.BF16, ir.I32, ir.I64, ir.Bool} {
		ty := ir.T(d, 2, 2)
		var x *Tensor
		if d.IsFloat() {
			x = FromFloats(ty, floats)
		} else {
			x = FromInts(ty, ints)
		}
		buf := make([]byte, ByteSize(ty))
		Encode(buf, x)
		if y := Decode(buf, ty); !y.Identical(x) {
			t.Errorf("%v: decoded %v, want %v", d, y, x)
		}
		first := map[ir.DType][]byte{
			ir.F32: {0, 0, 0xc0, 0x3f}, ir.F16: {0x00, 0x3e}, ir.BF16: {0xc0, 0x3f}, ir.Bool: {1, 1, 0, 1},
		}[d]
		if first != nil && string(buf[:len(first)]) != string(first) {
			t.Errorf("%v: bytes % x, want % x first", d, buf, first)
		}
	}
}
