package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/x448/float16"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/ir/scalar"
	"xlc/runtime/interp"
)

// TestHalfRounding runs every f16 and bf16 bit pattern, and f32 values at
// and next to every f16 and bf16 rounding boundary (both signs, with
// infinities, NaN, subnormals and the largest floats), through convert
// ops on the interpreter and in a compiled kernel, and requires the bits
// ir/scalar gives (NaN: a NaN).
func TestHalfRounding(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	const n = 1 << 16
	h, b := make([]float64, n), make([]float64, n)
	for i := range n {
		h[i] = float64(float16.Frombits(uint16(i)).Float32())
		b[i] = float64(math.Float32frombits(uint32(i) << 16))
	}
	var x []float64
	near := func(m float64) {
		f := float32(m)
		for _, v := range []float32{math.Nextafter32(f, float32(math.Inf(-1))), f, math.Nextafter32(f, float32(math.Inf(1)))} {
			x = append(x, float64(v), -float64(v))
		}
	}
	for i := range 0x7bff { // consecutive finite positive f16 values
		near((h[i] + h[i+1]) / 2)
	}
	near(65520)             // halfway from the largest f16 to the next power: rounds to +inf
	for i := range 0x7f7f { // consecutive finite positive bf16 values
		near((b[i] + b[i+1]) / 2)
	}
	for _, v := range []float64{0, math.Inf(1), math.NaN(), math.MaxFloat32, 1e-45, 1e-40, 3e38} {
		x = append(x, v, -v)
	}
	m := len(x)
	f, err := ir.ParseFunc(fmt.Sprintf(`func @f(%%h: f16[%[1]d], %%b: bf16[%[1]d], %%x: f32[%[2]d]) -> (h32: f32[%[1]d], b32: f32[%[1]d], hb: bf16[%[1]d], bh: f16[%[1]d], xh: f16[%[2]d], xb: bf16[%[2]d]) {
  %%0 = convert %%h : f32[%[1]d]
  %%1 = convert %%b : f32[%[1]d]
  %%2 = convert %%h : bf16[%[1]d]
  %%3 = convert %%b : f16[%[1]d]
  %%4 = convert %%x : f16[%[2]d]
  %%5 = convert %%x : bf16[%[2]d]
  return %%0, %%1, %%2, %%3, %%4, %%5
}`, n, m))
	if err != nil {
		t.Fatal(err)
	}
	args := []*interp.Tensor{interp.FromFloats(f.Params[0].Type, h), interp.FromFloats(f.Params[1].Type, b), interp.FromFloats(f.Params[2].Type, x)}
	ref, err := interp.Run(f, args)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := Backend{}.LoadExec(f)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	got, err := exe.Run(args)
	if err != nil {
		t.Fatal(err)
	}
	ins := [][]float64{h, b, h, b, x, x}
	for r, name := range f.ResultNames {
		d := f.Results[r].Type.DType
		bad := 0
		for i, in := range ins[r] {
			want := scalar.Round(d, in)
			for _, have := range []struct {
				who string
				v   float64
			}{{"interpreter", ref[r].F[i]}, {"kernel", got[r].F[i]}} {
				same := math.Float64bits(have.v) == math.Float64bits(want)
				if math.IsNaN(want) {
					same = math.IsNaN(have.v)
				}
				if !same && bad < 5 {
					t.Errorf("%s[%d]: %v(%v) = %v on the %s, want %v", name, i, d, in, have.v, have.who, want)
				}
				if !same {
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ", name, bad, len(ins[r]))
		}
	}
}
