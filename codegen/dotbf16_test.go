package codegen

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	llir "github.com/llir/llvm/ir"

	"xlc/ir"
)

// Tests of the vdpbf16ps dot (dotbf16.go): which targets have it, which
// specs take it, and its kernels against the float64 product.

// bf16Target is sapphirerapids (AVX-512 BF16) with two parts, as
// x86Targets has them.
func bf16Target(t testing.TB) *Target {
	tg, err := TargetFor("sapphirerapids")
	if err != nil {
		t.Fatal(err)
	}
	tg.Parts = 2
	return tg
}

// TestDotBF16Target checks which targets have AVX-512 BF16: the CPUs that
// have it, not the x86-64-v4 class, and the host when its CPU has it.
func TestDotBF16Target(t *testing.T) {
	for name, want := range map[string]bool{
		"sapphirerapids": true, "cooperlake": true, "znver4": true, "znver5": true, "graniterapids": true,
		"x86-64-v4": false, "icelake-server": false, "skylake-avx512": false, "x86-64-v3": false, "znver3": false,
		"aarch64": false,
	} {
		tg, err := TargetFor(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.hasAVX512BF16(); got != want {
			t.Errorf("%s: AVX-512 BF16 %v, want %v (features %v)", name, got, want, tg.Features)
		}
	}
	host, err := HostTarget()
	if err != nil {
		t.Fatal(err)
	}
	hostHas := slices.Contains(HostFeatures(), "avx512_bf16")
	switch cpu := os.Getenv("XLC_CPU"); {
	case cpu != "" && !strings.EqualFold(cpu, "host"):
		t.Logf("XLC_CPU=%s: the host target is %s (AVX-512 BF16 %v)", cpu, host.Name, host.hasAVX512BF16())
	case host.CPU == "x86-64-v4" && host.hasAVX512BF16() != hostHas:
		t.Errorf("host %s: AVX-512 BF16 %v, the CPU has it: %v", host.Name, host.hasAVX512BF16(), hostHas)
	}
	if err := host.Runs(); err != nil {
		t.Errorf("the host target: %v", err)
	}
}

// TestDotBF16Spec checks which specs take vdpbf16ps (bf16 A and B on a
// BF16 target, by default not on Sapphire Rapids, as Blocking.BF16Dot
// says otherwise) and that the key tells them from the widening kernels
// of a target that differs only by the feature.
func TestDotBF16Spec(t *testing.T) {
	spr := bf16Target(t)
	v4 := x86Targets(t)[2]
	v4bf := *v4
	v4bf.Features = append(slices.Clone(v4.Features), "avx512_bf16")
	if v4bf.codeKey() != v4.codeKey() {
		t.Fatal("the feature changes the target's code key: the test needs the same")
	}
	zen4, err := TargetFor("znver4")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b  ir.DType
		tg    *Target
		force int
		want  bool
	}{
		{ir.BF16, ir.BF16, spr, 1, true}, {ir.BF16, ir.BF16, spr, 0, false}, {ir.BF16, ir.BF16, spr, -1, false},
		{ir.BF16, ir.BF16, zen4, 0, true}, {ir.BF16, ir.BF16, zen4, -1, false},
		{ir.BF16, ir.BF16, &v4bf, 0, true}, {ir.BF16, ir.BF16, v4, 1, false},
		{ir.BF16, 0, spr, 1, false}, {0, ir.BF16, spr, 1, false}, {ir.F16, ir.F16, spr, 1, false},
		{ir.BF16, ir.F16, zen4, 1, false}, {0, 0, zen4, 1, false},
	} {
		s := DotSpec{Batch: 1, M: 100, N: 77, K: 300, AType: c.a, BType: c.b, Target: c.tg, Blocking: &DotBlocking{BF16Dot: c.force}}
		name := fmt.Sprintf("%v·%v on %s, BF16Dot %d", s.aType(), s.bType(), c.tg.Name, c.force)
		if got := s.dpbf16(); got != c.want {
			t.Errorf("%s: vdpbf16ps %v, want %v", name, got, c.want)
		}
		other := s
		other.Target = v4
		if strings.Contains(s.keyText(), "vdpbf16ps") != c.want || c.tg == &v4bf && s.key() == other.key() {
			t.Errorf("%s: key %s", name, s.keyText())
		}
		if strings.Contains(s.keyText(), "BF16Dot") {
			t.Errorf("%s: the key names BF16Dot: %s", name, s.keyText())
		}
		if got := s.PackBytes(); got <= 0 || got > 1200<<10 {
			t.Errorf("%s: %d bytes of packing buffers", name, got)
		}
	}
	if f32 := (DotSpec{Batch: 1, M: 100, N: 77, K: 300, Target: &v4bf}); f32.key() != (DotSpec{Batch: 1, M: 100, N: 77, K: 300, Target: v4}).key() {
		t.Error("an f32 spec's key depends on AVX-512 BF16")
	}
}

// bf16Cases are the specs the vdpbf16ps kernels are tested with: every
// bf16·bf16 case of gemmCases, and more with odd K and K blocks, edge
// tiles, unaligned pairs, other tiles, and bands whose ranges start and
// end inside a pair.
func bf16Cases() []gemmCase {
	var cs []gemmCase
	for _, c := range gemmCases() {
		if c.s.aType() == ir.BF16 && c.s.bType() == ir.BF16 {
			cs = append(cs, c)
		}
	}
	var ss []DotSpec
	bf := func(s DotSpec) DotSpec { s.AType, s.BType = ir.BF16, ir.BF16; return s }
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, d := range [][4]int{
				{1, 1, 1, 1}, {1, 7, 13, 5}, {3, 13, 7, 2}, {1, 12, 32, 4}, {1, 25, 33, 9},
				{1, 97, 161, 257}, {1, 1, 40, 3}, {2, 50, 70, 601}, {1, 24, 64, 64},
			} {
				ss = append(ss, DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: tb})
			}
			// Odd K blocks (301 by 61), other tiles.
			ss = append(ss,
				DotSpec{Batch: 1, M: 37, N: 70, K: 301, TransA: ta, TransB: tb, Blocking: &DotBlocking{KC: 64}},
				DotSpec{Batch: 1, M: 45, N: 50, K: 99, TransA: ta, TransB: tb, Blocking: &DotBlocking{MR: 20, NR: 16, KC: 33}},
				DotSpec{Batch: 2, M: 9, N: 100, K: 70, TransA: ta, TransB: tb, Blocking: &DotBlocking{MR: 4, NR: 48}},
			)
		}
	}
	// Odd leading dimensions and batch strides: pairs at odd offsets.
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			m, n, k := 29, 37, 67
			ra, ca, rb, cb := storedDims(m, n, k, ta, tb)
			ss = append(ss, DotSpec{Batch: 6, M: m, N: n, K: k, TransA: ta, TransB: tb,
				LDA: 2*ca + 1, LDB: 2*cb + 3, LDC: n + 5, Bias: true, Residuals: 1, Alpha: 0.75, Accumulate: ta,
				BatchDims: []DotBatchDim{
					{Size: 3, A: int64(ra*(2*ca+1)) + 1, B: int64(rb * (2*cb + 3)), C: int64(2 * m * (n + 5))},
					{Size: 2, A: int64(ca), B: int64(cb), C: int64(m * (n + 5))},
				}})
		}
	}
	// Bands with odd offsets: ranges that start and end mid-pair, over
	// several K blocks.
	for _, d := range [][4]int{{1, 37, 45, 601}, {2, 64, 64, 64}} {
		for _, band := range []struct{ a, b, c DotBand }{
			{a: DotBand{On: true}},
			{a: DotBand{On: true, D: 5}},
			{a: DotBand{On: true, Upper: true, D: -3}},
			{b: DotBand{On: true, D: 1}},
			{b: DotBand{On: true, Upper: true, D: 3}},
			{c: DotBand{On: true, Upper: true, D: 1}},
			{a: DotBand{On: true, D: 1}, b: DotBand{On: true, Upper: true}, c: DotBand{On: true, D: -3}},
		} {
			for _, ta := range []bool{false, true} {
				ss = append(ss, DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: !ta,
					Bias: ta, Residuals: d[0] - 1, BandA: band.a, BandB: band.b, BandC: band.c,
					Blocking: &DotBlocking{KC: 2*d[3]/5 + 1}})
			}
		}
	}
	for _, s := range ss {
		s = bf(s)
		cs = append(cs, gemmCase{gemmName(s), s})
	}
	// Sapphire Rapids, the host, takes vdpbf16ps only when asked to.
	for i := range cs {
		b := DotBlocking{}
		if cs[i].s.Blocking != nil {
			b = *cs[i].s.Blocking
		}
		b.BF16Dot = 1
		cs[i].s.Blocking = &b
	}
	return cs
}

// TestDotBF16Kernel runs the vdpbf16ps kernels of bf16Cases on
// sapphirerapids (BF16Dot 1) against the float64 product (within TestDotKernel's
// 1e-4·Σ|terms|: the products of bf16 are exact in f32; vdpbf16ps's f32
// sums, rounded to nearest even and flushing denormals, err like the FMA
// kernel's, and the operands have no denormals).
func TestDotBF16Kernel(t *testing.T) {
	gemmTools(t)
	tg := bf16Target(t)
	cases := bf16Cases()
	for _, c := range cases {
		c.s.Target = tg
		if !c.s.dpbf16() {
			t.Fatalf("%s: not a vdpbf16ps kernel", c.name)
		}
	}
	if !slices.Contains(HostFeatures(), "avx512_bf16") {
		t.Skip("this CPU has no AVX-512 BF16 (avx512_bf16): the vdpbf16ps kernels cannot run here")
	}
	testDotCases(t, tg, cases)
}

// TestDotBF16Asm checks that bf16·bf16 kernels for znver4, and for
// sapphirerapids when asked to, multiply by vdpbf16ps, with A's pairs
// broadcast from memory, and that those for x86-64-v4 (even when asked
// to) and sapphirerapids by default, f32 ones and their IR's attributes
// do not use it.
func TestDotBF16Asm(t *testing.T) {
	opt, llc, _ := gemmTools(t)
	spr, v4 := bf16Target(t), x86Targets(t)[2]
	zen4, err := TargetFor("znver4")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tg    *Target
		ty    ir.DType
		force int
		want  bool
	}{{zen4, ir.BF16, 0, true}, {spr, ir.BF16, 1, true}, {spr, ir.BF16, 0, false}, {v4, ir.BF16, 1, false}, {zen4, ir.F32, 1, false}} {
		t.Run(fmt.Sprintf("%s/%v/%d", c.tg.Name, c.ty, c.force), func(t *testing.T) {
			mod := llir.NewModule()
			for i, tr := range [][2]bool{{false, false}, {true, true}} {
				s := DotSpec{Batch: 1, M: 300, N: 200, K: 521, TransA: tr[0], TransB: tr[1], AType: c.ty, BType: c.ty, Target: c.tg,
					Blocking: &DotBlocking{BF16Dot: c.force}}
				if _, err := DotKernel(mod, fmt.Sprintf("k%d", i), s); err != nil {
					t.Fatal(err)
				}
			}
			text := mod.String()
			if strings.Contains(text, `"target-features"="+avx512bf16"`) != c.want {
				t.Errorf("+avx512bf16 in the IR's attributes: %v, want %v", !c.want, c.want)
			}
			out := assembleText(t, opt, llc, text)
			dp := regexp.MustCompile(`\bvdpbf16ps\s+\S*\{1to16\}, %zmm\d+, %zmm\d+`)
			if n := len(dp.FindAll(out, -1)); (n > 0) != c.want || strings.Contains(string(out), "vdpbf16ps") != c.want {
				t.Errorf("%d vdpbf16ps with a broadcast of A's pair in the assembly, want some: %v", n, c.want)
			}
		})
	}
}

// TestConvertBF16Asm checks that a loop kernel rounding f32 to bf16 does
// so by vcvtneps2bf16 on 512-bit vectors for znver4 (AVX-512 BF16), with
// the integer rounding kept only for denormals (TestHalfRounding in
// runtime/cpu checks the bits on such a host), and by integer rounding
// alone for x86-64-v4 and x86-64-v3.
func TestConvertBF16Asm(t *testing.T) {
	opt, llc, _ := gemmTools(t)
	zen4, err := TargetFor("znver4")
	if err != nil {
		t.Fatal(err)
	}
	ts := x86Targets(t)
	src := `func @f(%x: f32[64,256], %y: f32[64,256]) -> (r: bf16[64,256]) {
  %0 = mul %x, %y : f32[64,256]
  %1 = convert %0 : bf16[64,256]
  return %1
}`
	for _, c := range []struct {
		tg   *Target
		want bool
	}{{zen4, true}, {ts[2], false}, {ts[1], false}} {
		p := compileTextFor(t, src, c.tg)
		asm := assembleText(t, opt, llc, p.LL)
		vec := regexp.MustCompile(`\bvcvtneps2bf16\s+\S*%zmm\d+, %ymm\d+`).Match(asm)
		if strings.Contains(p.LL, "to bfloat") != c.want || vec != c.want {
			t.Errorf("%s: fptrunc to bfloat in the IR %v, vcvtneps2bf16 on zmm %v, want %v", c.tg.Name, strings.Contains(p.LL, "to bfloat"), vec, c.want)
		}
	}
}
