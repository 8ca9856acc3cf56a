package codegen

import (
	"slices"
	"strings"

	llir "github.com/llir/llvm/ir"
	"golang.org/x/sys/cpu"
)

// The x86-64 classes are the psABI's microarchitecture levels.
var (
	x86Triple = "x86_64-pc-linux-gnu"
	x86Layout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"

	v2Features = []string{"cx16", "popcnt", "sse2", "sse3", "sse4_1", "sse4_2", "ssse3"}
	v3Features = append(slices.Clone(v2Features), "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe")
	v4Features = append(slices.Clone(v3Features), "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl")

	x86Classes = map[string]Target{
		"x86-64": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64",
			Features: []string{"sse2"}, Vec: 4, Regs: 16, L1: 32 << 10, L2: 512 << 10, MR: 4, NR: 8},
		"x86-64-v2": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v2",
			Features: v2Features, Vec: 4, Regs: 16, L1: 32 << 10, L2: 512 << 10, MR: 4, NR: 8},
		// 6×16: 12 ymm accumulators, 2 of B, 1 broadcast of A. A weight
		// gradient's transposed A is packed: read in place, the k loop's
		// lines crowd a few L1 sets and, a page apart, no prefetcher
		// crosses them (bench/NOTES.md; not on AMD's cores, tuneFor).
		"x86-64-v3": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v3",
			Features: v3Features, Vec: 8, Regs: 16, FMA: true, L1: 32 << 10, L2: 512 << 10,
			MR: 6, NR: 16, AltMR: 4, AltSpeed: 0.94, PackTransA: true},
		// 12×32: 24 zmm accumulators, 2 of B, 1 broadcast of A.
		"x86-64-v4": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v4",
			Features: v4Features, Vec: 16, Regs: 32, FMA: true, L1: 32 << 10, L2: 1 << 20,
			MR: 12, NR: 32, AltMR: 8, AltSpeed: 0.96, InPlaceBTiles: 24},
	}

	x86CPUs = map[string]string{
		"nehalem": "x86-64-v2", "westmere": "x86-64-v2", "sandybridge": "x86-64-v2", "ivybridge": "x86-64-v2",
		"haswell": "x86-64-v3", "broadwell": "x86-64-v3", "skylake": "x86-64-v3", "alderlake": "x86-64-v3",
		"raptorlake": "x86-64-v3", "meteorlake": "x86-64-v3", "arrowlake": "x86-64-v3", "lunarlake": "x86-64-v3",
		"gracemont": "x86-64-v3", "sierraforest": "x86-64-v3", "znver1": "x86-64-v3", "znver2": "x86-64-v3",
		"znver3": "x86-64-v3", "skylake-avx512": "x86-64-v4", "cascadelake": "x86-64-v4", "cooperlake": "x86-64-v4",
		"cannonlake": "x86-64-v4", "icelake-client": "x86-64-v4", "icelake-server": "x86-64-v4",
		"tigerlake": "x86-64-v4", "rocketlake": "x86-64-v4", "sapphirerapids": "x86-64-v4",
		"emeraldrapids": "x86-64-v4", "graniterapids": "x86-64-v4", "graniterapids-d": "x86-64-v4",
		"znver4": "x86-64-v4", "znver5": "x86-64-v4",
	}

	// cpuExtras are the extensions beyond their class that CPUs have and
	// kernels may use (the dot's vdpbf16ps, dotbf16.go): TargetFor adds
	// them to the CPU's Features. classExtras are those of each class that
	// HostTarget adds when the host has them.
	cpuExtras = map[string][]string{
		"cooperlake": {"avx512_bf16"}, "sapphirerapids": {"avx512_bf16"}, "emeraldrapids": {"avx512_bf16"},
		"graniterapids": {"avx512_bf16"}, "graniterapids-d": {"avx512_bf16"}, "znver4": {"avx512_bf16"},
		"znver5": {"avx512_bf16"},
	}
	classExtras = map[string][]string{"x86-64-v4": {"avx512_bf16"}}

	// intelAVX512 are Intel's AVX-512 cores, whose dot packs B with rows
	// a page or more apart even for few row tiles, and a weight
	// gradient's transposed A (bench/NOTES.md; AMD's Zen 4 measured
	// faster reading both in place).
	intelAVX512 = []string{"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
		"icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids",
		"graniterapids-d"}
)

// tuneFor sets the fields of t that depend on its CPU (Target.Tune) rather
// than its class.
func tuneFor(t *Target) {
	if slices.Contains(intelAVX512, t.Tune) {
		t.InPlaceBRow, t.PackTransA = pageBytes, true
	}
	if strings.HasPrefix(t.Tune, "znver") {
		t.PackTransA = false // Zen 4 measured A in place faster
	}
}

// x86HostFeatures are this x86-64 CPU's extensions, by Target.Features
// names.
func x86HostFeatures() []string {
	x := cpu.X86
	var fs []string
	for _, f := range []struct {
		ok   bool
		name string
	}{
		{true, "sse2"}, {x.HasSSE3, "sse3"}, {x.HasSSSE3, "ssse3"}, {x.HasSSE41, "sse4_1"},
		{x.HasSSE42, "sse4_2"}, {x.HasPOPCNT, "popcnt"}, {x.HasCX16, "cx16"}, {x.HasAVX, "avx"},
		{x.HasAVX2, "avx2"}, {x.HasBMI1, "bmi1"}, {x.HasBMI2, "bmi2"}, {x.HasF16C, "f16c"},
		{x.HasFMA, "fma"}, {x.HasLZCNT, "lzcnt"}, {x.HasMOVBE, "movbe"}, {x.HasAVX512F, "avx512f"},
		{x.HasAVX512BW, "avx512bw"}, {x.HasAVX512CD, "avx512cd"}, {x.HasAVX512DQ, "avx512dq"},
		{x.HasAVX512VL, "avx512vl"}, {x.HasAVX512BF16, "avx512_bf16"},
	} {
		if f.ok {
			fs = append(fs, f.name)
		}
	}
	return fs
}

// hostExtras are the extensions of classExtras[class] that have holds.
func hostExtras(class string, have []string) []string {
	var out []string
	for _, f := range classExtras[class] {
		if slices.Contains(have, f) {
			out = append(out, f)
		}
	}
	return out
}

// x86Lowering is the CPU lowering with glibc's libmvec.
type x86Lowering struct{ cpuLowering }

// tools are -O3 with libmvec as opt's vector library, so that loops
// calling llvm.exp/log/sin/cos.f64 vectorize (calls to _ZGVdN4v_exp and
// the like; libmvec's double functions are within 4 ulps, so the f32
// results, rounded once from double, are libm's all but always).
func (x86Lowering) tools() (opt, link []string) {
	return []string{"-O3", "-vector-library=LIBMVEC-X86"}, []string{"-lmvec", "-lm"}
}

// vectorAttrs make the target's full width legal and preferred: LLVM
// otherwise prefers 256-bit vectors on AVX-512 CPUs.
func (x86Lowering) vectorAttrs(vec int) []llir.FuncAttribute { return widthAttrs(vec) }
