package interp

import (
	"math"
	"math/rand/v2"
	"testing"

	"xlc/ir"
)

// TestPad runs pad on small hand-computed cases.
func TestPad(t *testing.T) {
	tests := []struct {
		name, params, body string
		args               []*Tensor
		want               *Tensor
	}{
		{"low high", "%x: f32[2]", "%0 = pad %x {high=[2], interior=[0], low=[1]} : f32[5]",
			[]*Tensor{ten("f32[2]", 1, 2)}, ten("f32[5]", 0, 1, 2, 0, 0)},
		{"interior", "%x: f32[3]", "%0 = pad %x {high=[0], interior=[2], low=[0]} : f32[7]",
			[]*Tensor{ten("f32[3]", 1, 2, 3)}, ten("f32[7]", 1, 0, 0, 2, 0, 0, 3)},
		{"2d", "%x: f32[2,2]", "%0 = pad %x {high=[0,1], interior=[1,0], low=[1,0]} : f32[4,3]",
			[]*Tensor{ten("f32[2,2]", 1, 2, 3, 4)}, ten("f32[4,3]", 0, 0, 0, 1, 2, 0, 0, 0, 0, 3, 4, 0)},
		{"empty operand", "%x: f32[0,2]", "%0 = pad %x {high=[1,0], interior=[3,0], low=[1,1]} : f32[2,3]",
			[]*Tensor{ten("f32[0,2]")}, ten("f32[2,3]", 0, 0, 0, 0, 0, 0)},
		{"i32", "%x: i32[2]", "%0 = pad %x {high=[0], interior=[1], low=[1]} : i32[4]",
			[]*Tensor{ten("i32[2]", 7, -8)}, ten("i32[4]", 0, 7, 0, -8)},
		{"bool", "%x: bool[1]", "%0 = pad %x {high=[1], interior=[0], low=[0]} : bool[2]",
			[]*Tensor{ten("bool[1]", 1)}, ten("bool[2]", 1, 0)},
		{"scalar", "%x: f64[]", "%0 = pad %x {high=[], interior=[], low=[]} : f64[]",
			[]*Tensor{ten("f64[]", 5)}, ten("f64[]", 5)},
	}
	for _, tc := range tests {
		res, err := runText(tc.params, tc.body, tc.want.Type.String(), tc.args...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		checkTensor(t, tc.name, res[0], tc.want)
	}
}

// TestPadSliceAdjoint checks <pad(x), y> == <x, slice(y)> where the slice
// starts at low and strides by interior+1: the two ops are each other's
// transpose, which is what autodiff relies on.
func TestPadSliceAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xt := ir.T(ir.F64, 3, 2, 4)
	low, high, interior := []int{1, 0, 2}, []int{0, 3, 1}, []int{2, 0, 1}
	pa := ir.Attrs{}.Set("low", low).Set("high", high).Set("interior", interior)
	pt, err := ir.Infer(ir.OpPad, []ir.Type{xt}, pa, ir.Type{})
	if err != nil {
		t.Fatal(err)
	}
	if want := ir.T(ir.F64, 1+3+2*2, 2+3, 2+4+3*1+1); !pt.Equal(want) {
		t.Fatalf("pad type %v, want %v", pt, want)
	}
	x, y := randTensor(r, xt), randTensor(r, pt)
	p, err := Eval(ir.OpPad, pa, pt, []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	limit, stride := make([]int, 3), make([]int, 3)
	for i, n := range xt.Shape {
		stride[i] = interior[i] + 1
		limit[i] = low[i] + (n-1)*stride[i] + 1
	}
	sa := ir.Attrs{}.Set("start", low).Set("limit", limit).Set("stride", stride)
	s, err := Eval(ir.OpSlice, sa, xt, []*Tensor{y})
	if err != nil {
		t.Fatal(err)
	}
	var lhs, rhs float64
	for i := range p.F {
		lhs += p.F[i] * y.F[i]
	}
	for i := range x.F {
		rhs += x.F[i] * s.F[i]
	}
	if math.Abs(lhs-rhs) > 1e-12*(math.Abs(lhs)+1) {
		t.Errorf("<pad(x), y> = %v, <x, slice(y)> = %v", lhs, rhs)
	}
}
