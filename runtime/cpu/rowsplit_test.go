package cpu

import (
	"strings"
	"testing"
)

// splitText has row kernels over 21 positions that a triangle splits:
// softmax of scores masked to −1e9 where j > i, selecting 0 there; a sum
// over scores masked to −3 where j ≤ i (the reduced axis is the
// triangle's first, and the masked part adds exp(−3)·−3 per element); and
// a softmax-gradient-like row kernel reading both the probabilities (zero
// where j > i) and the masked scores.
const splitText = `func @split(%x: f32[2,3,21,21], %y: f32[2,3,21,21]) -> (p: f32[2,3,21,21], u: f32[2,3,21], g: f32[2,3,21,21]) {
  %0 = fusion %x {calls=fused.mask, kind=loop} : f32[2,3,21,21]
  %1 = fusion %0 {calls=fused.softmax, kind=reduce} : f32[2,3,21,21]
  %2 = fusion %y {calls=fused.upper, kind=loop} : f32[2,3,21,21]
  %3 = fusion %2 {calls=fused.sum, kind=reduce} : f32[2,3,21]
  %4 = fusion %1, %0 {calls=fused.grad, kind=reduce} : f32[2,3,21,21]
  return %1, %3, %4
}

func @fused.mask(%p0: f32[2,3,21,21]) -> (f32[2,3,21,21]) {
  %0 = iota {axis=0} : i32[21,21]
  %1 = iota {axis=1} : i32[21,21]
  %2 = ge %0, %1 : bool[21,21]
  %3 = broadcast %2 {dims=[2,3]} : bool[2,3,21,21]
  %4 = constant {value=0.5} : f32[2,3,21,21]
  %5 = mul %p0, %4 : f32[2,3,21,21]
  %6 = constant {value=-1e+09} : f32[2,3,21,21]
  %7 = select %3, %5, %6 : f32[2,3,21,21]
  return %7
}

func @fused.softmax(%p0: f32[2,3,21,21]) -> (f32[2,3,21,21]) {
  %0 = iota {axis=0} : i32[21,21]
  %1 = iota {axis=1} : i32[21,21]
  %2 = le %1, %0 : bool[21,21]
  %3 = broadcast %2 {dims=[2,3]} : bool[2,3,21,21]
  %4 = reduce_max %p0 {axes=[3]} : f32[2,3,21]
  %5 = broadcast %4 {dims=[0,1,2]} : f32[2,3,21,21]
  %6 = sub %p0, %5 : f32[2,3,21,21]
  %7 = exp %6 : f32[2,3,21,21]
  %8 = reduce_sum %7 {axes=[3]} : f32[2,3,21]
  %9 = broadcast %8 {dims=[0,1,2]} : f32[2,3,21,21]
  %10 = div %7, %9 : f32[2,3,21,21]
  %11 = constant {value=0.0} : f32[2,3,21,21]
  %12 = select %3, %10, %11 : f32[2,3,21,21]
  return %12
}

func @fused.upper(%p0: f32[2,3,21,21]) -> (f32[2,3,21,21]) {
  %0 = iota {axis=0} : i32[21,21]
  %1 = iota {axis=1} : i32[21,21]
  %2 = lt %0, %1 : bool[21,21]
  %3 = broadcast %2 {dims=[2,3]} : bool[2,3,21,21]
  %4 = constant {value=-3.0} : f32[2,3,21,21]
  %5 = select %3, %p0, %4 : f32[2,3,21,21]
  return %5
}

func @fused.sum(%p0: f32[2,3,21,21]) -> (f32[2,3,21]) {
  %0 = exp %p0 : f32[2,3,21,21]
  %1 = mul %0, %p0 : f32[2,3,21,21]
  %2 = reduce_sum %1 {axes=[3]} : f32[2,3,21]
  return %2
}

func @fused.grad(%p0: f32[2,3,21,21], %p1: f32[2,3,21,21]) -> (f32[2,3,21,21]) {
  %0 = iota {axis=0} : i32[21,21]
  %1 = iota {axis=1} : i32[21,21]
  %2 = ge %0, %1 : bool[21,21]
  %3 = broadcast %2 {dims=[2,3]} : bool[2,3,21,21]
  %4 = reduce_max %p1 {axes=[3]} : f32[2,3,21]
  %5 = broadcast %4 {dims=[0,1,2]} : f32[2,3,21,21]
  %6 = sub %p1, %5 : f32[2,3,21,21]
  %7 = exp %6 : f32[2,3,21,21]
  %8 = mul %p0, %7 : f32[2,3,21,21]
  %9 = reduce_sum %8 {axes=[3]} : f32[2,3,21]
  %10 = broadcast %9 {dims=[0,1,2]} : f32[2,3,21,21]
  %11 = sub %8, %10 : f32[2,3,21,21]
  %12 = constant {value=0.0} : f32[2,3,21,21]
  %13 = select %3, %11, %12 : f32[2,3,21,21]
  return %13
}
`

// TestRowSplit checks that the row kernels of splitText, and its loop
// kernels' rows, loop over each row in two parts (rowsplit.go) with the
// target's row hints (loophints.go), that neither part compares indices
// (a select on the triangle is one of its branches there), and that they
// compute what the interpreter does.
func TestRowSplit(t *testing.T) {
	f, p := compileFor(t, splitText, "x86-64-v3")
	for _, loop := range []string{"rmax.out", "red.out", "elt.out", "red.in", "col.in", "col.out"} {
		if !strings.Contains(p.LL, loop) {
			t.Errorf("no %s loop: the kernels are not split", loop)
		}
	}
	// The mask's i32 iotas are the loops' i64 indices truncated.
	if n := strings.Count(p.LL, "trunc i64"); n > 0 {
		t.Errorf("%d iota values: a split row still compares the mask's indices", n)
	}
	for cpu, hints := range map[string][]string{
		"x86-64-v3": {`!{!"llvm.loop.vectorize.width", i32 8}`, `!{!"llvm.loop.interleave.count", i32 1}`},
		"x86-64-v4": {`!{!"llvm.loop.vectorize.width", i32 16}`, `!{!"llvm.loop.vectorize.predicate.enable", i1 true}`},
	} {
		_, p := compileFor(t, splitText, cpu)
		for _, h := range hints {
			if !strings.Contains(p.LL, h) {
				t.Errorf("%s: no row hint %s", cpu, h)
			}
		}
	}
	needLLVM(t)
	matchesInterp(t, f, 7, 0, 0)
}
