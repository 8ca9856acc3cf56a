//go:build ignore

// vmath_fit fits the polynomial coefficients of vmath.go and measures the
// float32 algorithms: a near-minimax fit in float64 (Lawson's iteratively
// reweighted least squares on Chebyshev nodes, QR by Gram-Schmidt), the
// coefficients rounded to float32, then a float32 model of vmath.go's code
// (the same operations in the same order) run over every 7th float32 bit
// pattern of each function's interesting range, against Go's float64
// function rounded to float32. Rerun it with
//
//	go run codegen/vmath_fit.go
//
// (a few minutes on 2 cores) and copy the printed bit patterns into vmath.go; a change
// of an interval or degree here must be made in vmath.go too.
package main

import (
	"fmt"
	"math"
	"os"
	"sync"
)

// lsq solves min sum_i u_i (sum_k c_k A[i][k] - b_i)^2 by modified Gram-Schmidt QR.
func lsq(A [][]float64, b, u []float64) []float64 {
	m, n := len(A), len(A[0])
	Q := make([][]float64, n) // columns
	for k := 0; k < n; k++ {
		Q[k] = make([]float64, m)
		for i := 0; i < m; i++ {
			Q[k][i] = A[i][k] * math.Sqrt(u[i])
		}
	}
	y := make([]float64, m)
	for i := range y {
		y[i] = b[i] * math.Sqrt(u[i])
	}
	R := make([][]float64, n)
	for k := range R {
		R[k] = make([]float64, n)
	}
	for k := 0; k < n; k++ {
		for pass := 0; pass < 2; pass++ { // the second pass reorthogonalizes
			for j := 0; j < k; j++ {
				d := 0.0
				for i := 0; i < m; i++ {
					d += Q[j][i] * Q[k][i]
				}
				R[j][k] += d
				for i := 0; i < m; i++ {
					Q[k][i] -= d * Q[j][i]
				}
			}
		}
		nr := 0.0
		for i := 0; i < m; i++ {
			nr += Q[k][i] * Q[k][i]
		}
		nr = math.Sqrt(nr)
		R[k][k] = nr
		for i := 0; i < m; i++ {
			Q[k][i] /= nr
		}
	}
	z := make([]float64, n)
	for k := 0; k < n; k++ {
		for i := 0; i < m; i++ {
			z[k] += Q[k][i] * y[i]
		}
	}
	c := make([]float64, n)
	for k := n - 1; k >= 0; k-- {
		s := z[k]
		for j := k + 1; j < n; j++ {
			s -= R[k][j] * c[j]
		}
		c[k] = s / R[k][k]
	}
	return c
}

// fit finds c minimizing max |w(x) (sum c_k t(x)^k - f(x))| over [lo, hi],
// t(x) the polynomial variable.
func fit(deg int, lo, hi float64, t, f, w func(float64) float64) []float64 {
	const N = 3000
	xs := make([]float64, N)
	for i := range xs {
		xs[i] = (lo+hi)/2 + (hi-lo)/2*math.Cos(math.Pi*(float64(i)+0.5)/N)
	}
	A := make([][]float64, N)
	b := make([]float64, N)
	u := make([]float64, N)
	for i, x := range xs {
		A[i] = make([]float64, deg+1)
		tv := t(x)
		p := 1.0
		for k := 0; k <= deg; k++ {
			A[i][k] = p * w(x)
			p *= tv
		}
		b[i] = f(x) * w(x)
		u[i] = 1.0 / N
	}
	var c []float64
	for it := 0; it < 60; it++ {
		c = lsq(A, b, u)
		s := 0.0
		for i := range xs {
			r := -b[i]
			for k := range c {
				r += c[k] * A[i][k]
			}
			u[i] *= math.Abs(r) + 1e-300
			s += u[i]
		}
		for i := range u {
			u[i] /= s
		}
	}
	mx := 0.0
	for i := range xs {
		r := -b[i]
		for k := range c {
			r += c[k] * A[i][k]
		}
		mx = math.Max(mx, math.Abs(r))
	}
	fmt.Fprintf(os.Stderr, "fit deg %d on [%g,%g]: max weighted error %.3g (2^%.1f)\n", deg, lo, hi, mx, math.Log2(mx))
	return c
}

func f32s(c []float64) []float32 {
	r := make([]float32, len(c))
	for i, v := range c {
		r[i] = float32(v)
	}
	return r
}

func id(x float64) float64 { return x }

func main() {
	// exp: e^r = 1 + r + r^2 P(r), r in [-0.35, 0.35].
	expP := fit(4, -0.35, 0.35, id, func(r float64) float64 {
		s, term := 0.0, 1.0/2
		for k := 0; k < 30; k++ {
			s += term
			term *= r / float64(k+3)
		}
		return s
	}, func(r float64) float64 { return r * r / math.Exp(r) })
	// log: log1p(f) = f - f^2/2 + f^3 P(f), f in [sqrt(1/2)-1, sqrt(2)-1].
	logP := fit(logDeg, math.Sqrt(0.5)-1-1e-6, math.Sqrt2-1+1e-6, id, func(f float64) float64 {
		s, p := 0.0, 1.0
		for k := 3; k < 80; k++ {
			s += p / float64(k) * float64(1-2*((k+1)&1)) // (-1)^(k+1)
			p *= f
		}
		return s
	}, func(f float64) float64 {
		if f == 0 {
			return 0
		}
		return math.Abs(f * f * f / math.Log1p(f))
	})
	// erf small: x P(x^2), x in [0, erfB].
	erfP := fit(erfDeg, 0, erfB, func(x float64) float64 { return x * x }, func(x float64) float64 {
		if x == 0 {
			return 2 / math.SqrtPi
		}
		return math.Erf(x) / x
	}, func(x float64) float64 {
		if x == 0 {
			return 1
		}
		return x / math.Erf(x)
	})
	// erf large: erf = 1 - exp(Q(a)), Q ~ log(erfc(a)), a in [erfB, erfC].
	erfQ := fit(erfQDeg, erfB, erfC, func(a float64) float64 { return a - erfMid }, func(a float64) float64 {
		return math.Log(math.Erfc(a))
	}, func(a float64) float64 { return math.Erfc(a) / math.Erf(a) })

	cs := map[string][]float32{"exp": f32s(expP), "log": f32s(logP), "erf": f32s(erfP), "erfQ": f32s(erfQ)}
	names := map[string]string{"exp": "expPoly", "log": "logPoly", "erf": "erfPoly", "erfQ": "erfcLog"}
	for _, k := range []string{"exp", "log", "erf", "erfQ"} {
		fmt.Printf("%s = []uint32{", names[k])
		for i, v := range cs[k] {
			if i > 0 {
				fmt.Print(", ")
			}
			fmt.Printf("%#08x", math.Float32bits(v))
		}
		fmt.Println("}")
	}
	measure(cs)
}

const (
	logDeg  = 7
	tanhB   = 0.55
	tanhC   = 9.5
	erfDeg  = 7
	erfB    = 0.875
	erfC    = 4.0
	erfQDeg = 10
	erfMid  = erfB
)

var C map[string][]float32

func fma(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }
func bits(x float32) uint32       { return math.Float32bits(x) }
func fbits(u uint32) float32      { return math.Float32frombits(u) }

func horner(c []float32, t float32) float32 {
	p := c[len(c)-1]
	for k := len(c) - 2; k >= 0; k-- {
		p = fma(p, t, c[k])
	}
	return p
}

var (
	log2e = float32(math.Log2E)
	ln2hi = float32(math.Ln2)
	ln2lo = float32(math.Ln2 - float64(float32(math.Ln2)))
	magic = float32(0x1.8p23)
)

// expReduce: e^x = 2^n (1 + q).
func expReduce(x float32) (int32, float32) {
	t := fma(x, log2e, magic)
	n := t - magic
	ni := int32(bits(t) - bits(magic))
	r := fma(-n, ln2hi, x)
	r = fma(-n, ln2lo, r)
	p := horner(C["exp"], r)
	return ni, fma(p, r*r, r)
}

// pow2: 2^(n+k), a normal float.
func pow2(n, k int32) float32 { return fbits(uint32(n+127+k) << 23) }

// expCore: e^x for x in [-104, 89] (two-step scale).
func expCore(x float32) float32 {
	ni, q := expReduce(x)
	y := 1 + q
	n1 := ni >> 1
	n2 := ni - n1
	return y * pow2(n1, 0) * pow2(n2, 0)
}

func expf(x float32) float32 {
	if x > 89 {
		x = 89
	}
	if x < -104 {
		x = -104
	}
	return expCore(x)
}

func logf(x float32) float32 {
	sub := x < 0x1p-126
	xs, eadj := x, float32(0)
	if sub {
		xs, eadj = x*0x1p23, 23
	}
	w2 := bits(xs) - 0x3f3504f3
	e := int32(w2) >> 23
	m := fbits(w2&0x7fffff + 0x3f3504f3)
	ef := float32(e) - eadj
	f := m - 1
	p := horner(C["log"], f)
	q := fma(p, f, -0.5)
	y := fma(q, f*f, f)
	r := fma(ef, ln2hi, fma(ef, ln2lo, y))
	switch {
	case x == float32(math.Inf(1)) || x != x:
		r = x
	case x < 0:
		r = float32(math.NaN())
	case x == 0:
		r = float32(math.Inf(-1))
	}
	return r
}

func tanhf(x float32) float32 {
	a := float32(math.Abs(float64(x)))
	ac := a
	if ac > tanhC {
		ac = tanhC
	}
	ni, q := expReduce(2 * ac)
	s := pow2(ni, -1)
	h := fma(s, q, s-0.5) // (e^2a - 1)/2
	quo := h / (1 + h)
	y := quo
	if a < tanhB {
		y = fma(-h, quo, h)
	}
	return float32(math.Copysign(float64(y), float64(x)))
}

func erff(x float32) float32 {
	a := float32(math.Abs(float64(x)))
	t := a * a
	c := C["erf"]
	c0 := c[0]
	c0lo := float32(2/math.SqrtPi - float64(c0))
	q := fma(t, horner(c[1:], t), c0lo)
	ys := fma(a, c0, a*q)
	ac := a
	if ac > erfC {
		ac = erfC
	}
	e := expCore(horner(C["erfQ"], ac-erfMid))
	yb := 1 - e
	if a < erfB {
		yb = ys
	}
	return float32(math.Copysign(float64(yb), float64(x)))
}

// ulps is the distance in representable floats between a and b.
func ulps(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return 1 << 40
	}
	if a == 0 && b == 0 && bits(a) != bits(b) {
		return 1 << 41
	}
	k := func(x float32) int64 {
		u := int64(bits(x))
		if u&(1<<31) != 0 {
			return -(u & 0x7fffffff)
		}
		return u
	}
	d := k(a) - k(b)
	if d < 0 {
		d = -d
	}
	return d
}

func measure(cs map[string][]float32) {
	C = cs
	fns := []struct {
		name   string
		f      func(float32) float32
		ref    func(float64) float64
		lo, hi float32 // dense range of |x|
	}{
		{"exp", expf, math.Exp, 0, 110},
		{"log", logf, math.Log, 0, float32(math.Inf(1))},
		{"tanh", tanhf, math.Tanh, 0, 12},
		{"erf", erff, math.Erf, 0, 5},
	}
	var wg sync.WaitGroup
	res := make([]string, len(fns))
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var worst int64
			var wx float32
			var fworst float64
			var fx float32
			n := 0
			for _, sign := range []uint32{0, 1 << 31} {
				for u := bits(fn.lo); u <= bits(fn.hi) && u < 0x7f800000; u += step {
					x := fbits(u | sign)
					got := fn.f(x)
					want := float32(fn.ref(float64(x)))
					if d := ulps(got, want); d > worst {
						worst, wx = d, x
					}
					if r := fn.ref(float64(x)); !math.IsNaN(r) && !math.IsInf(float64(float32(r)), 0) && got == got {
						w32 := float32(r)
						ab := math.Abs(float64(w32))
						var ulp float64
						if ab < 0x1p-126 {
							ulp = 0x1p-149
						} else {
							_, e := math.Frexp(ab)
							ulp = math.Ldexp(1, e-24)
						}
						if fe := math.Abs(float64(got)-r) / ulp; fe > fworst {
							fworst, fx = fe, x
						}
					}
					n++
				}
			}
			res[i] = fmt.Sprintf("%s: max %d ulp at %g (%#x) got %g want %g, %d inputs", fn.name, worst, wx, bits(wx), fn.f(wx), float32(fn.ref(float64(wx))), n) + fmt.Sprintf("; fractional %.3f at %g", fworst, fx)
		}()
	}
	wg.Wait()
	for _, r := range res {
		fmt.Println(r)
	}
}

var step uint32 = 7
