package cpu

import (
	"math/rand"
	"testing"

	"xlc/codegen"
	"xlc/ir"
	"xlc/runtime/interp"
)

// TestTransposedDot runs a dot fusion whose root transposes the product
// (attention's head merge: [b,h,s,dh] written as [b,s,h,dh]): the fast dot
// (or the GPU's tiled dot) writes the transposed order itself, and the
// result matches the
// interpreter within 1e-4 of the sum of the terms' magnitudes.
func TestTransposedDot(t *testing.T) {
	needLLVM(t)
	f, err := ir.ParseFunc(`func @f(%p: f32[2,4,128,96], %v: f32[2,96,4,32]) -> (r: f32[2,128,4,32]) {
  %0 = fusion %p, %v {calls=fused.0, kind=dot} : f32[2,128,4,32]
  return %0
}

func @fused.0(%p0: f32[2,4,128,96], %p1: f32[2,96,4,32]) -> (f32[2,128,4,32]) {
  %0 = dot %p0, %p1 {batch=[[0,1],[0,2]], contract=[[3],[1]]} : f32[2,4,128,32]
  %1 = transpose %0 {perm=[0,2,1,3]} : f32[2,128,4,32]
  return %1
}
`)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(7))
	args := []*interp.Tensor{randomTensor(r, f.Params[0].Type, 0, 0), randomTensor(r, f.Params[1].Type, 0, 0)}
	e := load(t, f)
	lowering := codegen.LowerFastDot
	if tg, err := codegen.HostTarget(); err == nil && tg.MR == 0 {
		lowering = codegen.LowerTiledDot // the GPU emulator: its tiled dot stores in the transposed order
	}
	if l := e.kernels[0].lowering; l != lowering {
		t.Fatalf("lowering %s, want %s", l, lowering)
	}
	got, err := e.Run(args)
	if err != nil {
		t.Fatal(err)
	}
	want, err := interp.Run(f, args)
	if err != nil {
		t.Fatal(err)
	}
	if msg := diffAbs(got[0], want[0], 1e-4, absTerms(t, f, args)[0].F); msg != "" {
		t.Error(msg)
	}
}
