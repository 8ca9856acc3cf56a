package codegen_test

import (
	"fmt"
	"math"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
)

// TestRowMaxSpecialValues runs row kernels whose reduce_max rows hold NaN
// (of either sign), ±inf and ±0 in every dtype, with row lengths that are
// not multiples of a vector, against the interpreter: the max (and x - max,
// broadcast back) must be its bit for bit, NaN for NaN.
func TestRowMaxSpecialValues(t *testing.T) {
	llvmtest.Require(t, codegen.ToolchainError())
	nan, inf, nz := math.NaN(), math.Inf(1), math.Copysign(0, -1)
	negNaN := math.Float64frombits(math.Float64bits(nan) | 1<<63)
	tiny := math.Ldexp(1, -24) // an f16 subnormal, exact in every dtype
	cases := [][]float64{
		{-inf, -inf, -inf},
		{nz, 0, nz},
		{0, nz},
		{nz, nz, nz},
		{nz, -1, -tiny, nz},
		{-3, nz, -tiny},
		{1, nan, 3},
		{nan, inf, 2},
		{inf, nan},
		{nan},
		{negNaN, -inf},
		{-inf, nan, -inf},
		{-inf, negNaN, 5, inf},
		{-2, -1.5, -0.25, -1},
		{tiny, nz, 0, -tiny},
		{-inf, inf},
		{inf},
		{-inf},
		{7, 1, 2},
		{1, 2, 7},
		{-65504, 65504, 0.5},
	}
	for _, n := range []int{1, 5, 37, 64, 130} {
		for _, d := range []string{"f32", "f64", "f16", "bf16"} {
			// Row i repeats case i%len(cases) over n elements, the special values
			// at varying offsets (last, first, middle); the rest -inf.
			rows := 2 * len(cases)
			x := make([]float64, rows*n)
			for i := range rows {
				c := cases[i%len(cases)]
				for j := range n {
					x[i*n+j] = math.Inf(-1)
				}
				for k, v := range c {
					j := (k*(n/len(c)+1) + i) % n
					if i >= len(cases) {
						j = n - 1 - j
					}
					if n < len(c) {
						j = k % n
						if math.IsInf(x[i*n+j], -1) || math.IsNaN(v) {
							x[i*n+j] = v
						} else if !math.IsNaN(x[i*n+j]) {
							x[i*n+j] = math.Max(x[i*n+j], v)
						}
						continue
					}
					x[i*n+j] = v
				}
			}
			src := fmt.Sprintf(`func @f(%%x: %[1]s[%[2]d,%[3]d]) -> (m: %[1]s[%[2]d], s: %[1]s[%[2]d,%[3]d], m3: %[1]s[%[2]d]) {
  %%0 = fusion %%x {calls=f.0, kind=reduce} : %[1]s[%[2]d]
  %%1 = fusion %%x {calls=f.1, kind=reduce} : %[1]s[%[2]d,%[3]d]
  %%2 = reshape %%x : %[1]s[%[2]d,1,%[3]d]
  %%3 = fusion %%2 {calls=f.2, kind=reduce} : %[1]s[%[2]d]
  return %%0, %%1, %%3
}

func @f.0(%%p0: %[1]s[%[2]d,%[3]d]) -> (%[1]s[%[2]d]) {
  %%0 = reduce_max %%p0 {axes=[1]} : %[1]s[%[2]d]
  return %%0
}

func @f.1(%%p0: %[1]s[%[2]d,%[3]d]) -> (%[1]s[%[2]d,%[3]d]) {
  %%0 = reduce_max %%p0 {axes=[1]} : %[1]s[%[2]d]
  %%1 = broadcast %%0 {dims=[0]} : %[1]s[%[2]d,%[3]d]
  %%2 = sub %%p0, %%1 : %[1]s[%[2]d,%[3]d]
  return %%2
}

func @f.2(%%p0: %[1]s[%[2]d,1,%[3]d]) -> (%[1]s[%[2]d]) {
  %%0 = reduce_max %%p0 {axes=[1,2]} : %[1]s[%[2]d]
  return %%0
}
`, d, rows, n)
			f, err := ir.ParseFunc(src)
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			arg := interp.FromFloats(ir.T(f.Params[0].Type.DType, rows, n), x)
			want, err := interp.Run(f, []*interp.Tensor{arg})
			if err != nil {
				t.Fatal(err)
			}
			exe, err := cpu.Backend{}.LoadExec(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := exe.Run([]*interp.Tensor{arg})
			exe.Close()
			if err != nil {
				t.Fatal(err)
			}
			for r := range want {
				for i, w := range want[r].F {
					g := got[r].F[i]
					if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
						t.Errorf("%s n=%d result %s[%d] (row %v): got %v (%#x), interp %v (%#x)",
							d, n, f.ResultNames[r], i, x[i/max(1, len(want[r].F)/rows)*n:][:n], g, math.Float64bits(g), w, math.Float64bits(w))
					}
				}
			}
		}
	}
}
