package ir_test

import (
	"os"
	"strings"
	"testing"

	"xlc/ir"
)

const fusedCallee = `
func @fused.0(%p0: f32[2]) -> (f32[2]) {
  %0 = exp %p0 : f32[2]
  %1 = neg %0 : f32[2]
  return %1
}
`

// TestParseFusionErrors checks that a fusion's callee is resolved after the
// whole module is read, and that an unknown or ill-typed one is an error at
// the instruction.
func TestParseFusionErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown callee", "func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = fusion %x {calls=fused.9, kind=loop} : f32[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion calls @fused.9, which is not defined"},
		{"operand type", "func @f(%x: f32[3]) -> (f32[2]) {\n  %0 = fusion %x {calls=fused.0, kind=loop} : f32[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion: operand 0: @fused.0 wants f32[2], have f32[3]"},
		{"arity", "func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = fusion %x, %x {calls=fused.0, kind=loop} : f32[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion: @fused.0 takes 1 operands, have 2"},
		{"result type", "func @f(%x: f32[2]) -> (f64[2]) {\n  %0 = fusion %x {calls=fused.0, kind=loop} : f64[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion: @fused.0 returns f32[2], the instruction is f64[2]"},
		{"kind", "func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = fusion %x {calls=fused.0, kind=dot} : f32[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion: @fused.0 has 0 dots, a kind=dot fusion one"},
		{"nested", "func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = fusion %x {calls=g, kind=loop} : f32[2]\n  return %0\n}\n" +
			"func @g(%p0: f32[2]) -> (f32[2]) {\n  %0 = fusion %p0 {calls=fused.0, kind=loop} : f32[2]\n  return %0\n}\n" + fusedCallee,
			"2:8: fusion: @g contains a fusion (%0); fused functions do not nest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ir.Parse(tc.src)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("have %v, want %q", err, tc.want)
			}
		})
	}
}

// TestFusionText checks that a function prints with its callees after it,
// each once, that ParseFunc reads that text back, and that the callee is
// shared by both of its uses.
func TestFusionText(t *testing.T) {
	src, err := os.ReadFile("../testdata/ir/fusion.ir")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ir.ParseFunc(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	if f.Body[0].Callee == nil || f.Body[0].Callee != f.Body[1].Callee {
		t.Fatalf("the two calls of fused.0 do not share one callee")
	}
	if got := f.String(); got != string(src) {
		t.Fatalf("Func.String differs:\n%s", got)
	}
	if n := len(f.Callees()); n != 4 {
		t.Fatalf("%d callees, want 4", n)
	}
	if _, err := ir.ParseFunc(string(src) + "\nfunc @extra() -> () {\n  return\n}\n"); err == nil {
		t.Fatal("ParseFunc accepted a function that is not called")
	}
}

// TestVerifyFusion checks the verifier's view of a fusion: the callee's
// types and its body.
func TestVerifyFusion(t *testing.T) {
	b := ir.NewBuilder("c")
	p := b.Param("p0", ir.T(ir.F32, 2), nil)
	b.Return(nil, b.Unary(ir.OpExp, p))
	callee := b.F
	callee.Name = "fused.0"

	m := ir.NewBuilder("f")
	x := m.Param("x", ir.T(ir.F32, 2), nil)
	y := m.Fusion(callee, ir.FusionLoop, x)
	m.Return(nil, y)
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.F.Verify(); err != nil {
		t.Fatal(err)
	}
	// A broken callee body is reported through the call.
	callee.Body[0].Args[0] = &ir.Value{Name: "ghost", Type: p.Type}
	if err := m.F.Verify(); err == nil || !strings.Contains(err.Error(), "%0: in @fused.0: %0: operand %ghost is not defined") {
		t.Fatalf("have %v", err)
	}
	callee.Body[0].Args[0] = p
	y.Attrs = y.Attrs.Set("calls", "other")
	if err := m.F.Verify(); err == nil || !strings.Contains(err.Error(), "calls=other, but the callee is @fused.0") {
		t.Fatalf("have %v", err)
	}
	y.Attrs = y.Attrs.Set("calls", "fused.0")
	y.Callee = nil
	if err := m.F.Verify(); err == nil || !strings.Contains(err.Error(), "no callee") {
		t.Fatalf("have %v", err)
	}
	// A mismatched builder call sticks as an error.
	m2 := ir.NewBuilder("g")
	z := m2.Param("z", ir.T(ir.F32, 3), nil)
	m2.Fusion(callee, ir.FusionLoop, z)
	if m2.Err() == nil {
		t.Fatal("the builder accepted an ill-typed fusion")
	}
}

// TestMultiOutputFusion checks the text of a fusion with several results
// (testdata/ir/multi_output.ir): it round-trips, and its output
// instructions must directly follow it, in order, with the callee's result
// types.
func TestMultiOutputFusion(t *testing.T) {
	src, err := os.ReadFile("../testdata/ir/multi_output.ir")
	if err != nil {
		t.Fatal(err)
	}
	multiSrc := string(src)
	f, err := ir.ParseFunc(multiSrc)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	if got := f.String(); got != multiSrc {
		t.Fatalf("Func.String differs:\n%s", got)
	}
	bad := []struct{ name, from, to, want string }{
		{"missing", "  %2 = output %0 {index=2}", "  %2 = exp %x",
			"%0: fusion: @fused.0 returns 3 values: want output %0 {index=2} next"},
		{"order", "{index=1} : f32[2]\n  %2 = output %0 {index=2} : f32[2,3]", "{index=2} : f32[2]\n  %2 = output %0 {index=1} : f32[2,3]",
			"%0: fusion: @fused.0 returns 3 values: want output %0 {index=1} next"},
		{"type", "(f32[2,3], f32[2], f32[2,3]) {\n  %0 = fusion %x {calls=fused.0, kind=reduce} : f32[2,3]\n  %1 = output %0 {index=1} : f32[2]",
			"(f32[2,3], f32[3], f32[2,3]) {\n  %0 = fusion %x {calls=fused.0, kind=reduce} : f32[2,3]\n  %1 = output %0 {index=1} : f32[3]",
			"%1: output 1 of @fused.0 is f32[2], the instruction is f32[3]"},
		{"index", "{index=1}", "{index=0}", "want output %0 {index=1} next"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(multiSrc, tc.from, tc.to, 1)
			g, err := ir.ParseFunc(src)
			if err == nil {
				err = g.Verify()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("have %v, want %q", err, tc.want)
			}
		})
	}
	// An output anywhere but after its fusion.
	b := ir.NewBuilder("g")
	x := b.Param("x", ir.T(ir.F32, 2, 3), nil)
	outs := b.FusionOutputs(f.Body[0].Callee, ir.FusionReduce, x)
	if err := b.Err(); err != nil || len(outs) != 3 || outs[1].Op != ir.OpOutput {
		t.Fatalf("FusionOutputs: %v, %d values", err, len(outs))
	}
	e := b.Unary(ir.OpExp, x)
	b.Return(nil, outs[0], outs[1], e)
	b.F.Body[2], b.F.Body[3] = b.F.Body[3], b.F.Body[2]
	if err := b.F.Verify(); err == nil || !strings.Contains(err.Error(), "want output %0 {index=2} next") {
		t.Fatalf("have %v", err)
	}
	b.F.Body = append(b.F.Body[:2], b.F.Body[3], b.F.Body[2], b.F.Body[3])
	if err := b.F.Verify(); err == nil || !strings.Contains(err.Error(), "must directly follow its fusion") {
		t.Fatalf("have %v", err)
	}
}
