package codegen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unsafe"

	llir "github.com/llir/llvm/ir"
	"github.com/x448/float16"

	"xlc/ir"
	"xlc/runtime/interp"
)

// Tests of dot kernels with half precision operands (DotSpec.AType,
// BType): the cases join gemmCases, and TestDotKernel runs them with
// operands rounded to their types, passed as 2-byte elements.

// gemmHalfRound rounds x in place to the values of d (nothing for f32).
func gemmHalfRound(d ir.DType, x []float32) {
	if dotType(d) == ir.F32 {
		return
	}
	for i, v := range x {
		x[i] = float32(interp.Round(d, float64(v)))
	}
}

// gemmHalfBuf returns the buffer a kernel reads for an operand of type d
// holding x (already rounded to d): x itself for f32, else the encodings
// of x's elements, 2 bytes each, in a float32 slice of half the length.
func gemmHalfBuf(d ir.DType, x []float32) []float32 {
	if dotType(d) == ir.F32 {
		return x
	}
	buf := make([]float32, (len(x)+1)/2)
	h := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(buf))), 2*len(buf))
	for i, v := range x {
		switch d {
		case ir.BF16:
			h[i] = uint16(math.Float32bits(v) >> 16) // exact: v is a bf16 value
		case ir.F16:
			h[i] = float16.Fromfloat32(v).Bits()
		}
	}
	return buf
}

// gemmHalfSpecs are TestDotKernel's specs with half operands: bf16 and
// f16 for A only, B only and both, every transposition, edge tiles and
// several K blocks; strided and batched; banded; with a bias, residuals,
// Alpha and Accumulate; and blockings that would read a half operand in
// place, or pack it by odd slivers and short K blocks.
func gemmHalfSpecs() []DotSpec {
	var ss []DotSpec
	bb, ff := [2]ir.DType{ir.BF16, ir.BF16}, [2]ir.DType{ir.F16, ir.F16}
	aOnly, bOnly := [2]ir.DType{ir.BF16, 0}, [2]ir.DType{ir.F32, ir.F16}
	for _, ty := range [][2]ir.DType{aOnly, {0, ir.BF16}, bb, {ir.F16, ir.F32}, bOnly, ff, {ir.BF16, ir.F16}} {
		shapes := [][4]int{{3, 25, 33, 9}}
		switch ty {
		case bb, ff:
			shapes = append(shapes, [4]int{2, 50, 70, 600})
		case [2]ir.DType{ir.BF16, ir.F16}:
			shapes = [][4]int{{1, 7, 13, 5}}
		}
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, d := range shapes {
					ss = append(ss, DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: tb, AType: ty[0], BType: ty[1]})
				}
			}
		}
	}
	for _, ty := range [][2]ir.DType{bb, ff, aOnly, bOnly} {
		a, b := ty[0], ty[1]
		// Blockings that read A or B in place for f32 (forced to pack
		// here); a bias, residuals, Alpha and Accumulate.
		ss = append(ss,
			DotSpec{Batch: 1, M: 100, N: 77, K: 300, AType: a, BType: b, Blocking: &DotBlocking{PackA: -1, PackB: -1}},
			DotSpec{Batch: 2, M: 35, N: 45, K: 40, TransA: true, LDB: 50, Bias: true, Accumulate: true, AType: a, BType: b,
				Blocking: &DotBlocking{PackA: -1, PackB: -1}},
			DotSpec{Batch: 2, M: 37, N: 70, K: 600, Residuals: 2, Accumulate: true, Alpha: 0.5, AType: a, BType: b},
		)
		if ty == aOnly || ty == bOnly {
			continue
		}
		ss = append(ss,
			DotSpec{Batch: 1, M: 97, N: 161, K: 257, AType: a, BType: b},
			DotSpec{Batch: 1, M: 1, N: 40, K: 3, TransA: true, AType: a, BType: b},
			DotSpec{Batch: 1, M: 128, N: 96, K: 520, TransA: true, AType: a, BType: b},
			DotSpec{Batch: 2, M: 29, N: 45, K: 31, Bias: true, Residuals: 1, AType: a, BType: b},
			DotSpec{Batch: 1, M: 40, N: 64, K: 520, Bias: true, Accumulate: true, TransA: true, Alpha: -0.5, AType: a, BType: b},
			// A packed by 20-row slivers, short K blocks.
			DotSpec{Batch: 1, M: 37, N: 70, K: 300, TransA: true, AType: a, BType: b, Blocking: &DotBlocking{MR: 20, NR: 16, KC: 64}},
			DotSpec{Batch: 3, M: 13, N: 33, K: 9, TransA: true, TransB: true, AType: a, BType: b, Blocking: &DotBlocking{MR: 8, KC: 4}},
			// The residuals with batch dims and C strided.
			DotSpec{Batch: 6, M: 13, N: 37, K: 7, TransA: true, Residuals: 3, LDC: 42, AType: a, BType: b,
				BatchDims: []DotBatchDim{{Size: 3, A: 2 * 7 * 13, B: 7 * 37, C: 2 * 13 * 42}, {Size: 2, A: 7 * 13, B: 0, C: 13 * 42}}},
		)
	}
	// Strided operands with batch dims (attention's [b,s,h,dh] layouts,
	// as in gemmCases, A's rows one element longer), every transposition.
	for _, ty := range [][2]ir.DType{bb, ff, aOnly, bOnly} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				if (ty == aOnly || ty == bOnly) && ta != tb {
					continue
				}
				const bo, h = 3, 2
				m, n, k := 29, 17, 33
				ra, ca, rb, cb := storedDims(m, n, k, ta, tb)
				s := DotSpec{Batch: bo * h, M: m, N: n, K: k, TransA: ta, TransB: tb, AType: ty[0], BType: ty[1],
					LDA: h*ca + 1, LDB: h*cb + 3, LDC: n + 5,
					BatchDims: []DotBatchDim{
						{Size: bo, A: int64(ra * (h*ca + 1)), B: int64(rb * (h*cb + 3)), C: int64(h * m * (n + 5))},
						{Size: h, A: int64(ca), B: int64(cb), C: int64(m * (n + 5))},
					}}
				if ta == tb {
					s.Bias, s.Accumulate, s.Alpha = true, ta, 0.75
				}
				ss = append(ss, s)
			}
		}
	}
	// Bands (causal attention), with several K blocks and edge tiles.
	for i, d := range [][4]int{{2, 128, 128, 32}, {1, 37, 45, 600}} {
		ty := [][2]ir.DType{bb, ff}[i]
		for _, band := range []struct{ a, b, c DotBand }{
			{a: DotBand{On: true}},
			{a: DotBand{On: true, Upper: true, D: -40}},
			{b: DotBand{On: true, Upper: true, D: 3}},
			{c: DotBand{On: true}},
			{a: DotBand{On: true}, b: DotBand{On: true, Upper: true}, c: DotBand{On: true, D: -2}},
		} {
			for _, ta := range []bool{false, true} {
				ss = append(ss, DotSpec{Batch: d[0], M: d[1], N: d[2], K: d[3], TransA: ta, TransB: !ta && d[3] == 32,
					Bias: d[0] == 2 && ta, BandA: band.a, BandB: band.b, BandC: band.c, AType: ty[0], BType: ty[1]})
			}
		}
	}
	return ss
}

// TestDotHalfSpec checks the spec's handling of operand types: the zero
// value is f32, half operands are always packed, the key tells the types
// apart, and other types are refused.
func TestDotHalfSpec(t *testing.T) {
	tg := x86Targets(t)[1]
	base := DotSpec{Batch: 1, M: 100, N: 77, K: 300, Target: tg, Blocking: &DotBlocking{PackA: -1, PackB: -1}}
	f32 := base
	f32.AType, f32.BType = ir.F32, ir.F32
	if base.key() != f32.key() {
		t.Error("the zero types and f32 have different keys")
	}
	if k := f32.keyText(); strings.Contains(k, "Type") || strings.Contains(k, " types ") {
		t.Errorf("the key of an f32 spec names its types: %s", k)
	}
	keys := map[string]string{}
	for _, ty := range [][2]ir.DType{{0, 0}, {ir.BF16, 0}, {0, ir.BF16}, {ir.F16, 0}, {0, ir.F16}, {ir.BF16, ir.F16}, {ir.F16, ir.BF16}, {ir.BF16, ir.BF16}} {
		s := base
		s.AType, s.BType = ty[0], ty[1]
		name := fmt.Sprintf("%v,%v", s.aType(), s.bType())
		if other, ok := keys[s.key()]; ok {
			t.Errorf("%s and %s share a key", name, other)
		}
		keys[s.key()] = name
		p := s.plan()
		if wa, wb := map[bool]int{false: -1, true: 1}[s.halfA()], map[bool]int{false: -1, true: 1}[s.halfB()]; p.PackA != wa || p.PackB != wb {
			t.Errorf("%s: PackA %d, PackB %d; want %d, %d", name, p.PackA, p.PackB, wa, wb)
		}
		if err := s.check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, d := range []ir.DType{ir.F64, ir.I32, ir.Bool} {
		for _, s := range []DotSpec{{Batch: 1, M: 1, N: 1, K: 1, AType: d}, {Batch: 1, M: 1, N: 1, K: 1, BType: d}} {
			if _, err := DotKernel(llir.NewModule(), "k", s); err == nil {
				t.Errorf("types %v, %v: no error", s.AType, s.BType)
			}
		}
	}
}

// TestDotHalfAsm compiles half-operand kernels for the x86-64 classes with
// wide vectors and aarch64 and checks that the packing widens them by
// vectors: bf16 by vpmovzxwd and vpslld (ushll and shll on aarch64), f16
// by vcvtph2ps on ymm or zmm (fcvtl), never by a libcall.
func TestDotHalfAsm(t *testing.T) {
	opt, llc, _ := gemmTools(t)
	for _, tg := range targetsNamed(t, "x86-64-v3", "x86-64-v4", "aarch64") {
		for _, d := range []ir.DType{ir.BF16, ir.F16} {
			t.Run(fmt.Sprintf("%s/%v", tg.Name, d), func(t *testing.T) {
				mod := llir.NewModule()
				for i, tr := range [][2]bool{{false, false}, {true, true}} {
					s := DotSpec{Batch: 1, M: 300, N: 200, K: 520, TransA: tr[0], TransB: tr[1], AType: d, BType: d, Target: tg}
					if _, err := DotKernel(mod, fmt.Sprintf("k%d", i), s); err != nil {
						t.Fatal(err)
					}
				}
				text := assembleText(t, opt, llc, mod.String())
				var want []*regexp.Regexp
				switch {
				case tg.Arch == "arm64" && d == ir.BF16:
					want = []*regexp.Regexp{regexp.MustCompile(`\bshll2?\s+v\d+\.4s, v\d+\.[48]h, #16`)}
				case tg.Arch == "arm64":
					want = []*regexp.Regexp{regexp.MustCompile(`\bfcvtl2?\s+v\d+\.4s, v\d+\.[48]h`)}
				case d == ir.BF16:
					want = []*regexp.Regexp{regexp.MustCompile(`\bvpmovzxwd\s.*%[yz]mm`), regexp.MustCompile(`\bvpslld\s+\$16, %[yz]mm`)}
				default:
					want = []*regexp.Regexp{regexp.MustCompile(`\bvcvtph2ps\s.*%[yz]mm`)}
				}
				for _, re := range want {
					if !re.Match(text) {
						t.Errorf("no %s in the kernels' assembly", re)
					}
				}
				if bytes.Contains(text, []byte("extendhfsf2")) {
					t.Error("the kernels widen f16 by a libcall")
				}
			})
		}
	}
}

// BenchmarkDotHalf times a 1024³ product with f32, bf16 and f16 operands
// (host target) on one thread and on two splitting the range; bf16 is the
// host's choice, bf16widen the kernel that widens bf16 to f32 and bf16dp
// vdpbf16ps's, where the host has AVX-512 BF16 (DotBlocking.BF16Dot):
// go test ./codegen -run X -bench DotHalf.
func BenchmarkDotHalf(b *testing.B) {
	types := []ir.DType{ir.F32, ir.BF16, ir.BF16, ir.BF16, ir.F16}
	names := []string{"f32", "bf16", "bf16widen", "bf16dp", "f16"}
	mod := llir.NewModule()
	specs := make([]DotSpec, len(types))
	for i, d := range types {
		specs[i] = DotSpec{Batch: 1, M: 1024, N: 1024, K: 1024, AType: d, BType: d}
		switch names[i] {
		case "bf16widen":
			specs[i].Blocking = &DotBlocking{BF16Dot: -1}
		case "bf16dp":
			specs[i].Blocking = &DotBlocking{BF16Dot: 1}
			if !specs[i].dpbf16() {
				continue // no AVX-512 BF16
			}
		}
		if _, err := DotKernel(mod, fmt.Sprintf("k%d", i), specs[i]); err != nil {
			b.Fatal(err)
		}
	}
	lib := gemmBuild(b, mod)
	r := rand.New(rand.NewSource(1))
	for i, s := range specs {
		if names[i] == "bf16dp" && !s.dpbf16() {
			continue
		}
		k, err := lib.Kernel(fmt.Sprintf("k%d", i))
		if err != nil {
			b.Fatal(err)
		}
		na, nb, nc := gemmSizes(s)
		x, y := gemmRand(r, na), gemmRand(r, nb)
		gemmHalfRound(s.AType, x)
		gemmHalfRound(s.BType, y)
		bufs := [][]float32{gemmHalfBuf(s.AType, x), gemmHalfBuf(s.BType, y), make([]float32, nc)}
		ext := s.Extent()
		for _, threads := range []int64{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", names[i], threads), func(b *testing.B) {
				for b.Loop() {
					var wg sync.WaitGroup
					for w := range threads {
						wg.Add(1)
						go func() { defer wg.Done(); k.CallF32(bufs, ext*w/threads, ext*(w+1)/threads) }()
					}
					wg.Wait()
				}
				b.ReportMetric(s.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// assembleText runs the LLVM module text through opt -O3 and llc -O3 and
// returns the assembly.
func assembleText(t *testing.T, opt, llc, text string) []byte {
	t.Helper()
	dir := t.TempDir()
	ll, bc, asm := filepath.Join(dir, "k.ll"), filepath.Join(dir, "k.bc"), filepath.Join(dir, "k.s")
	if err := os.WriteFile(ll, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{opt, "-O3", ll, "-o", bc}, {llc, "-O3", bc, "-o", asm}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(c[0]), err, out)
		}
	}
	out, err := os.ReadFile(asm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
