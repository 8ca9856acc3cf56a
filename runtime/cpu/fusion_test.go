package cpu

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/ir"
)

// fusedText has one fusion of each kind on shapes big enough to split
// across cores: a loop fusion, a dot with an epilogue (batched), and row
// kernels (softmax, layer norm) whose reduced values are broadcast back.
const fusedText = `func @fused(%x: f32[64,48], %b: f32[48], %w: f32[4,48,40], %k: i64[]) -> (loop: f32[64,48], dot: f32[4,16,40], softmax: f32[64,48], norm: f32[64,48], noise: f32[64,48], sums: f32[64]) {
  %0 = fusion %x, %b {calls=fused.0, kind=loop} : f32[64,48]
  %1 = reshape %0 : f32[4,16,48]
  %2 = fusion %1, %w {calls=fused.1, kind=dot} : f32[4,16,40]
  %3 = fusion %0 {calls=fused.2, kind=reduce} : f32[64,48]
  %4 = fusion %x, %b {calls=fused.3, kind=reduce} : f32[64,48]
  %5 = fusion %k, %x {calls=fused.4, kind=loop} : f32[64,48]
  %6 = fusion %x {calls=fused.5, kind=reduce} : f32[64]
  return %0, %2, %3, %4, %5, %6
}

func @fused.0(%p0: f32[64,48], %p1: f32[48]) -> (f32[64,48]) {
  %0 = broadcast %p1 {dims=[1]} : f32[64,48]
  %1 = add %p0, %0 : f32[64,48]
  %2 = tanh %1 : f32[64,48]
  return %2
}

func @fused.1(%p0: f32[4,16,48], %p1: f32[4,48,40]) -> (f32[4,16,40]) {
  %0 = dot %p0, %p1 {batch=[[0],[0]], contract=[[2],[1]]} : f32[4,16,40]
  %1 = constant {value=0.5} : f32[4,16,40]
  %2 = mul %0, %1 : f32[4,16,40]
  %3 = max %2, %1 : f32[4,16,40]
  return %3
}

func @fused.2(%p0: f32[64,48]) -> (f32[64,48]) {
  %0 = reduce_max %p0 {axes=[1]} : f32[64]
  %1 = broadcast %0 {dims=[0]} : f32[64,48]
  %2 = sub %p0, %1 : f32[64,48]
  %3 = exp %2 : f32[64,48]
  %4 = reduce_sum %3 {axes=[1]} : f32[64]
  %5 = broadcast %4 {dims=[0]} : f32[64,48]
  %6 = div %3, %5 : f32[64,48]
  return %6
}

func @fused.3(%p0: f32[64,48], %p1: f32[48]) -> (f32[64,48]) {
  %0 = reduce_sum %p0 {axes=[1]} : f32[64]
  %1 = constant {value=0.020833333333333332} : f32[64]
  %2 = mul %0, %1 : f32[64]
  %3 = broadcast %2 {dims=[0]} : f32[64,48]
  %4 = sub %p0, %3 : f32[64,48]
  %5 = mul %4, %4 : f32[64,48]
  %6 = reduce_sum %5 {axes=[1]} : f32[64]
  %7 = mul %6, %1 : f32[64]
  %8 = constant {value=1e-05} : f32[64]
  %9 = add %7, %8 : f32[64]
  %10 = rsqrt %9 : f32[64]
  %11 = broadcast %10 {dims=[0]} : f32[64,48]
  %12 = mul %4, %11 : f32[64,48]
  %13 = broadcast %p1 {dims=[1]} : f32[64,48]
  %14 = mul %12, %13 : f32[64,48]
  return %14
}

func @fused.4(%p0: i64[], %p1: f32[64,48]) -> (f32[64,48]) {
  %0 = rng %p0 {dist=uniform, stream=3} : f32[64,48]
  %1 = constant {value=0.1} : f32[64,48]
  %2 = lt %0, %1 : bool[64,48]
  %3 = constant {value=0.0} : f32[64,48]
  %4 = select %2, %3, %p1 : f32[64,48]
  return %4
}

func @fused.5(%p0: f32[64,48]) -> (f32[64]) {
  %0 = mul %p0, %p0 : f32[64,48]
  %1 = reduce_sum %0 {axes=[1]} : f32[64]
  %2 = sqrt %1 : f32[64]
  return %2
}
`

// multiText has multi-output fusions of each lowering: a loop kernel
// writing three results, two of them donated in place over the parameters
// it reads (an optimizer's update); a row kernel writing softmax, its row
// sums (per row) and its exponentials (per element); layer norm with its
// mean and reciprocal deviation shaped [64,1]; and two column sums of one
// operand (a layer norm's gain and bias gradients).
const multiText = `func @multi(%x: f32[64,48], %g: f32[64,48], %m: f32[64,48] {role=state}, %v: f32[64,48] {role=state}) -> (m: f32[64,48], v: f32[64,48], step: f32[64,48], softmax: f32[64,48], sums: f32[64], exps: f32[64,48], norm: f32[64,48], mean: f32[64,1], rstd: f32[64,1], dgain: f32[48], dbias: f32[48]) {
  %0 = fusion %m, %g, %v {calls=fused.0, kind=loop} : f32[64,48]
  %1 = output %0 {index=1} : f32[64,48]
  %2 = output %0 {index=2} : f32[64,48]
  %3 = fusion %x {calls=fused.1, kind=reduce} : f32[64,48]
  %4 = output %3 {index=1} : f32[64]
  %5 = output %3 {index=2} : f32[64,48]
  %6 = fusion %x {calls=fused.2, kind=reduce} : f32[64,48]
  %7 = output %6 {index=1} : f32[64,1]
  %8 = output %6 {index=2} : f32[64,1]
  %9 = fusion %g, %x {calls=fused.3, kind=reduce} : f32[48]
  %10 = output %9 {index=1} : f32[48]
  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10
}

func @fused.0(%p0: f32[64,48], %p1: f32[64,48], %p2: f32[64,48]) -> (f32[64,48], f32[64,48], f32[64,48]) {
  %0 = constant {value=0.9} : f32[64,48]
  %1 = mul %p0, %0 : f32[64,48]
  %2 = add %1, %p1 : f32[64,48]
  %3 = mul %p1, %p1 : f32[64,48]
  %4 = add %p2, %3 : f32[64,48]
  %5 = sqrt %4 : f32[64,48]
  %6 = div %2, %5 : f32[64,48]
  return %2, %4, %6
}

func @fused.1(%p0: f32[64,48]) -> (f32[64,48], f32[64], f32[64,48]) {
  %0 = exp %p0 : f32[64,48]
  %1 = reduce_sum %0 {axes=[1]} : f32[64]
  %2 = broadcast %1 {dims=[0]} : f32[64,48]
  %3 = div %0, %2 : f32[64,48]
  return %3, %1, %0
}

func @fused.2(%p0: f32[64,48]) -> (f32[64,48], f32[64,1], f32[64,1]) {
  %0 = reduce_sum %p0 {axes=[1]} : f32[64]
  %1 = constant {value=0.020833333333333332} : f32[64]
  %2 = mul %0, %1 : f32[64]
  %3 = broadcast %2 {dims=[0]} : f32[64,48]
  %4 = sub %p0, %3 : f32[64,48]
  %5 = mul %4, %4 : f32[64,48]
  %6 = reduce_sum %5 {axes=[1]} : f32[64]
  %7 = mul %6, %1 : f32[64]
  %8 = rsqrt %7 : f32[64]
  %9 = broadcast %8 {dims=[0]} : f32[64,48]
  %10 = mul %4, %9 : f32[64,48]
  %11 = reshape %2 : f32[64,1]
  %12 = reshape %8 : f32[64,1]
  return %10, %11, %12
}

func @fused.3(%p0: f32[64,48], %p1: f32[64,48]) -> (f32[48], f32[48]) {
  %0 = mul %p0, %p1 : f32[64,48]
  %1 = reduce_sum %0 {axes=[0]} : f32[48]
  %2 = reduce_sum %p0 {axes=[0]} : f32[48]
  return %1, %2
}
`

// TestFusion runs fusion instructions of every kind (each one kernel)
// against the interpreter, which evaluates the callees op by op.
func TestFusion(t *testing.T) {
	needLLVM(t)
	src, err := os.ReadFile("../../testdata/ir/fusion.ir")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{string(src), fusedText, multiText} {
		f, err := ir.ParseFunc(text)
		if err != nil {
			t.Fatal(err)
		}
		matchesInterp(t, f, 1, 0, 1<<40)
	}
}

// matchesInterp runs f on randomArgs(f, seed, lo, hi) on the cpu and on
// the interpreter and reports each result that differs by more than 1e-5
// relative.
func matchesInterp(t *testing.T, f *ir.Func, seed, lo, hi int64) {
	t.Helper()
	want, got := runBoth(t, f, randomArgs(f, seed, lo, hi))
	for i := range f.Results {
		name := fmt.Sprint(i)
		if i < len(f.ResultNames) {
			name = f.ResultNames[i]
		}
		if msg := diff(got[i], want[i], 1e-5); msg != "" {
			t.Errorf("@%s: %s: %s", f.Name, name, msg)
		}
	}
}

// compileFor parses the function src and compiles it for the LLVM CPU cpu
// (without building it).
func compileFor(t *testing.T, src, cpu string) (*ir.Func, *codegen.Program) {
	t.Helper()
	f, err := ir.ParseFunc(src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := codegen.Compile(f, codegen.Options{CPU: cpu})
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

// TestMultiOutputLowering checks how multiText's kernels are lowered: one
// kernel per fusion (none for the outputs), the optimizer's loop reading m
// and v through the result pointers they share, row kernels for softmax and
// layer norm, and one column-sum kernel for both gradients.
func TestMultiOutputLowering(t *testing.T) {
	_, p := compileFor(t, multiText, "x86-64")
	var got []string
	for _, k := range p.Kernels {
		got = append(got, fmt.Sprintf("%%%d %s results=%d inplace=%v", k.Instr, k.Lowering, len(k.Results), k.InPlace))
	}
	want := []string{
		"%0 elemental results=3 inplace=map[0:0 2:1]",
		"%3 rows results=3 inplace=map[]",
		"%6 rows results=3 inplace=map[]",
		"%9 reduce results=2 inplace=map[]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kernels:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHugeKernel runs a fused callee longer than codegen optimizes (a chain
// of 5,000 adds over 300 operands and a sum, the shape of a deep model's
// gradient-norm sum): its kernel loads its pointers itself, unoptimized,
// and computes what the interpreter does.
func TestHugeKernel(t *testing.T) {
	needLLVM(t)
	const n, ops = 300, 5000
	var params, args, cparams, body strings.Builder
	for i := range n {
		fmt.Fprintf(&params, "%%s%d: f32[], ", i)
		fmt.Fprintf(&args, "%%s%d, ", i)
		fmt.Fprintf(&cparams, "%%p%d: f32[], ", i)
	}
	fmt.Fprintf(&body, "  %%0 = reduce_sum %%p%d {axes=[0]} : f32[]\n", n)
	for i := 1; i < ops; i++ {
		fmt.Fprintf(&body, "  %%%d = add %%%d, %%p%d : f32[]\n", i, i-1, i%n)
	}
	src := fmt.Sprintf("func @huge(%s%%x: f32[64]) -> (f32[]) {\n  %%0 = fusion %s%%x {calls=fused.0, kind=reduce} : f32[]\n  return %%0\n}\n\n"+
		"func @fused.0(%s%%p%d: f32[64]) -> (f32[]) {\n%s  return %%%d\n}\n",
		params.String(), args.String(), cparams.String(), n, body.String(), ops-1)
	f, p := compileFor(t, src, "x86-64")
	if !strings.Contains(p.LL, "optnone") || strings.Contains(p.LL, "xlc_k0_body") {
		t.Fatal("the huge kernel is not one unoptimized function")
	}
	matchesInterp(t, f, 3, 0, 0)
}

// softmaxRows is a softmax over rows of 100 (not a multiple of a vector)
// and its backward, each one row kernel that needs exp(x - max) both in a
// sum and in the row it writes.
const softmaxRows = `func @f(%x: f32[6,100], %dy: f32[6,100]) -> (y: f32[6,100], dx: f32[6,100]) {
  %0 = fusion %x {calls=fused.0, kind=reduce} : f32[6,100]
  %1 = fusion %x, %dy {calls=fused.1, kind=reduce} : f32[6,100]
  return %0, %1
}

func @fused.0(%p0: f32[6,100]) -> (f32[6,100]) {
  %0 = reduce_max %p0 {axes=[1]} : f32[6]
  %1 = broadcast %0 {dims=[0]} : f32[6,100]
  %2 = sub %p0, %1 : f32[6,100]
  %3 = exp %2 : f32[6,100]
  %4 = reduce_sum %3 {axes=[1]} : f32[6]
  %5 = broadcast %4 {dims=[0]} : f32[6,100]
  %6 = div %3, %5 : f32[6,100]
  return %6
}

func @fused.1(%p0: f32[6,100], %p1: f32[6,100]) -> (f32[6,100]) {
  %0 = reduce_max %p0 {axes=[1]} : f32[6]
  %1 = broadcast %0 {dims=[0]} : f32[6,100]
  %2 = sub %p0, %1 : f32[6,100]
  %3 = exp %2 : f32[6,100]
  %4 = reduce_sum %3 {axes=[1]} : f32[6]
  %5 = broadcast %4 {dims=[0]} : f32[6,100]
  %6 = div %3, %5 : f32[6,100]
  %7 = mul %p1, %6 : f32[6,100]
  %8 = reduce_sum %7 {axes=[1]} : f32[6]
  %9 = broadcast %8 {dims=[0]} : f32[6,100]
  %10 = sub %p1, %9 : f32[6,100]
  %11 = mul %6, %10 : f32[6,100]
  return %11
}
`

// TestRowCache checks that a row kernel computes a costly value of its
// rows' shape once per element: the reduction's loop keeps exp(x - max)
// (and the backward's softmax) in a row array that the writing loop reads
// (codegen/rowcache.go), and the results are the interpreter's.
func TestRowCache(t *testing.T) {
	f, p := compileFor(t, softmaxRows, "x86-64")
	if n := strings.Count(p.LL, "alloca [100 x float]"); n != 3 {
		t.Errorf("%d row caches of 100 floats, want 3 (exp in the forward; exp and softmax in the backward)", n)
	}
	needLLVM(t)
	matchesInterp(t, f, 5, 0, 0)
}

// rowDotText has dot fusions whose epilogue is a row kernel over the
// product's rows (fusion's row-epilogue rule): softmax of scaled scores
// [8,64,64] with K=64 (the fast dot, then the rows of each part), and the
// same on [2,8,8] products (the naive dot writes the rows first).
const rowDotText = `func @rowdot(%q: f32[8,64,64], %k: f32[8,64,64], %a: f32[2,8,8], %b: f32[2,8,8]) -> (big: f32[8,64,64], small: f32[2,8,8]) {
  %0 = fusion %q, %k {calls=fused.0, kind=dot} : f32[8,64,64]
  %1 = fusion %a, %b {calls=fused.1, kind=dot} : f32[2,8,8]
  return %0, %1
}

func @fused.0(%p0: f32[8,64,64], %p1: f32[8,64,64]) -> (f32[8,64,64]) {
  %0 = dot %p0, %p1 {batch=[[0],[0]], contract=[[2],[2]]} : f32[8,64,64]
  %1 = constant {value=0.125} : f32[8,64,64]
  %2 = mul %0, %1 : f32[8,64,64]
  %3 = reduce_max %2 {axes=[2]} : f32[8,64]
  %4 = broadcast %3 {dims=[0,1]} : f32[8,64,64]
  %5 = sub %2, %4 : f32[8,64,64]
  %6 = exp %5 : f32[8,64,64]
  %7 = reduce_sum %6 {axes=[2]} : f32[8,64]
  %8 = broadcast %7 {dims=[0,1]} : f32[8,64,64]
  %9 = div %6, %8 : f32[8,64,64]
  return %9
}

func @fused.1(%p0: f32[2,8,8], %p1: f32[2,8,8]) -> (f32[2,8,8]) {
  %0 = dot %p0, %p1 {batch=[[0],[0]], contract=[[2],[1]]} : f32[2,8,8]
  %1 = reduce_max %0 {axes=[2]} : f32[2,8]
  %2 = broadcast %1 {dims=[0,1]} : f32[2,8,8]
  %3 = sub %0, %2 : f32[2,8,8]
  %4 = exp %3 : f32[2,8,8]
  %5 = reduce_sum %4 {axes=[2]} : f32[2,8]
  %6 = broadcast %5 {dims=[0,1]} : f32[2,8,8]
  %7 = div %4, %6 : f32[2,8,8]
  return %7
}
`

// TestRowDot runs rowDotText against the interpreter and checks the
// lowerings: the fast dot with its rows for the large product (on an
// AVX-512 CPU), the rows after a naive product for the small one.
func TestRowDot(t *testing.T) {
	f, p := compileFor(t, rowDotText, "znver4")
	if got := []string{p.Kernels[0].Lowering, p.Kernels[1].Lowering}; got[0] != codegen.LowerFastDotRows || got[1] != codegen.LowerRows {
		t.Errorf("lowerings %v, want [%s %s]", got, codegen.LowerFastDotRows, codegen.LowerRows)
	}
	needLLVM(t)
	matchesInterp(t, f, 9, 0, 0)
}

// addsDotText has dot fusions whose epilogue is a sum: a bias along the
// last axis (the micro-kernel adds it as it stores each tile), with the
// operands swapped in the add, a bias along the rows instead (not
// folded), a bias and a residual, two residuals, and a partial sum used
// twice (not folded).
const addsDotText = `func @addsdot(%x: f32[4,32,64], %w: f32[64,48], %b: f32[48], %c: f32[32], %r: f32[4,32,48], %s: f32[4,32,48]) -> (last: f32[4,32,48], swapped: f32[4,32,48], rows: f32[4,32,48], residual: f32[4,32,48], two: f32[4,32,48], reused: f32[4,32,48]) {
  %0 = fusion %x, %w, %b {calls=fused.last, kind=dot} : f32[4,32,48]
  %1 = fusion %x, %w, %b {calls=fused.swapped, kind=dot} : f32[4,32,48]
  %2 = fusion %x, %w, %c {calls=fused.rows, kind=dot} : f32[4,32,48]
  %3 = fusion %x, %w, %b, %r {calls=fused.residual, kind=dot} : f32[4,32,48]
  %4 = fusion %x, %w, %r, %s {calls=fused.two, kind=dot} : f32[4,32,48]
  %5 = fusion %x, %w, %b {calls=fused.reused, kind=dot} : f32[4,32,48]
  return %0, %1, %2, %3, %4, %5
}

func @fused.last(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[48]) -> (f32[4,32,48]) {
  %0 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %1 = broadcast %p2 {dims=[2]} : f32[4,32,48]
  %2 = add %0, %1 : f32[4,32,48]
  return %2
}

func @fused.swapped(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[48]) -> (f32[4,32,48]) {
  %0 = broadcast %p2 {dims=[2]} : f32[4,32,48]
  %1 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %2 = add %0, %1 : f32[4,32,48]
  return %2
}

func @fused.rows(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[32]) -> (f32[4,32,48]) {
  %0 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %1 = broadcast %p2 {dims=[1]} : f32[4,32,48]
  %2 = add %0, %1 : f32[4,32,48]
  return %2
}

func @fused.residual(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[48], %p3: f32[4,32,48]) -> (f32[4,32,48]) {
  %0 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %1 = broadcast %p2 {dims=[2]} : f32[4,32,48]
  %2 = add %0, %1 : f32[4,32,48]
  %3 = add %2, %p3 : f32[4,32,48]
  return %3
}

func @fused.two(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[4,32,48], %p3: f32[4,32,48]) -> (f32[4,32,48]) {
  %0 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %1 = add %p2, %0 : f32[4,32,48]
  %2 = add %1, %p3 : f32[4,32,48]
  return %2
}

func @fused.reused(%p0: f32[4,32,64], %p1: f32[64,48], %p2: f32[48]) -> (f32[4,32,48]) {
  %0 = dot %p0, %p1 {batch=[[],[]], contract=[[2],[0]]} : f32[4,32,48]
  %1 = broadcast %p2 {dims=[2]} : f32[4,32,48]
  %2 = add %0, %1 : f32[4,32,48]
  %3 = add %2, %2 : f32[4,32,48]
  return %3
}
`

// TestFoldedAdds runs addsDotText against the interpreter and checks
// which sums the fast dot adds itself.
func TestFoldedAdds(t *testing.T) {
	f, p := compileFor(t, addsDotText, "znver4")
	fast, ep := codegen.LowerFastDot, codegen.LowerFastDotEp
	lowerings := []string{fast, fast, ep, fast, fast, ep}
	for i, k := range p.Kernels {
		if k.Lowering != lowerings[i] {
			t.Errorf("%s: lowering %s, want %s", f.ResultNames[i], k.Lowering, lowerings[i])
		}
	}
	needLLVM(t)
	// The fast dot sums 64 products of N(0, 4) values in f32: absolute
	// errors of up to about 1e-4, large relative to small results.
	want, got := runBoth(t, f, randomArgs(f, 11, 0, 0))
	for i, name := range f.ResultNames {
		for j, w := range want[i].F {
			if d := math.Abs(got[i].F[j] - w); !(d <= 1e-3) {
				t.Fatalf("%s: element %d: got %g, want %g", name, j, got[i].F[j], w)
			}
		}
	}
}
