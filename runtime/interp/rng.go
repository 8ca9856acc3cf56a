package interp

import (
	"fmt"
	"math"

	"xlc/ir"
)

// Philox returns the Philox4x32-10 block for key and counter: ten rounds of
// the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), as in Random123's
// philox4x32 with R = 10.
func Philox(key [2]uint32, ctr [4]uint32) [4]uint32 {
	k0, k1 := key[0], key[1]
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 += ir.PhiloxW0
			k1 += ir.PhiloxW1
		}
		p0 := uint64(ir.PhiloxM0) * uint64(ctr[0])
		p1 := uint64(ir.PhiloxM1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ k0, uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ k1, uint32(p0),
		}
	}
	return ctr
}

// philoxWords returns the first n 32-bit words of the stream (seed, stream):
// word i is word i%4 of the Philox block with key (seed low, seed high) and
// counter (block i/4 low, high, stream low, high).
func philoxWords(seed, stream uint64, n int) []uint32 {
	key := [2]uint32{uint32(seed), uint32(seed >> 32)}
	out := make([]uint32, n)
	blocks := (n + 3) / 4
	parallelFor(blocks, 16*blocks, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			w := Philox(key, [4]uint32{uint32(b), uint32(uint64(b) >> 32), uint32(stream), uint32(stream >> 32)})
			copy(out[4*b:min(n, 4*b+4)], w[:])
		}
	})
	return out
}

// Uniform returns n floats in [0, 1), deterministic in (seed, stream): value
// i is word i of the Philox stream times 2^-32, so it has 32 random bits and
// does not depend on n.
func Uniform(seed uint64, stream uint64, n int) []float64 {
	w := philoxWords(seed, stream, n)
	u := make([]float64, n)
	for i, x := range w {
		u[i] = float64(x) * 0x1p-32
	}
	return u
}

// Normal returns n standard normal values, deterministic in (seed, stream):
// values 2j and 2j+1 come from uniforms u1 = Uniform[2j], u2 = Uniform[2j+1]
// by Box–Muller, r = sqrt(-2 ln(1-u1)), as r cos(2π u2) and r sin(2π u2).
func Normal(seed uint64, stream uint64, n int) []float64 {
	u := Uniform(seed, stream, n+n%2)
	z := make([]float64, len(u))
	for j := 0; j < len(u); j += 2 {
		r := math.Sqrt(-2 * math.Log(1-u[j]))
		s, c := math.Sincos(2 * math.Pi * u[j+1])
		z[j], z[j+1] = r*c, r*s
	}
	return z[:n]
}

// below1 is the largest value below 1 of each float dtype.
var below1 = map[ir.DType]float64{
	ir.F64:  1 - 0x1p-53,
	ir.F32:  1 - 0x1p-24,
	ir.F16:  1 - 0x1p-11,
	ir.BF16: 1 - 0x1p-8,
}

// rng evaluates rng %key {dist, stream} : t. The key is the seed; element i
// is value i of Uniform or Normal(seed, stream, n) rounded to t's dtype.
// Uniform values that round up to 1 are replaced by the largest value below
// 1, so uniform results stay in [0, 1) in every dtype.
func rng(key *Tensor, attrs ir.Attrs, t ir.Type) (*Tensor, error) {
	seed := uint64(key.I[0])
	stream := uint64(int64(attrs.Int("stream")))
	n := t.Shape.NumElements()
	var v []float64
	dist := attrs.String("dist")
	switch dist {
	case "uniform":
		v = Uniform(seed, stream, n)
	case "normal":
		v = Normal(seed, stream, n)
	default:
		return nil, fmt.Errorf("rng: unknown dist %q", dist)
	}
	out := NewTensor(t)
	for i, x := range v {
		out.F[i] = Round(t.DType, x)
		if dist == "uniform" && out.F[i] >= 1 {
			out.F[i] = below1[t.DType]
		}
	}
	return out, nil
}
