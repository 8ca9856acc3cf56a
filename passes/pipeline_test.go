package passes

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/x448/float16"

	"xlc/ir"
)

const smallFunc = `func @g(%x: f32[2]) -> (f32[2]) {
  %0 = constant {value=0.0} : f32[2]
  %1 = add %x, %0 : f32[2]
  %2 = exp %1 : f32[2]
  return %2
}
`

func parse(t *testing.T, src string) *ir.Func {
	t.Helper()
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestNamesAndLookup(t *testing.T) {
	names := Names()
	if len(names) == 0 || names[0] != "simplify" {
		t.Fatalf("Names() = %v, want simplify first", names)
	}
	for _, n := range names {
		if _, ok := Lookup(n); !ok {
			t.Errorf("Lookup(%q) fails", n)
		}
		if !regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`).MatchString(n) {
			t.Errorf("pass name %q is not kebab-case", n)
		}
	}
	if _, ok := Lookup("no-such-pass"); ok {
		t.Error("Lookup of an unknown pass succeeds")
	}
	if err := Run(parse(t, smallFunc), Options{Passes: []string{"no-such-pass"}}); err == nil {
		t.Error("Run with an unknown pass succeeds")
	}
}

func TestCheckCatchesUnreportedChange(t *testing.T) {
	liar := func(f *ir.Func) (bool, error) {
		f.Body = f.Body[:len(f.Body)-1]
		f.Results[0] = f.Body[len(f.Body)-1]
		return false, nil
	}
	table := []pass{{name: "liar", fn: plain(liar)}}
	err := run(parse(t, smallFunc), Options{Check: true}, table)
	if err == nil || !strings.Contains(err.Error(), "after pass liar: the function changed, but the pass reported no change") {
		t.Errorf("have %v, want the liar caught", err)
	}
	if err := run(parse(t, smallFunc), Options{}, table); err != nil {
		t.Errorf("without Check: %v", err)
	}
}

func TestVerifyAfterPass(t *testing.T) {
	breaker := func(f *ir.Func) (bool, error) {
		f.Body[len(f.Body)-1].Args[0] = &ir.Value{Op: ir.OpExp, Type: ir.T(ir.F32, 2)}
		return true, nil
	}
	err := run(parse(t, smallFunc), Options{Verify: true}, []pass{{name: "breaker", fn: plain(breaker)}})
	if err == nil || !strings.HasPrefix(err.Error(), "after pass breaker: %2: operand") {
		t.Errorf("have %v, want a verifier error after pass breaker", err)
	}
}

func TestDumpAfter(t *testing.T) {
	dir := t.TempDir()
	f := parse(t, smallFunc)
	if err := Run(f, Options{Verify: true, DumpAfter: regexp.MustCompile("^simplify$"), DumpDir: dir}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "g_00__simplify.ir"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != f.String() {
		t.Errorf("dump differs from the final function:\n%s", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 1 {
		t.Errorf("dumped %v, want only the simplify dump", m)
	}
}

// TestRoundTo checks roundTo for f16 and bf16 against the two neighbouring
// values of the dtype: the result is the nearer, ties to even.
func TestRoundTo(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	f16 := func(u uint16) float64 { return float64(float16.Frombits(u).Float32()) }
	bf16 := func(u uint16) float64 { return float64(math.Float32frombits(uint32(u) << 16)) }
	for _, c := range []struct {
		d    ir.DType
		from func(uint16) float64
	}{{ir.F16, f16}, {ir.BF16, bf16}} {
		for i := 0; i < 200000; i++ {
			// A random positive finite value: pick two neighbours and a point between.
			var u uint16
			for {
				u = uint16(r.Intn(0x7fff))
				if hi := c.from(u + 1); !math.IsInf(hi, 0) && !math.IsNaN(hi) {
					break
				}
			}
			lo, hi := c.from(u), c.from(u+1)
			x := lo + (hi-lo)*float64(r.Intn(5))/4 // includes the tie and both ends
			if r.Intn(2) == 0 {
				x = lo + (hi-lo)*r.Float64()
			}
			want := lo
			switch {
			case x-lo > hi-x:
				want = hi
			case x-lo == hi-x && u&1 == 1:
				want = hi
			}
			if got := roundTo(c.d, x); got != want {
				t.Fatalf("roundTo(%v, %v) = %v, want %v (neighbours %v, %v)", c.d, x, got, want, lo, hi)
			}
			if got := roundTo(c.d, -x); got != -want {
				t.Fatalf("roundTo(%v, %v) = %v, want %v", c.d, -x, got, -want)
			}
		}
	}
}
