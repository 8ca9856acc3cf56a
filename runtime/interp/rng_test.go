package interp

import (
	"math"
	"testing"
)

// TestPhiloxKnownAnswers checks Philox4x32-10 against Random123's known-answer
// test vectors (kat_vectors).
func TestPhiloxKnownAnswers(t *testing.T) {
	tests := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{}, [2]uint32{}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{
			[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
		},
		{
			[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
		},
	}
	for _, tc := range tests {
		if got := Philox(tc.key, tc.ctr); got != tc.want {
			t.Errorf("Philox(%#x, %#x) = %#x, want %#x", tc.key, tc.ctr, got, tc.want)
		}
	}
}

func meanVar(v []float64) (mean, variance float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		variance += (x - mean) * (x - mean)
	}
	return mean, variance / float64(len(v))
}

// TestUniformNormalMoments checks the first two moments on 1e5 samples.
func TestUniformNormalMoments(t *testing.T) {
	const n = 100000
	u := Uniform(42, 7, n)
	for i, x := range u {
		if x < 0 || x >= 1 {
			t.Fatalf("Uniform[%d] = %v, out of [0,1)", i, x)
		}
	}
	m, v := meanVar(u)
	if math.Abs(m-0.5) > 0.005 || math.Abs(v-1.0/12) > 0.002 {
		t.Errorf("uniform mean %v variance %v, want 0.5 and %v", m, v, 1.0/12)
	}
	z := Normal(42, 7, n)
	m, v = meanVar(z)
	if math.Abs(m) > 0.015 || math.Abs(v-1) > 0.02 {
		t.Errorf("normal mean %v variance %v, want 0 and 1", m, v)
	}
}

// TestRandomDeterminism checks that values depend on seed and stream only,
// and that a prefix does not depend on n.
func TestRandomDeterminism(t *testing.T) {
	a, b := Uniform(1, 2, 1001), Uniform(1, 2, 10)
	for i := range b {
		if a[i] != b[i] {
			t.Fatalf("Uniform prefix differs at %d: %v vs %v", i, a[i], b[i])
		}
	}
	na, nb := Normal(1, 2, 7), Normal(1, 2, 8)
	for i := range na {
		if na[i] != nb[i] {
			t.Fatalf("Normal prefix differs at %d", i)
		}
	}
	for _, other := range [][]float64{Uniform(2, 2, 10), Uniform(1, 3, 10), Uniform(1<<32, 2, 10), Uniform(1, 2<<32, 10)} {
		same := 0
		for i := range b {
			if other[i] == b[i] {
				same++
			}
		}
		if same > 1 {
			t.Errorf("different seed/stream gives %d equal values of 10", same)
		}
	}
}
