package cpu

import (
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/runtime/interp"
)

// chunksText has column sums that the CPU splits by chunks of rows
// (codegen's columnChunks): a layer norm's gain and bias gradients over
// 300 rows (4 chunks of 75) reading a per-row statistic, a bias gradient
// over 2,048 rows (16 chunks), one over 1,000 rows (15 chunks, the last
// shorter), and one over 100 rows, too few to split.
const chunksText = `func @chunks(%g: f32[4,75,48], %x: f32[4,75,48], %r: f32[4,75], %y: f32[16,128,40], %z: f32[1000,24], %s: f32[100,24]) -> (dgain: f32[48], dbias: f32[48], db: f32[40], dz: f32[24], ds: f32[24]) {
  %0 = fusion %g, %x, %r {calls=fused.0, kind=reduce} : f32[48]
  %1 = output %0 {index=1} : f32[48]
  %2 = reduce_sum %y {axes=[0,1]} : f32[40]
  %3 = fusion %z {calls=fused.1, kind=reduce} : f32[24]
  %4 = reduce_sum %s {axes=[0]} : f32[24]
  return %0, %1, %2, %3, %4
}

func @fused.0(%p0: f32[4,75,48], %p1: f32[4,75,48], %p2: f32[4,75]) -> (f32[48], f32[48]) {
  %0 = broadcast %p2 {dims=[0,1]} : f32[4,75,48]
  %1 = mul %p1, %0 : f32[4,75,48]
  %2 = mul %p0, %1 : f32[4,75,48]
  %3 = reduce_sum %2 {axes=[0,1]} : f32[48]
  %4 = reduce_sum %p0 {axes=[0,1]} : f32[48]
  return %3, %4
}

func @fused.1(%p0: f32[1000,24]) -> (f32[24]) {
  %0 = mul %p0, %p0 : f32[1000,24]
  %1 = reduce_sum %0 {axes=[0]} : f32[24]
  return %1
}
`

// wgradText has weight gradients that the CPU splits into two products
// over halves of K (codegen's dotSplit): K = 2,048 (the tokens of [8,256]),
// K = 1,200 with B stored N×K as well, and K = 512, too short to split.
const wgradText = `func @wgrad(%x: f32[8,256,48], %dy: f32[8,256,40], %u: f32[1200,16], %v: f32[20,1200], %s: f32[8,64,24], %ds: f32[8,64,8]) -> (dw: f32[48,40], dt: f32[16,20], short: f32[24,8]) {
  %0 = dot %x, %dy {batch=[[],[]], contract=[[0,1],[0,1]]} : f32[48,40]
  %1 = dot %u, %v {batch=[[],[]], contract=[[0],[1]]} : f32[16,20]
  %2 = dot %s, %ds {batch=[[],[]], contract=[[0,1],[0,1]]} : f32[24,8]
  return %0, %1, %2
}
`

// TestColumnChunks checks the column sums split by chunks of rows, and
// that every column sum (all of chunksText's kernels, split or not)
// prefetches its rows ahead on the CPU, but not on a GPU.
func TestColumnChunks(t *testing.T) {
	// 64 bytes of counter, then chunks × columns × sums doubles.
	checkScratch(t, chunksText, []int64{64 + 4*48*2*8, 64 + 16*40*8, 64 + 15*24*8, 0})
	f, p := compileFor(t, chunksText, "x86-64-v3")
	for _, k := range p.Kernels {
		if !strings.Contains(kernelText(p.LL, k.Symbol), "@llvm.prefetch") {
			t.Errorf("%s does not prefetch", k.Symbol)
		}
	}
	gp, err := codegen.Compile(f, codegen.Options{CPU: "gpu-emu"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(gp.LL, "@llvm.prefetch") {
		t.Error("a GPU kernel prefetches")
	}
}

// TestSplitK checks the weight gradients split over parts of K.
func TestSplitK(t *testing.T) {
	// 64 bytes of counter, then two products of floats.
	checkScratch(t, wgradText, []int64{64 + 2*48*40*4, 64 + 2*16*20*4, 0})
}

// checkScratch checks the kernels of the function src that use a scratch
// buffer: that they are the ones with the bytes want, that no GPU kernel
// has one, that they match the interpreter, and that their results are
// the same bits run after run and whatever the number of threads (their
// parts are fixed and added in order).
func checkScratch(t *testing.T, src string, want []int64) {
	t.Helper()
	f, p := compileFor(t, src, "x86-64-v3")
	var scratch []int64
	for _, k := range p.Kernels {
		scratch = append(scratch, k.Scratch)
	}
	if !slices.Equal(scratch, want) {
		t.Errorf("scratch bytes %v, want %v", scratch, want)
	}
	if gp, err := codegen.Compile(f, codegen.Options{CPU: "gpu-emu"}); err != nil {
		t.Fatal(err)
	} else if slices.ContainsFunc(gp.Kernels, func(k codegen.Kernel) bool { return k.Scratch > 0 }) {
		t.Error("a GPU kernel takes a scratch buffer")
	}
	needLLVM(t)
	// Two sets of arguments, run in turn, so that a sum that did not
	// reset its counter shows; offsets keep the sums from cancelling
	// (rounded back to f32, as the cpu reads them).
	var args, exp, terms [2][]*interp.Tensor
	for i := range args {
		args[i] = randomArgs(f, int64(7+i), 0, 1<<40)
		for _, a := range args[i] {
			for j := range a.F {
				a.F[j] = float64(float32(a.F[j] + 0.5))
			}
		}
		exp[i], _ = runBoth(t, f, args[i])
		terms[i] = absTerms(t, f, args[i])
	}
	x := load(t, f)
	var first [2][]*interp.Tensor
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 2} {
		goruntime.GOMAXPROCS(procs)
		for i := range args {
			got, err := x.Run(args[i])
			if err != nil {
				t.Fatal(err)
			}
			for r := range got {
				if msg := diffAbs(got[r], exp[i][r], 1e-5, terms[i][r].F); msg != "" {
					t.Errorf("%d threads, arguments %d: %s: %s", procs, i, f.ResultNames[r], msg)
				}
				if first[i] != nil && !slices.Equal(got[r].F, first[i][r].F) {
					t.Errorf("%d threads, arguments %d: %s differs from one thread's", procs, i, f.ResultNames[r])
				}
			}
			if first[i] == nil {
				first[i] = got
			}
		}
	}
}

// kernelText is the LLVM text of kernel name in module ll: its frame and
// its body.
func kernelText(ll, name string) string {
	var out strings.Builder
	in := false
	for _, line := range strings.Split(ll, "\n") {
		if strings.HasPrefix(line, "define ") {
			in = strings.Contains(line, "@"+name+"(") || strings.Contains(line, "@"+name+"_body(")
		}
		if in {
			out.WriteString(line + "\n")
		}
		if line == "}" {
			in = false
		}
	}
	return out.String()
}
