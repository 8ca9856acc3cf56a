package codegen

import (
	"fmt"
	"os"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	llir "github.com/llir/llvm/ir"
	"golang.org/x/sys/cpu"
)

// Target is what code generation knows about the machine the kernels run
// on, chosen once per compile (TargetFor, HostTarget). The shared emitters
// (elemental, rows, reductions, rng, vmath) read nothing from it but the
// function attributes; the fast dot takes its vector width, register
// budget and blocking from it. A new kind of machine is one more entry in
// the tables below.
type Target struct {
	// Name is what TargetFor was given: a class (x86-64-v3), an LLVM CPU
	// name (znver4) or an architecture (aarch64).
	Name string
	// Arch is the GOARCH the code runs on (amd64, arm64).
	Arch               string
	Triple, DataLayout string
	// CPU is the LLVM "target-cpu" (which instructions the code may use:
	// always a class, so that Features lists them exactly); Tune is the
	// "tune-cpu" (scheduling only), "" for none.
	CPU, Tune string
	// Features are the instruction-set extensions the code needs, named
	// as HostFeatures names them.
	Features []string
	// Vec is the number of f32 lanes of a vector register, Regs the number
	// of vector registers, FMA whether there is a fused multiply-add.
	Vec, Regs int
	FMA       bool
	// L1 and L2 are the per-core data cache sizes in bytes the dot's
	// blocking is derived from.
	L1, L2 int
	// MR×NR is the fast dot's micro-tile (NR a multiple of Vec; its
	// MR·NR/Vec accumulators, NR/Vec vectors of B and one broadcast of A
	// fit in Regs);
	// AltMR, when not 0, is a row count the dot may use instead to
	// balance the parallel parts, at AltSpeed of the main tile's speed.
	MR, NR, AltMR int
	AltSpeed      float64
	// InPlaceBTiles is the most row tiles a part runs on each sliver of
	// B for which the dot reads B in place rather than packing it.
	InPlaceBTiles int
	// Parts is the number of parts runtime/cpu splits each kernel's range
	// into (its pool's size: GOMAXPROCS when the target was made); the dot
	// balances its row tiles over them.
	Parts int
}

// The instruction-set classes. Each x86 class is the one of the same name
// in the x86-64 psABI; aarch64 is Armv8-A with NEON.
var (
	x86Triple = "x86_64-pc-linux-gnu"
	x86Layout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
	armTriple = "aarch64-unknown-linux-gnu"
	armLayout = "e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128-Fn32"

	v2Features = []string{"cx16", "popcnt", "sse2", "sse3", "sse4_1", "sse4_2", "ssse3"}
	v3Features = append(slices.Clone(v2Features), "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe")
	v4Features = append(slices.Clone(v3Features), "avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl")

	classes = map[string]Target{
		"x86-64": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64",
			Features: []string{"sse2"}, Vec: 4, Regs: 16, L1: 32 << 10, L2: 512 << 10, MR: 4, NR: 8},
		"x86-64-v2": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v2",
			Features: v2Features, Vec: 4, Regs: 16, L1: 32 << 10, L2: 512 << 10, MR: 4, NR: 8},
		// 6×16: 12 ymm accumulators, 2 of B, 1 broadcast of A.
		"x86-64-v3": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v3",
			Features: v3Features, Vec: 8, Regs: 16, FMA: true, L1: 32 << 10, L2: 512 << 10,
			MR: 6, NR: 16, AltMR: 4, AltSpeed: 0.94},
		// 12×32: 24 zmm accumulators, 2 of B, 1 broadcast of A.
		"x86-64-v4": {Arch: "amd64", Triple: x86Triple, DataLayout: x86Layout, CPU: "x86-64-v4",
			Features: v4Features, Vec: 16, Regs: 32, FMA: true, L1: 32 << 10, L2: 1 << 20,
			MR: 12, NR: 32, AltMR: 8, AltSpeed: 0.96, InPlaceBTiles: 24},
		// 8×12: 24 q accumulators, 3 of B, A's lanes by element.
		"aarch64": {Arch: "arm64", Triple: armTriple, DataLayout: armLayout, CPU: "generic",
			Features: []string{"asimd", "fp"}, Vec: 4, Regs: 32, FMA: true, L1: 32 << 10, L2: 512 << 10,
			MR: 8, NR: 12},
	}

	// cpuClass maps LLVM CPU names to their class; the name becomes the
	// tune-cpu.
	cpuClass = map[string]string{
		"nehalem": "x86-64-v2", "westmere": "x86-64-v2", "sandybridge": "x86-64-v2", "ivybridge": "x86-64-v2",
		"haswell": "x86-64-v3", "broadwell": "x86-64-v3", "skylake": "x86-64-v3", "alderlake": "x86-64-v3",
		"raptorlake": "x86-64-v3", "meteorlake": "x86-64-v3", "arrowlake": "x86-64-v3", "lunarlake": "x86-64-v3",
		"gracemont": "x86-64-v3", "sierraforest": "x86-64-v3", "znver1": "x86-64-v3", "znver2": "x86-64-v3",
		"znver3": "x86-64-v3", "skylake-avx512": "x86-64-v4", "cascadelake": "x86-64-v4", "cooperlake": "x86-64-v4",
		"cannonlake": "x86-64-v4", "icelake-client": "x86-64-v4", "icelake-server": "x86-64-v4",
		"tigerlake": "x86-64-v4", "rocketlake": "x86-64-v4", "sapphirerapids": "x86-64-v4",
		"emeraldrapids": "x86-64-v4", "graniterapids": "x86-64-v4", "graniterapids-d": "x86-64-v4",
		"znver4": "x86-64-v4", "znver5": "x86-64-v4",
		"generic": "aarch64", "cortex-a72": "aarch64", "cortex-a76": "aarch64", "neoverse-n1": "aarch64",
		"neoverse-n2": "aarch64", "neoverse-v1": "aarch64", "neoverse-v2": "aarch64", "apple-m1": "aarch64",
		"apple-m2": "aarch64", "ampere1": "aarch64",
	}
)

// TargetNames lists every name TargetFor accepts, sorted.
func TargetNames() []string {
	var names []string
	for n := range classes {
		names = append(names, n)
	}
	for n := range cpuClass {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TargetFor returns the target of a class, LLVM CPU or architecture name
// (case-insensitive; "" and "host" mean HostTarget). A named CPU gets its
// class's instructions and cache sizes and its own tuning.
func TargetFor(name string) (*Target, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || n == "host" {
		return HostTarget()
	}
	if n == "arm64" {
		n = "aarch64"
	}
	class, tune := n, ""
	if cl, ok := cpuClass[n]; ok {
		class, tune = cl, n
	}
	if t, ok := classes[class]; ok {
		t.Name, t.Tune, t.Parts = n, tune, goruntime.GOMAXPROCS(0)
		t.Features = slices.Clone(t.Features)
		return &t, nil
	}
	return nil, fmt.Errorf("unknown CPU %q (known: %s)", name, strings.Join(TargetNames(), ", "))
}

var host struct {
	once sync.Once
	t    Target
	err  error
}

// HostTarget is the target of this machine: the best class whose
// instructions the CPU has (golang.org/x/sys/cpu), tuned for the CPU llc-19
// names when it is one of the class's, with the cache sizes Linux reports.
// XLC_CPU, when set, overrides it (any TargetFor name but "host").
func HostTarget() (*Target, error) {
	host.once.Do(func() {
		if name := os.Getenv("XLC_CPU"); name != "" && !strings.EqualFold(name, "host") {
			t, err := TargetFor(name)
			if err != nil {
				host.err = fmt.Errorf("XLC_CPU: %v", err)
				return
			}
			host.t = *t
			return
		}
		have := HostFeatures()
		best := "x86-64"
		if goruntime.GOARCH == "arm64" {
			best = "aarch64"
		}
		for _, c := range []string{"x86-64-v2", "x86-64-v3", "x86-64-v4"} {
			if goruntime.GOARCH == "amd64" && len(Missing(classes[c].Features, have)) == 0 {
				best = c
			}
		}
		t := classes[best]
		t.Name = best
		if err := loadTools(); err == nil && cpuClass[toolInfo.hostCPU] == best {
			t.Name, t.Tune = toolInfo.hostCPU, toolInfo.hostCPU
		}
		t.L1, t.L2 = cacheSize(1, t.L1), cacheSize(2, t.L2)
		host.t = t
	})
	if host.err != nil {
		return nil, host.err
	}
	t := host.t
	t.Parts = goruntime.GOMAXPROCS(0)
	t.Features = slices.Clone(t.Features)
	return &t, nil
}

// cacheSize is the size in bytes of this machine's level-1 data or level-2
// cache as Linux's sysfs reports it for CPU 0, or def.
func cacheSize(level, def int) int {
	for i := 0; i < 8; i++ {
		dir := fmt.Sprintf("/sys/devices/system/cpu/cpu0/cache/index%d/", i)
		lv, err1 := os.ReadFile(dir + "level")
		typ, err2 := os.ReadFile(dir + "type")
		size, err3 := os.ReadFile(dir + "size")
		if err1 != nil || err2 != nil || err3 != nil {
			break
		}
		if strings.TrimSpace(string(lv)) != strconv.Itoa(level) || strings.TrimSpace(string(typ)) == "Instruction" {
			continue
		}
		s := strings.TrimSpace(string(size))
		mul := 1
		switch {
		case strings.HasSuffix(s, "K"):
			mul, s = 1<<10, s[:len(s)-1]
		case strings.HasSuffix(s, "M"):
			mul, s = 1<<20, s[:len(s)-1]
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n * mul
		}
	}
	return def
}

// HostFeatures lists, sorted, the instruction-set extensions of this CPU
// that a Target may need, by the names Target.Features uses.
func HostFeatures() []string {
	var fs []string
	add := func(ok bool, name string) {
		if ok {
			fs = append(fs, name)
		}
	}
	switch goruntime.GOARCH {
	case "amd64":
		x := cpu.X86
		add(true, "sse2")
		add(x.HasSSE3, "sse3")
		add(x.HasSSSE3, "ssse3")
		add(x.HasSSE41, "sse4_1")
		add(x.HasSSE42, "sse4_2")
		add(x.HasPOPCNT, "popcnt")
		add(x.HasCX16, "cx16")
		add(x.HasAVX, "avx")
		add(x.HasAVX2, "avx2")
		add(x.HasBMI1, "bmi1")
		add(x.HasBMI2, "bmi2")
		add(x.HasF16C, "f16c")
		add(x.HasFMA, "fma")
		add(x.HasLZCNT, "lzcnt")
		add(x.HasMOVBE, "movbe")
		add(x.HasAVX512F, "avx512f")
		add(x.HasAVX512BW, "avx512bw")
		add(x.HasAVX512CD, "avx512cd")
		add(x.HasAVX512DQ, "avx512dq")
		add(x.HasAVX512VL, "avx512vl")
		add(x.HasAVX512BF16, "avx512_bf16")
	case "arm64":
		add(true, "fp")
		add(true, "asimd")
	}
	sort.Strings(fs)
	return fs
}

// Missing returns the features of need that have lacks, in need's order.
func Missing(need, have []string) []string {
	var out []string
	for _, f := range need {
		if !slices.Contains(have, f) {
			out = append(out, f)
		}
	}
	return out
}

// Runs reports, with one line naming what is missing when it cannot,
// whether this machine can run code compiled for t.
func (t *Target) Runs() error {
	if t.Arch != goruntime.GOARCH {
		return fmt.Errorf("kernels for %s (%s) cannot run on this %s machine", t.Name, t.Arch, goruntime.GOARCH)
	}
	if m := Missing(t.Features, HostFeatures()); len(m) > 0 {
		return fmt.Errorf("this CPU lacks %s, which kernels for %s use", strings.Join(m, ", "), t.Name)
	}
	return nil
}

// funcAttrs are the attributes that give a function t's instructions and
// tuning.
func (t *Target) funcAttrs() []llir.FuncAttribute {
	as := []llir.FuncAttribute{llir.AttrPair{Key: "target-cpu", Value: t.CPU}}
	if t.Tune != "" {
		as = append(as, llir.AttrPair{Key: "tune-cpu", Value: t.Tune})
	}
	return as
}

// x86 reports whether t is an x86-64 target.
func (t *Target) x86() bool { return t.Arch == "amd64" }

// codeKey is what of t the code of a kernel depends on besides its
// blocking: the instructions, tuning and vector width.
func (t *Target) codeKey() string {
	return fmt.Sprintf("%s %s %s %d %v", t.Arch, t.CPU, t.Tune, t.Vec, t.FMA)
}
