package interp

import (
	"math"
	"os"
	"testing"

	"xlc/ir"
)

// parseTestdata parses the function of testdata/ir/name.
func parseTestdata(t *testing.T, name string) *ir.Func {
	t.Helper()
	src, err := os.ReadFile("../../testdata/ir/" + name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ir.ParseFunc(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFusion runs testdata/ir/fusion.ir, whose fusions call shared, nested
// and operand-less callees, and compares it with the same computation
// written without fusions: the results must agree bit for bit.
func TestFusion(t *testing.T) {
	fused := parseTestdata(t, "fusion.ir")
	plain, err := ir.ParseFunc(`func @f(%x: f32[2,4], %b: f32[4], %w: f32[4,3]) -> (f32[2,3], f32[2,4]) {
  %0 = broadcast %b {dims=[1]} : f32[2,4]
  %1 = add %x, %0 : f32[2,4]
  %2 = tanh %1 : f32[2,4]
  %3 = add %2, %0 : f32[2,4]
  %4 = tanh %3 : f32[2,4]
  %5 = dot %4, %w {batch=[[],[]], contract=[[1],[0]]} : f32[2,3]
  %6 = constant {value=0.5} : f32[2,3]
  %7 = mul %5, %6 : f32[2,3]
  %8 = reduce_max %7 {axes=[1]} : f32[2]
  %9 = broadcast %8 {dims=[0]} : f32[2,3]
  %10 = sub %7, %9 : f32[2,3]
  %11 = exp %10 : f32[2,3]
  %12 = reduce_sum %11 {axes=[1]} : f32[2]
  %13 = broadcast %12 {dims=[0]} : f32[2,3]
  %14 = div %11, %13 : f32[2,3]
  %15 = iota {axis=0} : i32[2,4]
  %16 = iota {axis=1} : i32[2,4]
  %17 = ge %15, %16 : bool[2,4]
  %18 = constant {value=0.0} : f32[2,4]
  %19 = select %17, %4, %18 : f32[2,4]
  return %14, %19
}
`)
	if err != nil {
		t.Fatal(err)
	}
	args := []*Tensor{
		ten("f32[2,4]", 0.1, -0.2, 0.3, 0.4, -1, 2, 0.5, 0.25),
		ten("f32[4]", 0.01, 0.02, -0.03, 0.5),
		ten("f32[4,3]", 1, 2, 3, -1, 0.5, 0.25, 2, -2, 1, 0.1, 0.2, 0.3),
	}
	want, err := Run(plain, args)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Run(fused, args)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		for j := range want[i].F {
			if math.Float64bits(got[i].F[j]) != math.Float64bits(want[i].F[j]) {
				t.Fatalf("result %d element %d: fused %v, plain %v", i, j, got[i].F[j], want[i].F[j])
			}
		}
	}
	if _, err := Eval(ir.OpFusion, fused.Body[0].Attrs, fused.Body[0].Type, args[:2]); err == nil {
		t.Fatal("Eval ran a fusion without its callee")
	}
}

// TestMultiOutputFusion runs testdata/ir/multi_output.ir, a fusion with
// three results (softmax, its row sums and its exponentials), and compares
// each with the unfused ops.
func TestMultiOutputFusion(t *testing.T) {
	fused := parseTestdata(t, "multi_output.ir")
	x := ten("f32[2,3]", 0.1, -0.2, 0.3, 0.4, -1, 2)
	got, err := Run(fused, []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	e := make([]float64, 6)
	for i, v := range x.F {
		e[i] = f32(math.Exp(v))
	}
	s := []float64{f32(e[0] + e[1] + e[2]), f32(e[3] + e[4] + e[5])}
	sm := make([]float64, 6)
	for i := range sm {
		sm[i] = f32(e[i] / s[i/3])
	}
	checkTensor(t, "softmax", got[0], ten("f32[2,3]", sm...))
	checkTensor(t, "sums", got[1], ten("f32[2]", s...))
	checkTensor(t, "exp", got[2], ten("f32[2,3]", e...))
}
