package codegen

import (
	"strings"
	"testing"

	"xlc/ir"
)

// TestRecomputeWarns lowers a reduce fusion the row kernels do not take (its
// root reshapes the row-shaped values flat): the kernel is marked
// LowerRecompute and Compile warns once about it.
func TestRecomputeWarns(t *testing.T) {
	f, err := ir.ParseFunc(`func @f(%x: f32[4,8]) -> (r: f32[32], s: f32[4]) {
  %0 = fusion %x {calls=fused.0, kind=reduce} : f32[32]
  %1 = fusion %x {calls=fused.1, kind=reduce} : f32[4]
  return %0, %1
}

func @fused.0(%p0: f32[4,8]) -> (f32[32]) {
  %0 = reduce_sum %p0 {axes=[1]} : f32[4]
  %1 = broadcast %0 {dims=[0]} : f32[4,8]
  %2 = sub %p0, %1 : f32[4,8]
  %3 = reshape %2 : f32[32]
  return %3
}

func @fused.1(%p0: f32[4,8]) -> (f32[4]) {
  %0 = mul %p0, %p0 : f32[4,8]
  %1 = reduce_sum %0 {axes=[1]} : f32[4]
  return %1
}
`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(f, Options{CPU: "znver4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Kernels[0].Lowering; got != LowerRecompute {
		t.Errorf("flat root: lowering %s, want %s", got, LowerRecompute)
	}
	if got := p.Kernels[1].Lowering; got == LowerRecompute {
		t.Errorf("a reduction at the root: lowering %s", got)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "%0 = ") {
		t.Errorf("warnings %q, want one about %%0", p.Warnings)
	}
}
