package codegen

import (
	"math"
	"math/rand"
	"testing"

	llir "github.com/llir/llvm/ir"
)

// TestDotSkipsOutsideBandC checks that the dot leaves alone a tile of C
// wholly outside BandC (its elements keep what C held) and computes every
// element inside the band, for a lower band and an upper one off the
// diagonal, on each x86 target the host runs.
func TestDotSkipsOutsideBandC(t *testing.T) {
	gemmTools(t)
	for _, tg := range x86Targets(t) {
		for _, band := range []DotBand{{On: true}, {On: true, Upper: true, D: 3}} {
			s := DotSpec{Batch: 2, M: 50, N: 70, K: 20, TransB: true, BandC: band, Target: tg}
			mod := llir.NewModule()
			ext, err := DotKernel(mod, "k", s)
			if err != nil {
				t.Fatal(err)
			}
			if !canRun(t, tg) {
				continue
			}
			k, err := gemmBuild(t, mod).Kernel("k")
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewSource(3))
			na, nb, nc := gemmSizes(s)
			a, b, c := gemmRand(r, na), gemmRand(r, nb), make([]float32, nc)
			for i := range c {
				c[i] = float32(math.NaN())
			}
			want, bound := gemmRef(s, a, b, nil, nil, c)
			k.CallF32([][]float32{a, b, c}, 0, ext)
			p := s.plan()
			skipped := 0
			for o := range c {
				i, j := o/s.N%s.M, o%s.N
				i0, j0 := i/p.MR*p.MR, j/p.NR*p.NR
				outside := !band.Upper && i0+p.MR-1-j0 < band.D || band.Upper && i0-(j0+p.NR-1) > band.D
				got := float64(c[o])
				switch {
				case outside && !math.IsNaN(got):
					t.Fatalf("%s, band %+v: C[%d, %d] = %g in a tile outside the band", tg.Name, band, i, j, got)
				case outside:
					skipped++
				case !(math.Abs(got-want[o]) <= bound[o]):
					t.Fatalf("%s, band %+v: C[%d, %d] = %g, want %g", tg.Name, band, i, j, got, want[o])
				}
			}
			if skipped == 0 {
				t.Errorf("%s, band %+v: no tile outside the band", tg.Name, band)
			}
		}
	}
}
