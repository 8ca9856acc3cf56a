package interp

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/x448/float16"

	"xlc/ir"
)

// ByteSize is the number of bytes a buffer of type t holds in the layout
// the compiled kernels read (Encode's): its elements dense and row-major.
func ByteSize(t ir.Type) int { return t.Shape.NumElements() * t.DType.Size() }

// Encode stores t's elements in dst in the compiled backends' buffer
// layout: each element in t's dtype (f16 and bf16 as their uint16 bits,
// bool as one byte holding 0 or 1), in the host's byte order. dst must hold
// ByteSize(t.Type) bytes, aligned for the dtype (C memory and Go's
// allocations are); the cpu and cuda backends copy arguments in with it.
func Encode(dst []byte, t *Tensor) {
	n := t.Len()
	if n == 0 {
		return
	}
	if len(dst) < ByteSize(t.Type) {
		panic(fmt.Sprintf("interp.Encode: %d bytes for %v", len(dst), t.Type))
	}
	p := unsafe.Pointer(unsafe.SliceData(dst))
	switch t.Type.DType {
	case ir.F32:
		s := unsafe.Slice((*float32)(p), n)
		for i, v := range t.F {
			s[i] = float32(v)
		}
	case ir.F64:
		copy(unsafe.Slice((*float64)(p), n), t.F)
	case ir.F16:
		s := unsafe.Slice((*uint16)(p), n)
		for i, v := range t.F {
			s[i] = float16.Fromfloat32(float32(v)).Bits()
		}
	case ir.BF16:
		s := unsafe.Slice((*uint16)(p), n)
		for i, v := range t.F {
			s[i] = uint16(math.Float32bits(float32(v)) >> 16)
		}
	case ir.I32:
		s := unsafe.Slice((*int32)(p), n)
		for i, v := range t.I {
			s[i] = int32(v)
		}
	case ir.I64:
		copy(unsafe.Slice((*int64)(p), n), t.I)
	case ir.Bool:
		for i, v := range t.I {
			dst[i] = 0
			if v != 0 {
				dst[i] = 1
			}
		}
	}
}

// Decode returns a tensor of type t holding the elements src stores in
// Encode's layout: how the compiled backends copy results out.
func Decode(src []byte, t ir.Type) *Tensor {
	out := NewTensor(t)
	n := out.Len()
	if n == 0 {
		return out
	}
	if len(src) < ByteSize(t) {
		panic(fmt.Sprintf("interp.Decode: %d bytes for %v", len(src), t))
	}
	p := unsafe.Pointer(unsafe.SliceData(src))
	switch t.DType {
	case ir.F32:
		for i, v := range unsafe.Slice((*float32)(p), n) {
			out.F[i] = float64(v)
		}
	case ir.F64:
		copy(out.F, unsafe.Slice((*float64)(p), n))
	case ir.F16:
		for i, v := range unsafe.Slice((*uint16)(p), n) {
			out.F[i] = float64(float16.Frombits(v).Float32())
		}
	case ir.BF16:
		for i, v := range unsafe.Slice((*uint16)(p), n) {
			out.F[i] = float64(math.Float32frombits(uint32(v) << 16))
		}
	case ir.I32:
		for i, v := range unsafe.Slice((*int32)(p), n) {
			out.I[i] = int64(v)
		}
	case ir.I64:
		copy(out.I, unsafe.Slice((*int64)(p), n))
	case ir.Bool:
		for i, v := range src[:n] {
			out.I[i] = int64(v)
		}
	}
	return out
}
