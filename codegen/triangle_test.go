package codegen

import (
	"testing"

	"xlc/ir"
)

// triText is causal attention's kernels as fusion leaves them (one batch,
// one head, 8 positions of width 4): the masked scores, softmax with the
// mask's select against 0, P·V, dV = Pᵀ·dO, and dS (masked, scaled) with
// dQ = dS·K and dK = dSᵀ·Q; then products that must get no band.
const triText = `func @f(%q: f32[1,8,1,4], %k: f32[1,8,1,4], %v: f32[1,8,1,4], %do: f32[1,8,1,4], %g: f32[1,1,8,8]) -> (y: f32[1,8,1,4], dv: f32[1,8,1,4], dq: f32[1,8,1,4], dk: f32[1,1,4,8], n1: f32[1,1,8,8], n2: f32[1,1,8,8], n3: f32[1,1,8,4], n4: f32[1,1,8,8]) {
  %0 = fusion %q, %k {calls=fused.scores, kind=dot} : f32[1,1,8,8]
  %1 = fusion %0 {calls=fused.softmax, kind=reduce} : f32[1,1,8,8]
  %2 = fusion %1, %v {calls=fused.pv, kind=dot} : f32[1,8,1,4]
  %3 = dot %1, %do {batch=[[0,1],[0,2]], contract=[[2],[1]]} : f32[1,1,8,4]
  %4 = reshape %3 : f32[1,8,1,4]
  %5 = fusion %do, %v, %1 {calls=fused.ds, kind=dot} : f32[1,1,8,8]
  %6 = fusion %5, %k {calls=fused.pv, kind=dot} : f32[1,8,1,4]
  %7 = dot %q, %5 {batch=[[0,2],[0,1]], contract=[[1],[2]]} : f32[1,1,4,8]
  %8 = fusion %q, %k {calls=fused.leak, kind=dot} : f32[1,1,8,8]
  %9 = fusion %q, %k {calls=fused.rowfirst, kind=dot} : f32[1,1,8,8]
  %10 = dot %g, %k {batch=[[0,1],[0,2]], contract=[[3],[1]]} : f32[1,1,8,4]
  %11 = fusion %0, %g {calls=fused.notzero, kind=loop} : f32[1,1,8,8]
  return %2, %4, %6, %7, %8, %9, %10, %11
}

func @fused.scores(%p0: f32[1,8,1,4], %p1: f32[1,8,1,4]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = ge %0, %1 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = dot %p0, %p1 {batch=[[0,2],[0,2]], contract=[[3],[3]]} : f32[1,1,8,8]
  %5 = constant {value=0.5} : f32[1,1,8,8]
  %6 = mul %4, %5 : f32[1,1,8,8]
  %7 = constant {value=-1e+09} : f32[1,1,8,8]
  %8 = select %3, %6, %7 : f32[1,1,8,8]
  return %8
}

func @fused.softmax(%p0: f32[1,1,8,8]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = le %1, %0 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = reduce_max %p0 {axes=[3]} : f32[1,1,8]
  %5 = broadcast %4 {dims=[0,1,2]} : f32[1,1,8,8]
  %6 = sub %p0, %5 : f32[1,1,8,8]
  %7 = exp %6 : f32[1,1,8,8]
  %8 = reduce_sum %7 {axes=[3]} : f32[1,1,8]
  %9 = broadcast %8 {dims=[0,1,2]} : f32[1,1,8,8]
  %10 = div %7, %9 : f32[1,1,8,8]
  %11 = constant {value=0.0} : f32[1,1,8,8]
  %12 = select %3, %10, %11 : f32[1,1,8,8]
  return %12
}

func @fused.pv(%p0: f32[1,1,8,8], %p1: f32[1,8,1,4]) -> (f32[1,8,1,4]) {
  %0 = dot %p0, %p1 {batch=[[0,1],[0,2]], contract=[[3],[1]]} : f32[1,1,8,4]
  %1 = transpose %0 {perm=[0,2,1,3]} : f32[1,8,1,4]
  return %1
}

func @fused.ds(%p0: f32[1,8,1,4], %p1: f32[1,8,1,4], %p2: f32[1,1,8,8]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = ge %0, %1 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = dot %p0, %p1 {batch=[[0,2],[0,2]], contract=[[3],[3]]} : f32[1,1,8,8]
  %5 = constant {value=0.0} : f32[1,1,8,8]
  %6 = select %3, %4, %5 : f32[1,1,8,8]
  %7 = mul %6, %p2 : f32[1,1,8,8]
  %8 = select %3, %7, %5 : f32[1,1,8,8]
  %9 = constant {value=0.5} : f32[1,1,8,8]
  %10 = mul %8, %9 : f32[1,1,8,8]
  return %10
}

func @fused.leak(%p0: f32[1,8,1,4], %p1: f32[1,8,1,4]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = ge %0, %1 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = dot %p0, %p1 {batch=[[0,2],[0,2]], contract=[[3],[3]]} : f32[1,1,8,8]
  %5 = select %3, %4, %4 : f32[1,1,8,8]
  return %5
}

func @fused.rowfirst(%p0: f32[1,8,1,4], %p1: f32[1,8,1,4]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = ge %0, %1 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = dot %p0, %p1 {batch=[[0,2],[0,2]], contract=[[3],[3]]} : f32[1,1,8,8]
  %5 = reduce_max %4 {axes=[3]} : f32[1,1,8]
  %6 = broadcast %5 {dims=[0,1,2]} : f32[1,1,8,8]
  %7 = constant {value=0.0} : f32[1,1,8,8]
  %8 = select %3, %6, %7 : f32[1,1,8,8]
  return %8
}

func @fused.notzero(%p0: f32[1,1,8,8], %p1: f32[1,1,8,8]) -> (f32[1,1,8,8]) {
  %0 = iota {axis=0} : i32[8,8]
  %1 = iota {axis=1} : i32[8,8]
  %2 = ge %0, %1 : bool[8,8]
  %3 = broadcast %2 {dims=[2,3]} : bool[1,1,8,8]
  %4 = constant {value=0.0} : f32[1,1,8,8]
  %5 = select %3, %p0, %4 : f32[1,1,8,8]
  %6 = mul %5, %p1 : f32[1,1,8,8]
  return %6
}
`

// TestTriangleBands checks the bands the fast dot gets on causal
// attention's products, and that none is found where the masked elements
// matter: a select whose other branch is the product, a reduction before
// the select, a multiplication by a value that may be infinite.
func TestTriangleBands(t *testing.T) {
	f, err := ir.ParseFunc(triText)
	if err != nil {
		t.Fatal(err)
	}
	lower := DotBand{On: true}
	upper := DotBand{On: true, Upper: true}
	want := map[int][3]DotBand{
		0:  {{}, {}, lower}, // scores: C needed where i ≥ j
		2:  {lower, {}, {}}, // P·V: P[i, k] zero unless i ≥ k
		3:  {upper, {}, {}}, // Pᵀ·dO: A[i, k] = P[k, i]
		5:  {{}, {}, lower}, // dP, needed under the mask only
		6:  {lower, {}, {}}, // dS·K (dS scaled by a constant)
		7:  {{}, lower, {}}, // Qᵀ·dS: dS is B, (k, n) = (i, j)
		8:  {},              // select(mask, dot, dot)
		9:  {},              // a reduction of the product first
		10: {},              // %g: no mask
	}
	for i, w := range want {
		v := f.Body[i]
		dot, body, results := v, []*ir.Value{v}, []*ir.Value{v}
		fills := operandFills(v)
		if v.Op == ir.OpFusion {
			body, results = v.Callee.Body, v.Callee.Results
			dot = dotIn(body)
		}
		var s DotSpec
		dotBands(&s, dot, fills, body, results)
		if got := [3]DotBand{s.BandA, s.BandB, s.BandC}; got != w {
			t.Errorf("%%%d: bands %+v, want %+v", i, got, w)
		}
	}
	if _, ok := zeroTriangle(f.Body[11]); ok {
		t.Errorf("%%11: a masked value times an operand is not known to be zero outside the mask")
	}
	if tr, ok := zeroTriangle(f.Body[1]); !ok || tr != (triangle{2, 3, 0}) {
		t.Errorf("%%1: zero outside %v (%v), want i2-i3>=0", tr, ok)
	}
}

// TestPredTriangleRejects checks comparisons that are not triangles of
// the value they mask: a size-1 dim expanded by the broadcast (its index
// is 0 everywhere), and float iotas (inexact past their mantissa).
func TestPredTriangleRejects(t *testing.T) {
	f, err := ir.ParseFunc(`func @f() -> (a: bool[8,8], b: bool[300,300]) {
  %0 = iota {axis=0} : i32[8,1]
  %1 = iota {axis=1} : i32[8,1]
  %2 = ge %0, %1 : bool[8,1]
  %3 = broadcast %2 {dims=[0,1]} : bool[8,8]
  %4 = iota {axis=0} : bf16[300,300]
  %5 = iota {axis=1} : bf16[300,300]
  %6 = ge %4, %5 : bool[300,300]
  return %3, %6
}`)
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := predTriangle(f.Body[2]); !ok || tr != (triangle{0, 1, 0}) {
		t.Errorf("%%2: %v %v, want i0-i1>=0", tr, ok)
	}
	for _, i := range []int{3, 6} {
		if tr, ok := predTriangle(f.Body[i]); ok {
			t.Errorf("%%%d: triangle %v, want none", i, tr)
		}
	}
}
