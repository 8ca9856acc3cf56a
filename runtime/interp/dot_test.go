package interp

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"xlc/ir"
)

// eachIndex calls fn with every multi-index of shape, in row-major order.
func eachIndex(shape []int, fn func(idx []int)) {
	for _, d := range shape {
		if d == 0 {
			return
		}
	}
	idx := make([]int, len(shape))
	for {
		fn(idx)
		k := len(shape) - 1
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

func offset(shape, idx []int) int {
	off := 0
	for i, d := range shape {
		off = off*d + idx[i]
	}
	return off
}

func pick(shape, dims []int) []int {
	out := make([]int, len(dims))
	for i, d := range dims {
		out[i] = shape[d]
	}
	return out
}

// naiveDot is dot_general written as the definition: one sum per result
// element over the contracting multi-index.
func naiveDot(a, b *Tensor, lb, rb, lc, rc []int) []float64 {
	sa, sb := a.Type.Shape, b.Type.Shape
	lf, rf := ir.DotFree(len(sa), lb, lc), ir.DotFree(len(sb), rb, rc)
	outShape := append(append(pick(sa, lb), pick(sa, lf)...), pick(sb, rf)...)
	var out []float64
	ai, bi := make([]int, len(sa)), make([]int, len(sb))
	eachIndex(outShape, func(o []int) {
		for i := range lb {
			ai[lb[i]], bi[rb[i]] = o[i], o[i]
		}
		for i, d := range lf {
			ai[d] = o[len(lb)+i]
		}
		for i, d := range rf {
			bi[d] = o[len(lb)+len(lf)+i]
		}
		var s float64
		eachIndex(pick(sa, lc), func(c []int) {
			for i := range lc {
				ai[lc[i]], bi[rc[i]] = c[i], c[i]
			}
			s += a.F[offset(sa, ai)] * b.F[offset(sb, bi)]
		})
		out = append(out, s)
	})
	return out
}

func randTensor(r *rand.Rand, t ir.Type) *Tensor {
	v := make([]float64, t.Shape.NumElements())
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return FromFloats(t, v)
}

// TestDotRandom compares dot with the naive definition on random shapes with
// batch dims, several contracting dims and permuted operand layouts.
func TestDotRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 60; trial++ {
		nb, nc, nl, nr := r.IntN(3), r.IntN(3), r.IntN(3), r.IntN(3)
		size := func() int { return 1 + r.IntN(4) }
		if trial%10 == 9 { // large enough to run in parallel
			nb, nc, nl, nr = 1, 1, 1, 1
			size = func() int { return 20 + r.IntN(30) }
		}
		batch, contract := make([]int, nb), make([]int, nc)
		for i := range batch {
			batch[i] = size()
		}
		for i := range contract {
			contract[i] = size()
		}
		// Each operand's dims are its roles in random order.
		layout := func(nfree int) (shape, bdims, cdims []int) {
			n := nb + nc + nfree
			perm := r.Perm(n)
			shape = make([]int, n)
			for i := range nb {
				shape[perm[i]] = batch[i]
				bdims = append(bdims, perm[i])
			}
			for i := range nc {
				shape[perm[nb+i]] = contract[i]
				cdims = append(cdims, perm[nb+i])
			}
			for i := nb + nc; i < n; i++ {
				shape[perm[i]] = size()
			}
			return
		}
		sa, lb, lc := layout(nl)
		sbh, rb, rc := layout(nr)
		for _, d := range []ir.DType{ir.F64, ir.F32} {
			bld := ir.NewBuilder("dot")
			x := bld.Param("a", ir.Type{DType: d, Shape: sa}, nil)
			y := bld.Param("b", ir.Type{DType: d, Shape: sbh}, nil)
			bld.Return(nil, bld.Dot(x, y, lb, rb, lc, rc))
			if err := bld.Err(); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			a, b := randTensor(r, x.Type), randTensor(r, y.Type)
			res, err := Run(bld.F, []*Tensor{a, b})
			if err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			want := naiveDot(a, b, lb, rb, lc, rc)
			if len(want) != res[0].Len() {
				t.Fatalf("trial %d: %d elements, want %d", trial, res[0].Len(), len(want))
			}
			for i, w := range want {
				w = Round(d, w)
				if g := res[0].F[i]; math.Abs(g-w) > 1e-12*(1+math.Abs(w)) && g != w {
					t.Fatalf("trial %d %v: a%v b%v batch %v/%v contract %v/%v: element %d = %v, want %v",
						trial, d, sa, sbh, lb, rb, lc, rc, i, g, w)
				}
			}
		}
	}
}

// TestParallelDeterminism checks that dot and reductions give bit-identical
// results on one core and on all of them.
func TestParallelDeterminism(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a := randTensor(r, ir.T(ir.F32, 3, 100000))
	m1, m2 := randTensor(r, ir.T(ir.F32, 64, 96)), randTensor(r, ir.T(ir.F32, 96, 80))
	dotAttrs := ir.Attrs{}.Set("batch", [][]int{{}, {}}).Set("contract", [][]int{{1}, {0}})
	eval := func() []*Tensor {
		var out []*Tensor
		for _, c := range []struct {
			op   ir.Op
			axes []int
			t    ir.Type
		}{
			{ir.OpReduceSum, []int{1}, ir.T(ir.F32, 3)},
			{ir.OpReduceSum, []int{0, 1}, ir.T(ir.F32)},
			{ir.OpReduceSum, []int{0}, ir.T(ir.F32, 100000)},
			{ir.OpReduceMax, []int{1}, ir.T(ir.F32, 3)},
		} {
			x, err := Eval(c.op, ir.Attrs{}.Set("axes", c.axes), c.t, []*Tensor{a})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, x)
		}
		d, err := Eval(ir.OpDot, dotAttrs, ir.T(ir.F32, 64, 80), []*Tensor{m1, m2})
		if err != nil {
			t.Fatal(err)
		}
		return append(out, d)
	}
	many := eval()
	old := runtime.GOMAXPROCS(1)
	one := eval()
	runtime.GOMAXPROCS(old)
	for i := range many {
		for j := range many[i].F {
			if many[i].F[j] != one[i].F[j] {
				t.Fatalf("result %d element %d: %v on %d cores, %v on one", i, j, many[i].F[j], old, one[i].F[j])
			}
		}
	}
	// The full sum agrees with a plain float64 sum to rounding.
	var s float64
	for _, v := range a.F {
		s += v
	}
	if got := many[1].F[0]; math.Abs(got-s) > 1e-6*math.Abs(s)+1e-3 {
		t.Errorf("reduce_sum = %v, plain sum %v", got, s)
	}
}

// BenchmarkDot measures a 256x256x256 f32 matmul.
func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	x, y := randTensor(r, ir.T(ir.F32, 256, 256)), randTensor(r, ir.T(ir.F32, 256, 256))
	attrs := ir.Attrs{}.Set("batch", [][]int{{}, {}}).Set("contract", [][]int{{1}, {0}})
	for b.Loop() {
		if _, err := Eval(ir.OpDot, attrs, ir.T(ir.F32, 256, 256), []*Tensor{x, y}); err != nil {
			b.Fatal(err)
		}
	}
}
