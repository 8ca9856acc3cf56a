package codegen_test

import (
	"math/rand"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/internal/llvmtest"
	"xlc/ir"
	"xlc/runtime/cpu"
	"xlc/runtime/interp"
)

// softmaxRows is a softmax over rows of 100 (not a multiple of a vector)
// and its backward, each one row kernel that needs exp(x - max) both in a
// sum and in the row it writes.
const softmaxRows = `func @f(%x: f32[6,100], %dy: f32[6,100]) -> (y: f32[6,100], dx: f32[6,100]) {
  %0 = fusion %x {calls=fused.0, kind=reduce} : f32[6,100]
  %1 = fusion %x, %dy {calls=fused.1, kind=reduce} : f32[6,100]
  return %0, %1
}

func @fused.0(%p0: f32[6,100]) -> (f32[6,100]) {
  %0 = reduce_max %p0 {axes=[1]} : f32[6]
  %1 = broadcast %0 {dims=[0]} : f32[6,100]
  %2 = sub %p0, %1 : f32[6,100]
  %3 = exp %2 : f32[6,100]
  %4 = reduce_sum %3 {axes=[1]} : f32[6]
  %5 = broadcast %4 {dims=[0]} : f32[6,100]
  %6 = div %3, %5 : f32[6,100]
  return %6
}

func @fused.1(%p0: f32[6,100], %p1: f32[6,100]) -> (f32[6,100]) {
  %0 = reduce_max %p0 {axes=[1]} : f32[6]
  %1 = broadcast %0 {dims=[0]} : f32[6,100]
  %2 = sub %p0, %1 : f32[6,100]
  %3 = exp %2 : f32[6,100]
  %4 = reduce_sum %3 {axes=[1]} : f32[6]
  %5 = broadcast %4 {dims=[0]} : f32[6,100]
  %6 = div %3, %5 : f32[6,100]
  %7 = mul %p1, %6 : f32[6,100]
  %8 = reduce_sum %7 {axes=[1]} : f32[6]
  %9 = broadcast %8 {dims=[0]} : f32[6,100]
  %10 = sub %p1, %9 : f32[6,100]
  %11 = mul %6, %10 : f32[6,100]
  return %11
}
`

// TestRowCache checks that a row kernel computes a costly value of its
// rows' shape once per element: the reduction's loop keeps exp(x - max)
// (and the backward's softmax) in a row array that the writing loop reads,
// and the results are the interpreter's.
func TestRowCache(t *testing.T) {
	f, err := ir.ParseFunc(softmaxRows)
	if err != nil {
		t.Fatal(err)
	}
	p, err := codegen.Compile(f, codegen.Options{CPU: "x86-64"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.LL, "alloca [100 x float]"); n != 3 {
		t.Errorf("%d row caches of 100 floats, want 3 (exp in the forward; exp and softmax in the backward)", n)
	}
	llvmtest.Require(t, codegen.ToolchainError())
	x, err := cpu.Backend{}.LoadExec(f)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	r := rand.New(rand.NewSource(5))
	args := make([]*interp.Tensor, 2)
	for i, q := range f.Params {
		v := make([]float64, q.Type.Shape.NumElements())
		for j := range v {
			v[j] = float64(float32(r.NormFloat64() * 4))
		}
		args[i] = interp.FromFloats(q.Type, v)
	}
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x.Run(args)
	if err != nil {
		t.Fatal(err)
	}
	for k := range want {
		for j, w := range want[k].F {
			if d := got[k].F[j] - w; d > 1e-5*(1+abs(w)) || d < -1e-5*(1+abs(w)) {
				t.Fatalf("result %d element %d: %v, interpreter %v", k, j, got[k].F[j], w)
			}
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
