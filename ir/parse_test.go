package ir_test

import (
	"math"
	"strings"
	"testing"

	"xlc/ir"
)

// TestParseErrors checks that malformed IR is refused with line:col.
func TestParseErrors(t *testing.T) {
	const ok = "func @f(%x: f32[]) -> (f32[]) {\n  return %x\n}\n"
	tests := []struct {
		name, src, want string
	}{
		{"function twice", ok + "\n" + ok, "5:6: function @f defined twice"},
		{"result count", "func @f(%x: f32[]) -> (f32[], f32[]) {\n  return %x\n}\n", "1:6: @f: returns 1 values, declares 2"},
		{"result type", "func @f(%x: f32[]) -> (f32[2]) {\n  return %x\n}\n", "1:6: @f: result 0: declared f32[2], returns f32[]"},
		{"digit parameter", "func @f(%x: f32[], %0: f32[]) -> (f32[]) {\n  return %x\n}\n", "1:20: parameter name %0 begins with a digit"},
		{"digit-led parameter", "func @f(%1x: f32[]) -> () {\n  return\n}\n", "1:9: parameter name %1x begins with a digit"},
		{"nested type", "func @f(%x: f32[[2]]) -> () {\n  return\n}\n", `1:17: want an integer, have "["`},
		{"deep attribute", "func @f() -> () {\n  %0 = iota {axis=[[[0]]]} : i32[2]\n  return\n}\n", `2:21: want an integer, have "["`},
		{"huge type", "func @f(%x: f32[65536,65536]) -> () {\n  return\n}\n", "too many elements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ir.Parse(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("have %v, want %q", err, tc.want)
			}
		})
	}
}

// TestParseDeepList checks that deeply nested brackets end in an error,
// not a stack overflow.
func TestParseDeepList(t *testing.T) {
	for _, n := range []int{3, 1000, 30_000_000} {
		src := "func @f() -> () {\n  %0 = iota {axis=" + strings.Repeat("[", n) + "} : i32[2]\n  return\n}\n"
		if _, err := ir.Parse(src); err == nil || !strings.Contains(err.Error(), "2:21:") {
			t.Fatalf("%d brackets: have %v, want an error at 2:21", n, err)
		}
	}
}

// TestVerifyParamNames checks that Verify refuses parameter names the text
// form cannot hold.
func TestVerifyParamNames(t *testing.T) {
	for _, name := range []string{"0", "1x", "a-b", "a b", ""} {
		f := &ir.Func{Name: "f", Params: []*ir.Value{{Name: name, Type: ir.T(ir.F32)}}}
		if err := f.Verify(); err == nil {
			t.Errorf("parameter %q: Verify accepted it", name)
		}
	}
	for _, name := range []string{"x", "_1", "layer0.attn.w", "rng_key"} {
		f := &ir.Func{Name: "f", Params: []*ir.Value{{Name: name, Type: ir.T(ir.F32)}}}
		if err := f.Verify(); err != nil {
			t.Errorf("parameter %q: %v", name, err)
		}
	}
}

// TestBuilderChecks checks that the builder refuses, as a sticky error,
// types and constants that would fail only in the final Verify.
func TestBuilderChecks(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *ir.Builder)
		want  string // "" for no error
	}{
		{"negative param dim", func(b *ir.Builder) { b.Param("x", ir.T(ir.F32, -1), nil) }, "negative dimension"},
		{"wrapping param", func(b *ir.Builder) { b.Param("x", ir.T(ir.F32, 1<<32, 1<<32), nil) }, "too many elements"},
		{"bad param name", func(b *ir.Builder) { b.Param("0", ir.T(ir.F32), nil) }, "begins with a digit"},
		{"big result", func(b *ir.Builder) {
			x := b.Param("x", ir.T(ir.F32, 50000, 1), nil)
			b.Dot(x, x, nil, nil, []int{1}, []int{1})
		}, "dot: f32[50000,50000] has too many elements"},
		{"big constant", func(b *ir.Builder) { b.Constant(ir.T(ir.F32, 100000, 100000), 0) }, "too many elements"},
		{"negative iota", func(b *ir.Builder) { b.Iota(ir.T(ir.I32, -1), 0) }, "negative dimension"},
		{"i32 range", func(b *ir.Builder) { b.Constant(ir.T(ir.I32), 3e9) }, "3e+09 does not fit i32"},
		{"i64 range", func(b *ir.Builder) { b.Constant(ir.T(ir.I64), 1e30) }, "does not fit i64"},
		{"i64 top", func(b *ir.Builder) { b.Constant(ir.T(ir.I64), 1<<63) }, "does not fit i64"},
		{"i64 inf", func(b *ir.Builder) { b.Constant(ir.T(ir.I64), math.Inf(1)) }, "inf does not fit i64"},
		{"int nan", func(b *ir.Builder) { b.Constant(ir.T(ir.I32), math.NaN()) }, "does not fit i32"},
		{"fraction", func(b *ir.Builder) { b.Constant(ir.T(ir.I64), 0.5) }, "0.5 does not fit i64"},
		{"bool", func(b *ir.Builder) { b.Constant(ir.T(ir.Bool), 2) }, "2.0 does not fit bool"},
		{"i64 exact", func(b *ir.Builder) { b.ConstantInt(ir.T(ir.I64), math.MaxInt64) }, ""},
		{"i32 int", func(b *ir.Builder) { b.ConstantInt(ir.T(ir.I32), math.MaxInt32+1) }, "2147483648 does not fit i32"},
		{"i64 min", func(b *ir.Builder) { b.Constant(ir.T(ir.I64), -1<<63) }, ""},
		{"float inf", func(b *ir.Builder) { b.Constant(ir.T(ir.F16, 2), math.Inf(-1)) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder("f")
			tc.build(b)
			err := b.Err()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("have %v, want %q", err, tc.want)
			case err == nil:
				if verr := b.F.Verify(); verr != nil {
					t.Fatalf("built function does not verify: %v", verr)
				}
			}
		})
	}
}

// TestUnaryTypes checks each class of the unary type rule.
func TestUnaryTypes(t *testing.T) {
	tests := []struct {
		op   ir.Op
		d    ir.DType
		want bool
	}{
		{ir.OpNot, ir.Bool, true}, {ir.OpNot, ir.I32, false}, {ir.OpNot, ir.F32, false},
		{ir.OpStopGradient, ir.Bool, true}, {ir.OpStopGradient, ir.I64, true}, {ir.OpStopGradient, ir.F16, true},
		{ir.OpNeg, ir.I32, true}, {ir.OpAbs, ir.I64, true}, {ir.OpSign, ir.F32, true}, {ir.OpNeg, ir.Bool, false}, {ir.OpSign, ir.Bool, false},
		{ir.OpExp, ir.F64, true}, {ir.OpExp, ir.I32, false}, {ir.OpRsqrt, ir.Bool, false}, {ir.OpErf, ir.BF16, true},
	}
	for _, tc := range tests {
		_, err := ir.Infer(tc.op, []ir.Type{ir.T(tc.d, 2)}, nil, ir.Type{})
		if (err == nil) != tc.want {
			t.Errorf("%v on %v: have error %v, want ok=%v", tc.op, tc.d, err, tc.want)
		}
	}
}

// TestVerifyResultNames checks that Verify refuses result names that would
// not parse back as one name.
func TestVerifyResultNames(t *testing.T) {
	for name, bad := range map[string]bool{"loss": false, "f32": false, "adamw.m.w": false, "_x1": false, "0": true, "a-b": true, ".x": true} {
		b := ir.NewBuilder("f")
		x := b.Param("x", ir.T(ir.F32), nil)
		b.Return([]string{name}, x)
		if err := b.F.Verify(); (err != nil) != bad {
			t.Errorf("result name %q: Verify says %v", name, err)
		}
	}
}

// TestDotOut checks the dot's out attribute: a float type at least as wide
// as the operands' is the result's dtype; anything else is refused.
func TestDotOut(t *testing.T) {
	src := func(in, out, res string) string {
		return "func @f(%a: " + in + "[2,3], %b: " + in + "[3,4]) -> (y: " + res + "[2,4]) {\n  %0 = dot %a, %b {batch=[[],[]], contract=[[1],[0]], out=" + out + "} : " + res + "[2,4]\n  return %0\n}\n"
	}
	check := func(text string) error {
		f, err := ir.ParseFunc(text)
		if err != nil {
			return err
		}
		return f.Verify()
	}
	for _, ok := range [][3]string{{"bf16", "f32", "f32"}, {"f16", "f32", "f32"}, {"f32", "f64", "f64"}, {"bf16", "bf16", "bf16"}} {
		if err := check(src(ok[0], ok[1], ok[2])); err != nil {
			t.Errorf("%s operands, out=%s: %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range [][3]string{{"f32", "bf16", "bf16"}, {"i32", "f32", "f32"}, {"bf16", "i32", "i32"}, {"bf16", "x", "f32"}} {
		if err := check(src(bad[0], bad[1], bad[2])); err == nil || !strings.Contains(err.Error(), "dot: out=") {
			t.Errorf("%s operands, out=%s: %v, want a refusal of out", bad[0], bad[1], err)
		}
	}
}
