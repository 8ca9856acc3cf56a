package backendtest

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

// OpsFunc builds, for dtype d, one function that applies every op of
// ir/op.go that d supports (each instruction is its own kernel) and
// returns every result. It returns the function's text.
func OpsFunc(d ir.DType) string {
	T := func(shape string) string { return d.String() + shape }
	var body, results, names []string
	emit := func(rhs string) string {
		ref := fmt.Sprintf("%%%d", len(body))
		body = append(body, "  "+ref+" = "+rhs)
		ty := rhs[strings.LastIndex(rhs, ": ")+2:]
		names = append(names, fmt.Sprintf("r%d: %s", len(results), ty))
		results = append(results, ref)
		return ref
	}
	isFloat, isBool := d.IsFloat(), d == ir.Bool
	for _, op := range ir.Ops() {
		switch op.Class() {
		case ir.ClassUnary:
			if _, err := ir.Infer(op, []ir.Type{ir.T(d, 3, 4)}, nil, ir.Type{}); err == nil {
				emit(fmt.Sprintf("%v %%x : %s", op, T("[3,4]")))
			}
		case ir.ClassBinary:
			if _, err := ir.Infer(op, []ir.Type{ir.T(d, 3, 4), ir.T(d, 3, 4)}, nil, ir.Type{}); err == nil {
				emit(fmt.Sprintf("%v %%x, %%y : %s", op, T("[3,4]")))
			}
		case ir.ClassCompare:
			emit(fmt.Sprintf("%v %%x, %%y : bool[3,4]", op))
		}
	}
	emit(fmt.Sprintf("select %%p, %%x, %%y : %s", T("[3,4]")))
	for _, to := range []ir.DType{ir.F32, ir.F64, ir.F16, ir.BF16, ir.I32, ir.I64, ir.Bool} {
		if to != d {
			emit(fmt.Sprintf("convert %%x : %v[3,4]", to))
		}
	}
	emit(fmt.Sprintf("broadcast %%v {dims=[1]} : %s", T("[3,4]")))
	emit(fmt.Sprintf("broadcast %%s {dims=[]} : %s", T("[2,3]")))
	emit(fmt.Sprintf("broadcast %%x {dims=[0,2]} : %s", T("[3,2,4]")))
	col := emit(fmt.Sprintf("slice %%x {limit=[3,1], start=[0,0], stride=[1,1]} : %s", T("[3,1]")))
	emit(fmt.Sprintf("broadcast %s {dims=[0,1]} : %s", col, T("[3,4]")))
	b3 := emit(fmt.Sprintf("broadcast %%x {dims=[1,2]} : %s", T("[2,3,4]")))
	emit(fmt.Sprintf("transpose %%x {perm=[1,0]} : %s", T("[4,3]")))
	emit(fmt.Sprintf("transpose %s {perm=[2,0,1]} : %s", b3, T("[4,2,3]")))
	emit(fmt.Sprintf("slice %%x {limit=[3,4], start=[1,0], stride=[1,2]} : %s", T("[2,2]")))
	emit(fmt.Sprintf("slice %%x {limit=[3,4], start=[0,4], stride=[1,1]} : %s", T("[3,0]")))
	emit(fmt.Sprintf("pad %%x {high=[1,0], interior=[1,2], low=[0,2]} : %s", T("[6,12]")))
	emit(fmt.Sprintf("pad %%x {high=[2,1], interior=[0,0], low=[1,0]} : %s", T("[6,5]")))
	emit(fmt.Sprintf("concat %%x, %%y, %%x {axis=0} : %s", T("[9,4]")))
	emit(fmt.Sprintf("concat %%x, %%v2 {axis=1} : %s", T("[3,5]")))
	r := emit(fmt.Sprintf("reshape %%x : %s", T("[12]")))
	r2 := emit(fmt.Sprintf("reshape %s : %s", r, T("[2,6]")))
	emit(fmt.Sprintf("select %%p6, %s, %s : %s", r2, r2, T("[2,6]")))
	emit(fmt.Sprintf("stop_gradient %%x : %s", T("[3,4]")))
	if !isBool {
		emit(fmt.Sprintf("iota {axis=1} : %s", T("[3,4]")))
		emit(fmt.Sprintf("iota {axis=0} : %s", T("[5]")))
		if isFloat {
			emit(fmt.Sprintf("constant {value=-3.0} : %s", T("[2]")))
			emit(fmt.Sprintf("constant {value=2.7} : %s", T("[2,3]")))
		} else {
			emit(fmt.Sprintf("constant {value=-3} : %s", T("[2]")))
			emit(fmt.Sprintf("constant {value=7} : %s", T("[2,3]")))
		}
		for _, op := range []string{"reduce_sum", "reduce_max"} {
			emit(fmt.Sprintf("%s %%x {axes=[1]} : %s", op, T("[3]")))
			emit(fmt.Sprintf("%s %%x {axes=[0]} : %s", op, T("[4]")))
			emit(fmt.Sprintf("%s %%x {axes=[0,1]} : %s", op, T("[]")))
			emit(fmt.Sprintf("%s %s {axes=[0,2]} : %s", op, b3, T("[3]")))
			emit(fmt.Sprintf("%s %%b1 {axes=[]} : %s", op, T("[2,3,4]")))
			// Rows long enough for a GPU block per row.
			emit(fmt.Sprintf("%s %%w {axes=[1]} : %s", op, T("[40]")))
			emit(fmt.Sprintf("%s %%w {axes=[0]} : %s", op, T("[70]")))
			emit(fmt.Sprintf("%s %%w {axes=[0,1]} : %s", op, T("[]")))
		}
		emit(fmt.Sprintf("dot %%x, %%y {batch=[[],[]], contract=[[1],[1]]} : %s", T("[3,3]")))
		emit(fmt.Sprintf("dot %%x, %%x {batch=[[],[]], contract=[[0],[0]]} : %s", T("[4,4]")))
		emit(fmt.Sprintf("dot %%b1, %%b2 {batch=[[0],[0]], contract=[[2],[1]]} : %s", T("[2,3,5]")))
		emit(fmt.Sprintf("dot %%b2, %%b1 {batch=[[0],[0]], contract=[[1],[2]]} : %s", T("[2,5,3]")))
		emit(fmt.Sprintf("dot %%b1, %%x {batch=[[],[]], contract=[[1,2],[0,1]]} : %s", T("[2]")))
		emit(fmt.Sprintf("dot %%v, %%v {batch=[[],[]], contract=[[],[]]} : %s", T("[4,4]")))
		emit(fmt.Sprintf("scatter_add %%u1, %%idx {axis=0} : %s", T("[3,4]")))
		emit(fmt.Sprintf("scatter_add %%u2, %%idx64 {axis=1} : %s", T("[3,4]")))
		// Fewer updates than table rows: accumulators per update row.
		emit(fmt.Sprintf("scatter_add %%u1, %%idx {axis=0} : %s", T("[7,4]")))
		emit(fmt.Sprintf("scatter_add %%u2, %%idx64 {axis=1} : %s", T("[3,9]")))
	} else {
		emit("constant {value=1} : bool[2]")
	}
	emit(fmt.Sprintf("gather %%x, %%idx {axis=0} : %s", T("[5,4]")))
	emit(fmt.Sprintf("gather %%x, %%idx64 {axis=1} : %s", T("[3,2,3]")))
	emit(fmt.Sprintf("gather %%v, %%idx {axis=0} : %s", T("[5]")))
	if isFloat {
		emit(fmt.Sprintf("rng %%key {dist=uniform, stream=7} : %s", T("[13]")))
		emit(fmt.Sprintf("rng %%key {dist=normal, stream=-2} : %s", T("[3,5]")))
		emit(fmt.Sprintf("rng %%key {dist=normal, stream=1} : %s", T("[8]")))
	}
	params := strings.Join([]string{
		"%x: " + T("[3,4]"), "%y: " + T("[3,4]"), "%p: bool[3,4]", "%p6: bool[2,6]", "%s: " + T("[]"),
		"%v: " + T("[4]"), "%v2: " + T("[3,1]"), "%b1: " + T("[2,3,4]"), "%b2: " + T("[2,4,5]"),
		"%u1: " + T("[5,4]"), "%u2: " + T("[3,2,3]"), "%idx: i32[5]", "%idx64: i64[2,3]", "%key: i64[]",
		"%w: " + T("[40,70]"),
	}, ", ")
	return fmt.Sprintf("func @ops_%v(%s) -> (%s) {\n%s\n  return %s\n}\n", d, params, strings.Join(names, ", "), strings.Join(body, "\n"), strings.Join(results, ", "))
}

// Ops runs every op of ir/op.go in every dtype it supports (OpsFunc) on
// the backend and compares the results with the interpreter's on random
// inputs, three draws per dtype.
func Ops(t *testing.T, load Loader) {
	for _, d := range []ir.DType{ir.F32, ir.F64, ir.F16, ir.BF16, ir.I32, ir.I64, ir.Bool} {
		t.Run(d.String(), func(t *testing.T) {
			src := OpsFunc(d)
			f, err := ir.ParseFunc(src)
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			exe := load(t, f)
			r := rand.New(rand.NewSource(int64(d)))
			for trial := 0; trial < 3; trial++ {
				args := make([]*interp.Tensor, len(f.Params))
				for i, p := range f.Params {
					lo, hi := int64(-5), int64(5)
					if strings.HasPrefix(p.Name, "idx") {
						lo, hi = -1, 4 // out of range on both sides: clamped
					}
					if p.Name == "key" {
						lo, hi = -1<<40, 1<<40
					}
					args[i] = RandomTensor(r, p.Type, lo, hi)
				}
				want, err := interp.Run(f, args)
				if err != nil {
					t.Fatalf("interp: %v", err)
				}
				got, err := exe.Run(args)
				if err != nil {
					t.Fatalf("@%s: %v", f.Name, err)
				}
				for i, res := range f.Results {
					if msg := Diff(got[i], want[i], Tolerance(res.Type.DType)); msg != "" {
						t.Errorf("%s = %s: %s", f.ResultNames[i], InstrText(f, res), msg)
					}
				}
			}
		})
	}
}

// SpecialValues checks the edge cases of the element semantics: NaN,
// infinities, signed zeros, integer division by 0 and -1, saturating
// conversions, rounding ties of f16 and bf16.
func SpecialValues(t *testing.T, load Loader) {
	nan, inf := math.NaN(), math.Inf(1)
	fx := []float64{nan, inf, -inf, math.Copysign(0, -1), 0, 1, -1, 1e30, -1e30, 2.5, -2.5, 0.5, 65520, 1e-8, 3e9, -3e9}
	fy := []float64{0, 1, nan, 0, math.Copysign(0, -1), nan, inf, -1, 1, -0.5, 2, 3, 1, 1, 7, -7}
	ix := []int64{math.MinInt32, math.MaxInt32, 7, -7, 0, 5, -5, 1, 2, 3, 4, -4, 100, -100, 9, 0}
	iy := []int64{-1, -1, 0, 2, 0, -1, 2, 3, 0, 1, -3, -1, 7, 7, 0, 1}
	body := []string{}
	add := func(s string) { body = append(body, fmt.Sprintf("  %%%d = %s", len(body), s)) }
	for _, d := range []string{"f32", "f64", "f16", "bf16"} {
		add(fmt.Sprintf("convert %%fx : %s[16]", d))
		x := len(body) - 1
		add(fmt.Sprintf("convert %%fy : %s[16]", d))
		y := len(body) - 1
		for _, op := range []string{"max", "min", "div", "add", "pow", "sub"} {
			add(fmt.Sprintf("%s %%%d, %%%d : %s[16]", op, x, y, d))
		}
		for _, op := range []string{"sign", "abs", "recip", "rsqrt", "exp", "log", "neg"} {
			add(fmt.Sprintf("%s %%%d : %s[16]", op, x, d))
		}
		for _, op := range []string{"eq", "ne", "lt", "ge"} {
			add(fmt.Sprintf("%s %%%d, %%%d : bool[16]", op, x, y))
		}
		for _, to := range []string{"i32", "i64", "bool", "f16", "bf16", "f32"} {
			add(fmt.Sprintf("convert %%%d : %s[16]", x, to))
		}
	}
	for _, d := range []string{"i32", "i64"} {
		add(fmt.Sprintf("convert %%ix : %s[16]", d))
		x := len(body) - 1
		add(fmt.Sprintf("convert %%iy : %s[16]", d))
		y := len(body) - 1
		for _, op := range []string{"div", "mul", "add", "sub", "max", "min"} {
			add(fmt.Sprintf("%s %%%d, %%%d : %s[16]", op, x, y, d))
		}
		for _, op := range []string{"neg", "abs", "sign"} {
			add(fmt.Sprintf("%s %%%d : %s[16]", op, x, d))
		}
		for _, to := range []string{"f16", "bf16", "f32", "f64", "bool", "i32"} {
			add(fmt.Sprintf("convert %%%d : %s[16]", x, to))
		}
	}
	var res, names []string
	for i, l := range body {
		res = append(res, fmt.Sprintf("%%%d", i))
		names = append(names, fmt.Sprintf("r%d: %s", i, l[strings.LastIndex(l, ": ")+2:]))
	}
	src := fmt.Sprintf("func @special(%%fx: f64[16], %%fy: f64[16], %%ix: i64[16], %%iy: i64[16]) -> (%s) {\n%s\n  return %s\n}\n",
		strings.Join(names, ", "), strings.Join(body, "\n"), strings.Join(res, ", "))
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	args := []*interp.Tensor{
		interp.FromFloats(ir.T(ir.F64, 16), fx), interp.FromFloats(ir.T(ir.F64, 16), fy),
		interp.FromInts(ir.T(ir.I64, 16), ix), interp.FromInts(ir.T(ir.I64, 16), iy),
	}
	want, got := RunBoth(t, load, f, args)
	for i, r := range f.Results {
		if msg := Diff(got[i], want[i], Tolerance(r.Type.DType)); msg != "" {
			t.Errorf("%s: %s", InstrText(f, r), msg)
		}
	}
	// Signed zeros: max(-0, +0) = +0, min(+0, -0) = -0, neg 0 = -0.
	for i, r := range f.Results {
		if !r.Type.DType.IsFloat() {
			continue
		}
		for j := range want[i].F {
			if w, g := want[i].F[j], got[i].F[j]; w == 0 && g == 0 && math.Signbit(w) != math.Signbit(g) {
				t.Errorf("%s: element %d: got %v, want %v", InstrText(f, r), j, g, w)
			}
		}
	}
}
