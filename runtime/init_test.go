package runtime

import (
	"maps"
	"math"
	"os"
	"strings"
	"testing"

	"xlc/ir"
	"xlc/runtime/interp"
)

func parse(t *testing.T, params string) *ir.Func {
	t.Helper()
	f, err := ir.ParseFunc("func @f(" + params + ") -> () {\n  return\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func moments(v []float64) (mean, std, maxAbs float64) {
	for _, x := range v {
		mean += x
		maxAbs = math.Max(maxAbs, math.Abs(x))
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v))), maxAbs
}

// TestInitParamsStd checks each init's spread on a 256x256 parameter.
func TestInitParamsStd(t *testing.T) {
	f := parse(t, "%n: f32[256,256] {init=normal, role=param, scale=0.02}, "+
		"%xn: f32[256,256] {init=xavier_normal, role=param, scale=2.0}, "+
		"%xu: f32[256,256] {init=xavier_uniform, role=param}, "+
		"%xu3: f64[4,64,128] {init=xavier_uniform, role=param}, "+
		"%z: f32[3] {init=zeros, role=param}, %o: bf16[3] {init=ones, role=param}, "+
		"%c: f16[2] {init=constant, role=param, scale=0.1}, %ci: i32[2] {init=constant, role=param, scale=7}, "+
		"%x: f32[4]")
	ps, err := InitParams(f, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ps["x"]; ok || len(ps) != 8 {
		t.Fatalf("InitParams made %d tensors (input included: %v)", len(ps), ok)
	}
	tests := []struct {
		name      string
		std, mean float64
		bound     float64 // 0: none
	}{
		{"n", 0.02, 0, 0},
		{"xn", 2 * math.Sqrt(2.0/512), 0, 0},
		{"xu", math.Sqrt(6.0/512) / math.Sqrt(3), 0, math.Sqrt(6.0 / 512)},
		{"xu3", math.Sqrt(6.0/384) / math.Sqrt(3), 0, math.Sqrt(6.0 / 384)},
	}
	for _, tc := range tests {
		p := ps[tc.name]
		if !p.Type.Equal(f.Param(tc.name).Type) {
			t.Errorf("%s: type %v", tc.name, p.Type)
		}
		mean, std, maxAbs := moments(p.F)
		if math.Abs(std-tc.std) > 0.05*tc.std || math.Abs(mean) > 0.05*tc.std {
			t.Errorf("%s: mean %v std %v, want 0 and %v", tc.name, mean, std, tc.std)
		}
		if tc.bound != 0 && maxAbs > tc.bound {
			t.Errorf("%s: max |x| %v beyond bound %v", tc.name, maxAbs, tc.bound)
		}
	}
	for name, want := range map[string]float64{"z": 0, "o": 1, "c": interp.RoundF16(0.1), "ci": 7} {
		for i := range ps[name].Len() {
			if got := ps[name].At(i); got != want {
				t.Errorf("%s[%d] = %v, want %v", name, i, got, want)
			}
		}
	}
}

// TestInitParamsDeterminism checks that values depend on the seed and the
// name only: adding a parameter leaves the others unchanged.
func TestInitParamsDeterminism(t *testing.T) {
	f1 := parse(t, "%a: f32[8,8] {init=normal, role=param, scale=1.0}, %b: f32[8,8] {init=normal, role=param, scale=1.0}")
	f2 := parse(t, "%new: f32[8,8] {init=normal, role=param, scale=1.0}, %a: f32[8,8] {init=normal, role=param, scale=1.0}")
	p1, err := InitParams(f1, 5)
	if err != nil {
		t.Fatal(err)
	}
	p1again, _ := InitParams(f1, 5)
	p2, _ := InitParams(f2, 5)
	p3, _ := InitParams(f1, 6)
	eq := func(x, y *interp.Tensor) bool {
		for i := range x.F {
			if x.F[i] != y.F[i] {
				return false
			}
		}
		return true
	}
	switch {
	case !eq(p1["a"], p1again["a"]) || !eq(p1["b"], p1again["b"]):
		t.Error("same seed gives different values")
	case !eq(p1["a"], p2["a"]):
		t.Error("adding a parameter changed another")
	case eq(p1["a"], p1["b"]):
		t.Error("different names give equal values")
	case eq(p1["a"], p3["a"]):
		t.Error("different seeds give equal values")
	}
}

// TestInitParamsErrors checks that bad init attributes name the parameter.
func TestInitParamsErrors(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{"%w: f32[2] {init=glorot, role=param}", `%w: unknown init "glorot"`},
		{"%w: f32[2] {role=param}", "%w: no init"},
		{"%w: f32[2] {init=constant, role=param}", "%w: init=constant needs scale"},
		{"%w: i32[2] {init=normal, role=param}", "%w: init=normal needs a float type"},
		{"%w: f32[2] {init=normal, role=param, scale=wide}", "%w: scale=wide is not a number"},
	} {
		_, err := InitParams(parse(t, tc.params), 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.params, err, tc.want)
		}
	}
}

// TestRandomInputs checks ranges, dtypes, the rng key, determinism, and Args.
func TestRandomInputs(t *testing.T) {
	f := parse(t, "%tok: i32[64,64] {range=[3,10]}, %lab: i64[1000], %m: bool[1000], "+
		"%x: f32[100,100] {role=input}, %key: i64[] {role=rng}, %w: f32[2] {init=zeros, role=param}")
	in, err := RandomInputs(f, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 5 {
		t.Fatalf("RandomInputs made %d tensors, want 5", len(in))
	}
	seen := map[int64]bool{}
	for _, v := range in["tok"].I {
		if v < 3 || v >= 10 {
			t.Fatalf("tok value %d outside [3,10)", v)
		}
		seen[v] = true
	}
	if len(seen) != 7 {
		t.Errorf("tok takes %d distinct values, want 7", len(seen))
	}
	ones := 0
	for i, v := range in["lab"].I {
		if v != 0 && v != 1 {
			t.Fatalf("lab[%d] = %d outside the default [0,2)", i, v)
		}
		ones += int(in["m"].I[i])
	}
	if ones < 400 || ones > 600 {
		t.Errorf("fair coin gave %d ones of 1000", ones)
	}
	if mean, std, _ := moments(in["x"].F); math.Abs(mean) > 0.05 || math.Abs(std-1) > 0.05 {
		t.Errorf("x: mean %v std %v, want 0 and 1", mean, std)
	}
	if in["key"].I[0] != 9 {
		t.Errorf("rng key = %d, want the seed 9", in["key"].I[0])
	}
	again, _ := RandomInputs(f, 9)
	other, _ := RandomInputs(f, 10)
	if again["x"].F[17] != in["x"].F[17] || other["x"].F[17] == in["x"].F[17] {
		t.Error("inputs are not deterministic in the seed")
	}
	// An input and a parameter of the same name draw different streams.
	g := parse(t, "%v: f32[4] {init=normal, role=param, scale=1.0}")
	h := parse(t, "%v: f32[4]")
	pv, _ := InitParams(g, 1)
	iv, _ := RandomInputs(h, 1)
	if pv["v"].F[0] == iv["v"].F[0] {
		t.Error("input and parameter of one name share a stream")
	}

	if _, err := Args(f, in); err == nil || !strings.Contains(err.Error(), "missing argument %w") {
		t.Errorf("Args without %%w: %v", err)
	}
	ps, err := InitParams(f, 9)
	if err != nil {
		t.Fatal(err)
	}
	in["w"] = ps["w"]
	args, err := Args(f, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range f.Params {
		if args[i] != in[p.Name] {
			t.Errorf("argument %d is not %%%s", i, p.Name)
		}
	}
	in["w"] = interp.NewTensor(ir.T(ir.F32, 3))
	if _, err := Args(f, in); err == nil || !strings.Contains(err.Error(), "argument %w") {
		t.Errorf("Args with a wrong type: %v", err)
	}
}

// TestRandomInputsErrors checks bad range and rng attributes.
func TestRandomInputsErrors(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{"%t: i32[2] {range=[5,5]}", "%t: want range=[lo,hi]"},
		{"%k: i32[] {role=rng}", "%k: role=rng wants an i64[] key"},
	} {
		_, err := RandomInputs(parse(t, tc.params), 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.params, err, tc.want)
		}
	}
}

// TestFans checks Xavier's fan_in and fan_out conventions.
func TestFans(t *testing.T) {
	for _, tc := range []struct {
		shape       ir.Shape
		fanIn, fout int
	}{
		{ir.Shape{}, 1, 1},
		{ir.Shape{7}, 7, 7},
		{ir.Shape{3, 5}, 3, 5},
		{ir.Shape{2, 3, 5}, 6, 5},
		{ir.Shape{0, 4}, 1, 4},
	} {
		if in, out := fans(tc.shape); in != tc.fanIn || out != tc.fout {
			t.Errorf("fans(%v) = %d, %d, want %d, %d", tc.shape, in, out, tc.fanIn, tc.fout)
		}
	}
}

// TestRunTestdata initialises and runs every function of the IR testdata
// with the interpreter.
func TestRunTestdata(t *testing.T) {
	src, err := os.ReadFile("../testdata/ir/basic.ir")
	if err != nil {
		t.Skip(err)
	}
	m, err := ir.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Funcs {
		named, err := RandomInputs(f, 1)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := InitParams(f, 1)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(named, ps)
		args, err := Args(f, named)
		if err != nil {
			t.Fatal(err)
		}
		res, err := interp.Run(f, args)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if !r.Type.Equal(f.Results[i].Type) {
				t.Errorf("@%s result %d: %v, want %v", f.Name, i, r.Type, f.Results[i].Type)
			}
		}
	}
}
