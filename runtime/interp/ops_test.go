package interp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"xlc/ir"
)

// typ parses a type such as "f32[2,3]".
func typ(s string) ir.Type {
	name, dims, _ := strings.Cut(strings.TrimSuffix(s, "]"), "[")
	d, ok := ir.ParseDType(name)
	if !ok {
		panic("bad dtype in " + s)
	}
	shape := ir.Shape{}
	for _, f := range strings.Split(dims, ",") {
		if f != "" {
			n, err := strconv.Atoi(f)
			if err != nil {
				panic(err)
			}
			shape = append(shape, n)
		}
	}
	return ir.Type{DType: d, Shape: shape}
}

// ten makes a tensor of the type named by s holding v.
func ten(s string, v ...float64) *Tensor { return FromFloats(typ(s), v) }

// runText parses a function with the given parameters and body (one
// instruction a line, the last one returned) and runs it on args.
func runText(params, body, result string, args ...*Tensor) ([]*Tensor, error) {
	lines := strings.Split(strings.TrimSpace(body), "\n")
	src := fmt.Sprintf("func @f(%s) -> (%s) {\n%s\n  return %%%d\n}\n", params, result, body, len(lines)-1)
	f, err := ir.ParseFunc(src)
	if err != nil {
		return nil, fmt.Errorf("parse: %v\n%s", err, src)
	}
	return Run(f, args)
}

func checkTensor(t *testing.T, name string, got, want *Tensor) {
	t.Helper()
	if !got.Type.Equal(want.Type) {
		t.Errorf("%s: type %v, want %v", name, got.Type, want.Type)
		return
	}
	if err := got.Check(want.Type); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for i := range got.Len() {
		if !same(got.At(i), want.At(i)) && !(got.At(i) == 0 && want.At(i) == 0) {
			t.Errorf("%s: got %v, want %v", name, got, want)
			return
		}
	}
}

var (
	inf = math.Inf(1)
	nan = math.NaN()
)

func f32(x float64) float64 { return float64(float32(x)) }

// TestOps runs every op on small hand-computed cases.
func TestOps(t *testing.T) {
	x4 := ten("f32[4]", -2, 0, 0.25, 4)
	pos := ten("f32[4]", 4, 0.25, 1, 2.25)
	m23 := ten("f32[2,3]", 1, 2, 3, 4, 5, 6)
	tests := []struct {
		name, params, body string
		args               []*Tensor
		want               *Tensor
	}{
		{"neg", "%x: f32[4]", "%0 = neg %x : f32[4]", []*Tensor{x4}, ten("f32[4]", 2, 0, -0.25, -4)},
		{"abs", "%x: f32[4]", "%0 = abs %x : f32[4]", []*Tensor{x4}, ten("f32[4]", 2, 0, 0.25, 4)},
		{"sign", "%x: f32[4]", "%0 = sign %x : f32[4]", []*Tensor{x4}, ten("f32[4]", -1, 0, 1, 1)},
		{"recip", "%x: f32[4]", "%0 = recip %x : f32[4]", []*Tensor{x4}, ten("f32[4]", -0.5, inf, 4, 0.25)},
		{"sqrt", "%x: f32[4]", "%0 = sqrt %x : f32[4]", []*Tensor{pos}, ten("f32[4]", 2, 0.5, 1, 1.5)},
		{"rsqrt", "%x: f32[4]", "%0 = rsqrt %x : f32[4]", []*Tensor{pos}, ten("f32[4]", 0.5, 2, 1, f32(1/1.5))},
		{"exp", "%x: f32[4]", "%0 = exp %x : f32[4]", []*Tensor{x4}, ten("f32[4]", f32(math.Exp(-2)), 1, f32(math.Exp(0.25)), f32(math.Exp(4)))},
		{"log", "%x: f32[4]", "%0 = log %x : f32[4]", []*Tensor{x4}, ten("f32[4]", nan, -inf, f32(math.Log(0.25)), f32(math.Log(4)))},
		{"tanh", "%x: f64[4]", "%0 = tanh %x : f64[4]", []*Tensor{ten("f64[4]", -2, 0, 0.25, 4)}, ten("f64[4]", math.Tanh(-2), 0, math.Tanh(0.25), math.Tanh(4))},
		{"erf", "%x: f32[4]", "%0 = erf %x : f32[4]", []*Tensor{x4}, ten("f32[4]", f32(math.Erf(-2)), 0, f32(math.Erf(0.25)), f32(math.Erf(4)))},
		{"sin", "%x: f32[4]", "%0 = sin %x : f32[4]", []*Tensor{x4}, ten("f32[4]", f32(math.Sin(-2)), 0, f32(math.Sin(0.25)), f32(math.Sin(4)))},
		{"cos", "%x: f32[4]", "%0 = cos %x : f32[4]", []*Tensor{x4}, ten("f32[4]", f32(math.Cos(-2)), 1, f32(math.Cos(0.25)), f32(math.Cos(4)))},
		{"stop_gradient", "%x: f32[4]", "%0 = stop_gradient %x : f32[4]", []*Tensor{x4}, x4},
		{"exp f16 overflow", "%x: f16[2]", "%0 = exp %x : f16[2]", []*Tensor{ten("f16[2]", 11, 12)}, ten("f16[2]", 59872, inf)},
		{"not", "%x: bool[2]", "%0 = not %x : bool[2]", []*Tensor{ten("bool[2]", 1, 0)}, ten("bool[2]", 0, 1)},
		{"neg i32 wraps", "%x: i32[2]", "%0 = neg %x : i32[2]", []*Tensor{ten("i32[2]", math.MinInt32, 5)}, ten("i32[2]", math.MinInt32, -5)},
		{"abs i32", "%x: i32[2]", "%0 = abs %x : i32[2]", []*Tensor{ten("i32[2]", -3, 3)}, ten("i32[2]", 3, 3)},
		{"sign i64", "%x: i64[3]", "%0 = sign %x : i64[3]", []*Tensor{ten("i64[3]", -5, 0, 7)}, ten("i64[3]", -1, 0, 1)},

		{"add", "%x: f32[2], %y: f32[2]", "%0 = add %x, %y : f32[2]", []*Tensor{ten("f32[2]", 1, 0.1), ten("f32[2]", 2, 0.2)}, ten("f32[2]", 3, f32(f32(0.1)+f32(0.2)))},
		{"add f16 tie", "%x: f16[1], %y: f16[1]", "%0 = add %x, %y : f16[1]", []*Tensor{ten("f16[1]", 2048), ten("f16[1]", 1)}, ten("f16[1]", 2048)},
		{"add bf16", "%x: bf16[1], %y: bf16[1]", "%0 = add %x, %y : bf16[1]", []*Tensor{ten("bf16[1]", 256), ten("bf16[1]", 1)}, ten("bf16[1]", 256)},
		{"add i32 wraps", "%x: i32[1], %y: i32[1]", "%0 = add %x, %y : i32[1]", []*Tensor{ten("i32[1]", math.MaxInt32), ten("i32[1]", 1)}, ten("i32[1]", math.MinInt32)},
		{"sub", "%x: f32[2], %y: f32[2]", "%0 = sub %x, %y : f32[2]", []*Tensor{ten("f32[2]", 1, 5), ten("f32[2]", 2, 0.5)}, ten("f32[2]", -1, 4.5)},
		{"mul", "%x: i64[2], %y: i64[2]", "%0 = mul %x, %y : i64[2]", []*Tensor{ten("i64[2]", 3, -4), ten("i64[2]", 5, 6)}, ten("i64[2]", 15, -24)},
		{"div", "%x: f32[3], %y: f32[3]", "%0 = div %x, %y : f32[3]", []*Tensor{ten("f32[3]", 1, 1, 0), ten("f32[3]", 4, 0, 0)}, ten("f32[3]", 0.25, inf, nan)},
		{"div i32", "%x: i32[4], %y: i32[4]", "%0 = div %x, %y : i32[4]", []*Tensor{ten("i32[4]", 7, -7, 5, math.MinInt32), ten("i32[4]", 2, 2, 0, -1)}, ten("i32[4]", 3, -3, 0, math.MinInt32)},
		{"max", "%x: f32[3], %y: f32[3]", "%0 = max %x, %y : f32[3]", []*Tensor{ten("f32[3]", 1, nan, 3), ten("f32[3]", 2, 0, -1)}, ten("f32[3]", 2, nan, 3)},
		{"min", "%x: f32[3], %y: f32[3]", "%0 = min %x, %y : f32[3]", []*Tensor{ten("f32[3]", 1, nan, 3), ten("f32[3]", 2, 0, -1)}, ten("f32[3]", 1, nan, -1)},
		{"max i32", "%x: i32[2], %y: i32[2]", "%0 = max %x, %y : i32[2]", []*Tensor{ten("i32[2]", 1, 5), ten("i32[2]", 2, -1)}, ten("i32[2]", 2, 5)},
		{"min i32", "%x: i32[2], %y: i32[2]", "%0 = min %x, %y : i32[2]", []*Tensor{ten("i32[2]", 1, 5), ten("i32[2]", 2, -1)}, ten("i32[2]", 1, -1)},
		{"pow", "%x: f32[3], %y: f32[3]", "%0 = pow %x, %y : f32[3]", []*Tensor{ten("f32[3]", 2, 9, 0), ten("f32[3]", 3, 0.5, 0)}, ten("f32[3]", 8, 3, 1)},
		{"and", "%x: bool[4], %y: bool[4]", "%0 = and %x, %y : bool[4]", []*Tensor{ten("bool[4]", 0, 0, 1, 1), ten("bool[4]", 0, 1, 0, 1)}, ten("bool[4]", 0, 0, 0, 1)},
		{"or", "%x: bool[4], %y: bool[4]", "%0 = or %x, %y : bool[4]", []*Tensor{ten("bool[4]", 0, 0, 1, 1), ten("bool[4]", 0, 1, 0, 1)}, ten("bool[4]", 0, 1, 1, 1)},

		{"eq", "%x: f32[3], %y: f32[3]", "%0 = eq %x, %y : bool[3]", []*Tensor{ten("f32[3]", 1, 2, nan), ten("f32[3]", 2, 2, nan)}, ten("bool[3]", 0, 1, 0)},
		{"ne", "%x: f32[3], %y: f32[3]", "%0 = ne %x, %y : bool[3]", []*Tensor{ten("f32[3]", 1, 2, nan), ten("f32[3]", 2, 2, nan)}, ten("bool[3]", 1, 0, 1)},
		{"lt", "%x: f32[3], %y: f32[3]", "%0 = lt %x, %y : bool[3]", []*Tensor{ten("f32[3]", 1, 2, nan), ten("f32[3]", 2, 2, 1)}, ten("bool[3]", 1, 0, 0)},
		{"le", "%x: f32[3], %y: f32[3]", "%0 = le %x, %y : bool[3]", []*Tensor{ten("f32[3]", 1, 2, nan), ten("f32[3]", 2, 2, 1)}, ten("bool[3]", 1, 1, 0)},
		{"gt", "%x: i32[3], %y: i32[3]", "%0 = gt %x, %y : bool[3]", []*Tensor{ten("i32[3]", 1, 2, 3), ten("i32[3]", 2, 2, 1)}, ten("bool[3]", 0, 0, 1)},
		{"ge", "%x: i32[3], %y: i32[3]", "%0 = ge %x, %y : bool[3]", []*Tensor{ten("i32[3]", 1, 2, 3), ten("i32[3]", 2, 2, 1)}, ten("bool[3]", 0, 1, 1)},
		{"eq bool", "%x: bool[2], %y: bool[2]", "%0 = eq %x, %y : bool[2]", []*Tensor{ten("bool[2]", 1, 0), ten("bool[2]", 1, 1)}, ten("bool[2]", 1, 0)},

		{"select", "%p: bool[3], %x: f32[3], %y: f32[3]", "%0 = select %p, %x, %y : f32[3]", []*Tensor{ten("bool[3]", 1, 0, 1), ten("f32[3]", 1, 2, 3), ten("f32[3]", 4, 5, 6)}, ten("f32[3]", 1, 5, 3)},
		{"select i32", "%p: bool[2], %x: i32[2], %y: i32[2]", "%0 = select %p, %x, %y : i32[2]", []*Tensor{ten("bool[2]", 0, 1), ten("i32[2]", 1, 2), ten("i32[2]", 4, 5)}, ten("i32[2]", 4, 2)},
		{"convert f32 to i32", "%x: f32[5]", "%0 = convert %x : i32[5]", []*Tensor{ten("f32[5]", 2.7, -2.7, nan, 1e10, -0.5)}, ten("i32[5]", 2, -2, 0, math.MaxInt32, 0)},
		{"convert i32 to bool", "%x: i32[3]", "%0 = convert %x : bool[3]", []*Tensor{ten("i32[3]", 0, 3, -1)}, ten("bool[3]", 0, 1, 1)},
		{"convert bool to f32", "%x: bool[2]", "%0 = convert %x : f32[2]", []*Tensor{ten("bool[2]", 1, 0)}, ten("f32[2]", 1, 0)},
		{"convert f32 to f16", "%x: f32[2]", "%0 = convert %x : f16[2]", []*Tensor{ten("f32[2]", 0.1, 70000)}, ten("f16[2]", 0.0999755859375, inf)},
		{"convert f32 to bool", "%x: f32[3]", "%0 = convert %x : bool[3]", []*Tensor{ten("f32[3]", 0, -0.5, nan)}, ten("bool[3]", 0, 1, 1)},
		{"convert i64 to i32", "%x: i64[2]", "%0 = convert %x : i32[2]", []*Tensor{FromInts(typ("i64[2]"), []int64{1<<32 + 1, -1})}, ten("i32[2]", 1, -1)},
		{"convert i32 to f16", "%x: i32[2]", "%0 = convert %x : f16[2]", []*Tensor{ten("i32[2]", 2049, 100000)}, ten("f16[2]", 2048, inf)},

		{"broadcast row", "%x: f32[3]", "%0 = broadcast %x {dims=[1]} : f32[2,3]", []*Tensor{ten("f32[3]", 1, 2, 3)}, ten("f32[2,3]", 1, 2, 3, 1, 2, 3)},
		{"broadcast column", "%x: f32[2]", "%0 = broadcast %x {dims=[0]} : f32[2,3]", []*Tensor{ten("f32[2]", 1, 2)}, ten("f32[2,3]", 1, 1, 1, 2, 2, 2)},
		{"broadcast size 1", "%x: f32[2,1]", "%0 = broadcast %x {dims=[0,2]} : f32[2,2,3]", []*Tensor{ten("f32[2,1]", 1, 2)}, ten("f32[2,2,3]", 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2)},
		{"broadcast scalar", "%x: i32[]", "%0 = broadcast %x {dims=[]} : i32[3]", []*Tensor{ten("i32[]", 7)}, ten("i32[3]", 7, 7, 7)},
		{"reshape", "%x: f32[2,3]", "%0 = reshape %x : f32[3,2]", []*Tensor{m23}, ten("f32[3,2]", 1, 2, 3, 4, 5, 6)},
		{"transpose", "%x: f32[2,3]", "%0 = transpose %x {perm=[1,0]} : f32[3,2]", []*Tensor{m23}, ten("f32[3,2]", 1, 4, 2, 5, 3, 6)},
		{"transpose 3d", "%x: i32[2,2,2]", "%0 = transpose %x {perm=[2,0,1]} : i32[2,2,2]", []*Tensor{ten("i32[2,2,2]", 0, 1, 2, 3, 4, 5, 6, 7)}, ten("i32[2,2,2]", 0, 2, 4, 6, 1, 3, 5, 7)},
		{"slice stride", "%x: f32[6]", "%0 = slice %x {limit=[6], start=[1], stride=[2]} : f32[3]", []*Tensor{ten("f32[6]", 1, 2, 3, 4, 5, 6)}, ten("f32[3]", 2, 4, 6)},
		{"slice 2d", "%x: f32[2,3]", "%0 = slice %x {limit=[2,3], start=[0,1], stride=[1,1]} : f32[2,2]", []*Tensor{m23}, ten("f32[2,2]", 2, 3, 5, 6)},
		{"slice empty", "%x: f32[2,3]", "%0 = slice %x {limit=[2,3], start=[0,3], stride=[1,1]} : f32[2,0]", []*Tensor{m23}, ten("f32[2,0]")},
		{"concat axis 1", "%x: f32[2,1], %y: f32[2,2]", "%0 = concat %x, %y {axis=1} : f32[2,3]", []*Tensor{ten("f32[2,1]", 1, 2), ten("f32[2,2]", 3, 4, 5, 6)}, ten("f32[2,3]", 1, 3, 4, 2, 5, 6)},
		{"concat axis 0", "%x: i32[1,2], %y: i32[2,2]", "%0 = concat %x, %y, %x {axis=0} : i32[4,2]", []*Tensor{ten("i32[1,2]", 1, 2), ten("i32[2,2]", 3, 4, 5, 6)}, ten("i32[4,2]", 1, 2, 3, 4, 5, 6, 1, 2)},
		{"iota axis 1", "", "%0 = iota {axis=1} : i32[2,3]", nil, ten("i32[2,3]", 0, 1, 2, 0, 1, 2)},
		{"iota axis 0", "", "%0 = iota {axis=0} : f32[2,3]", nil, ten("f32[2,3]", 0, 0, 0, 1, 1, 1)},
		{"iota f16 rounds", "", "%0 = iota {axis=0} : f16[2051]", nil, FromFloats(typ("f16[2051]"), func() []float64 {
			v := make([]float64, 2051)
			for i := range v {
				v[i] = float64(i)
			}
			v[2049] = 2048
			return v
		}())},
		{"constant f32", "", "%0 = constant {value=0.1} : f32[2]", nil, ten("f32[2]", f32(0.1), f32(0.1))},
		{"constant -inf", "", "%0 = constant {value=-inf} : f16[]", nil, ten("f16[]", -inf)},
		{"constant bf16", "", "%0 = constant {value=3.0} : bf16[]", nil, ten("bf16[]", 3)},
		{"constant i32", "", "%0 = constant {value=-3} : i32[]", nil, ten("i32[]", -3)},
		{"constant bool", "", "%0 = constant {value=1} : bool[2]", nil, ten("bool[2]", 1, 1)},

		{"reduce_sum rows", "%x: f32[2,3]", "%0 = reduce_sum %x {axes=[1]} : f32[2]", []*Tensor{m23}, ten("f32[2]", 6, 15)},
		{"reduce_sum cols", "%x: f32[2,3]", "%0 = reduce_sum %x {axes=[0]} : f32[3]", []*Tensor{m23}, ten("f32[3]", 5, 7, 9)},
		{"reduce_sum all", "%x: f32[2,3]", "%0 = reduce_sum %x {axes=[0,1]} : f32[]", []*Tensor{m23}, ten("f32[]", 21)},
		{"reduce_sum none", "%x: f32[2,3]", "%0 = reduce_sum %x {axes=[]} : f32[2,3]", []*Tensor{m23}, m23},
		{"reduce_sum f64 accumulation", "%x: f32[3]", "%0 = reduce_sum %x {axes=[0]} : f32[]", []*Tensor{ten("f32[3]", 16777216, 1, 1)}, ten("f32[]", 16777218)},
		{"reduce_sum i32 wraps", "%x: i32[2]", "%0 = reduce_sum %x {axes=[0]} : i32[]", []*Tensor{ten("i32[2]", math.MaxInt32, 1)}, ten("i32[]", math.MinInt32)},
		{"reduce_sum middle axis", "%x: i32[2,2,2]", "%0 = reduce_sum %x {axes=[1]} : i32[2,2]", []*Tensor{ten("i32[2,2,2]", 0, 1, 2, 3, 4, 5, 6, 7)}, ten("i32[2,2]", 2, 4, 10, 12)},
		{"reduce_max rows", "%x: f32[2,3]", "%0 = reduce_max %x {axes=[1]} : f32[2]", []*Tensor{ten("f32[2,3]", 1, 5, 3, -4, -5, -6)}, ten("f32[2]", 5, -4)},
		{"reduce_max nan", "%x: f32[3]", "%0 = reduce_max %x {axes=[0]} : f32[]", []*Tensor{ten("f32[3]", 1, nan, 3)}, ten("f32[]", nan)},
		{"reduce_max empty", "%x: f32[2,0]", "%0 = reduce_max %x {axes=[1]} : f32[2]", []*Tensor{ten("f32[2,0]")}, ten("f32[2]", -inf, -inf)},
		{"reduce_max empty i32", "%x: i32[0]", "%0 = reduce_max %x {axes=[0]} : i32[]", []*Tensor{ten("i32[0]")}, ten("i32[]", math.MinInt32)},
		{"reduce_sum empty", "%x: f32[0,2]", "%0 = reduce_sum %x {axes=[0]} : f32[2]", []*Tensor{ten("f32[0,2]")}, ten("f32[2]", 0, 0)},

		{"dot matmul", "%x: f32[2,3], %y: f32[3,2]", "%0 = dot %x, %y {batch=[[],[]], contract=[[1],[0]]} : f32[2,2]", []*Tensor{m23, ten("f32[3,2]", 1, 0, 0, 1, 1, 1)}, ten("f32[2,2]", 4, 5, 10, 11)},
		{"dot transposed rhs", "%x: f32[2,3], %y: f32[2,3]", "%0 = dot %x, %y {batch=[[],[]], contract=[[1],[1]]} : f32[2,2]", []*Tensor{m23, m23}, ten("f32[2,2]", 14, 32, 32, 77)},
		{"dot vector", "%x: i32[3], %y: i32[3]", "%0 = dot %x, %y {batch=[[],[]], contract=[[0],[0]]} : i32[]", []*Tensor{ten("i32[3]", 1, 2, 3), ten("i32[3]", 4, 5, 6)}, ten("i32[]", 32)},
		{"dot outer", "%x: f32[2], %y: f32[3]", "%0 = dot %x, %y {batch=[[],[]], contract=[[],[]]} : f32[2,3]", []*Tensor{ten("f32[2]", 1, 2), ten("f32[3]", 1, 2, 3)}, ten("f32[2,3]", 1, 2, 3, 2, 4, 6)},
		{"dot batch", "%x: f32[2,1,2], %y: f32[2,2]", "%0 = dot %x, %y {batch=[[0],[0]], contract=[[2],[1]]} : f32[2,1]", []*Tensor{ten("f32[2,1,2]", 1, 2, 3, 4), ten("f32[2,2]", 1, 1, 1, -1)}, ten("f32[2,1]", 3, -1)},
		{"dot f64 accumulation", "%x: f32[3], %y: f32[3]", "%0 = dot %x, %y {batch=[[],[]], contract=[[0],[0]]} : f32[]", []*Tensor{ten("f32[3]", 16777216, 1, 1), ten("f32[3]", 1, 1, 1)}, ten("f32[]", 16777218)},

		{"gather rows", "%t: f32[3,2], %i: i32[2]", "%0 = gather %t, %i {axis=0} : f32[2,2]", []*Tensor{ten("f32[3,2]", 1, 2, 3, 4, 5, 6), ten("i32[2]", 2, 0)}, ten("f32[2,2]", 5, 6, 1, 2)},
		{"gather clamps", "%t: f32[3,2], %i: i64[2]", "%0 = gather %t, %i {axis=0} : f32[2,2]", []*Tensor{ten("f32[3,2]", 1, 2, 3, 4, 5, 6), ten("i64[2]", -1, 7)}, ten("f32[2,2]", 1, 2, 5, 6)},
		{"gather axis 1", "%t: f32[2,3], %i: i32[2,1]", "%0 = gather %t, %i {axis=1} : f32[2,2,1]", []*Tensor{m23, ten("i32[2,1]", 2, 1)}, ten("f32[2,2,1]", 3, 2, 6, 5)},
		{"gather scalar index", "%t: i32[3], %i: i32[]", "%0 = gather %t, %i {axis=0} : i32[]", []*Tensor{ten("i32[3]", 7, 8, 9), ten("i32[]", 1)}, ten("i32[]", 8)},
		{"scatter_add", "%u: f32[3,2], %i: i32[3]", "%0 = scatter_add %u, %i {axis=0} : f32[3,2]", []*Tensor{ten("f32[3,2]", 1, 2, 3, 4, 5, 6), ten("i32[3]", 0, 2, 0)}, ten("f32[3,2]", 6, 8, 0, 0, 3, 4)},
		{"scatter_add clamps", "%u: f32[2], %i: i32[2]", "%0 = scatter_add %u, %i {axis=0} : f32[3]", []*Tensor{ten("f32[2]", 1, 2), ten("i32[2]", -5, 9)}, ten("f32[3]", 1, 0, 2)},
		{"scatter_add axis 1", "%u: f32[2,2], %i: i32[2]", "%0 = scatter_add %u, %i {axis=1} : f32[2,3]", []*Tensor{ten("f32[2,2]", 1, 2, 3, 4), ten("i32[2]", 1, 1)}, ten("f32[2,3]", 0, 3, 0, 0, 7, 0)},

		{"rng uniform", "%k: i64[]", "%0 = rng %k {dist=uniform, stream=3} : f64[5]", []*Tensor{ten("i64[]", 42)}, ten("f64[5]", Uniform(42, 3, 5)...)},
		{"rng normal", "%k: i64[]", "%0 = rng %k {dist=normal, stream=0} : f32[2,3]", []*Tensor{ten("i64[]", -1)}, ten("f32[2,3]", Normal(math.MaxUint64, 0, 6)...)},

		{"chain", "%x: f32[2,3]", "%0 = exp %x : f32[2,3]\n%1 = reduce_sum %0 {axes=[1]} : f32[2]\n%2 = log %1 : f32[2]",
			[]*Tensor{ten("f32[2,3]", 0, 0, 0, 1, 1, 1)}, ten("f32[2]", f32(math.Log(3)), f32(1+math.Log(3)))},
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

// TestRngUniformStaysBelowOne checks that uniform values never round up to 1
// in a narrow dtype.
func TestRngUniformStaysBelowOne(t *testing.T) {
	for _, d := range []string{"f16", "bf16", "f32"} {
		ty := d + "[20000]"
		res, err := runText("%k: i64[]", "%0 = rng %k {dist=uniform, stream=1} : "+ty, ty, ten("i64[]", 5))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range res[0].F {
			if v < 0 || v >= 1 {
				t.Fatalf("%s: element %d = %v", d, i, v)
			}
		}
	}
}

// TestRunErrors checks that bad calls give errors, not panics.
func TestRunErrors(t *testing.T) {
	good, err := ir.ParseFunc("func @f(%x: f32[2]) -> (f32[2]) {\n  %0 = neg %x : f32[2]\n  return %0\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	bad := &ir.Func{Name: "bad", Params: good.Params, Body: []*ir.Value{{Op: ir.OpNeg, Args: good.Params, Type: typ("f32[3]")}}}
	bad.Results = bad.Body
	tests := []struct {
		name string
		f    *ir.Func
		args []*Tensor
		want string
	}{
		{"nil func", nil, nil, "nil function"},
		{"no args", good, nil, "takes 1 arguments, have 0"},
		{"nil arg", good, []*Tensor{nil}, "nil tensor"},
		{"wrong type", good, []*Tensor{ten("f32[3]", 1, 2, 3)}, "have f32[3], want f32[2]"},
		{"wrong dtype", good, []*Tensor{ten("f64[2]", 1, 2)}, "have f64[2], want f32[2]"},
		{"bad storage", good, []*Tensor{{Type: typ("f32[2]"), F: []float64{1}}}, "want 2 float"},
		{"unverified", bad, []*Tensor{ten("f32[2]", 1, 2)}, "want f32[2], have f32[3]"},
	}
	for _, tc := range tests {
		_, err := Run(tc.f, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	res, err := Run(good, []*Tensor{ten("f32[2]", 1, 2)})
	if err != nil || res[0].F[0] != -1 {
		t.Errorf("good call: %v, %v", res, err)
	}
}

// TestRunReturnsParams checks that a returned parameter is a copy.
func TestRunReturnsParams(t *testing.T) {
	f, err := ir.ParseFunc("func @f(%x: f32[2]) -> (f32[2], f32[2]) {\n  %0 = neg %x : f32[2]\n  return %x, %0\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	x := ten("f32[2]", 1, 2)
	res, err := Run(f, []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	res[0].F[0] = 9
	if x.F[0] != 1 || res[1].F[0] != -1 {
		t.Errorf("results alias arguments: x=%v res=%v", x, res)
	}
}
