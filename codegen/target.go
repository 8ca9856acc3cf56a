package codegen

import (
	"fmt"
	"maps"
	"os"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	llir "github.com/llir/llvm/ir"
)

// Target is what code generation knows about the machine the kernels run
// on, chosen once per compile (TargetFor, HostTarget). The shared emitters
// (elemental, rows, reductions, rng, vmath) read nothing from it but the
// function attributes, and meet the machine only through its lowering
// (lowering.go); the fast dot takes its vector width, register budget and
// blocking from it. A new kind of machine is one more class in its
// architecture's file (x86.go, aarch64.go), or a new file with its lowering.
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
	// B for which the dot reads B in place rather than packing it;
	// InPlaceBRow, when not 0, the bytes from one row of B to the next
	// from which it packs B anyway.
	InPlaceBTiles, InPlaceBRow int
	// PackTransA makes the dot pack the transposed A of an unbatched
	// product (a weight gradient's activations) rather than read it in
	// place.
	PackTransA bool
	// Parts is the number of parts runtime/cpu splits each kernel's range
	// into (its pool's size: GOMAXPROCS when the target was made); the dot
	// balances its row tiles over them.
	Parts int
	// Emulates, when not "", is the GPU class whose kernels this x86-64
	// target runs on the host (nvptx.go's emulator).
	Emulates string `json:",omitempty"`
	// GPUDot names the tile of a GPU target's dot kernels (gpudot.go),
	// taken from XLC_GPU_DOT when the target is made; "" the default.
	GPUDot string `json:",omitempty"`
	// GPUMMA names the tile of its tensor-core dots (gpumma.go), from
	// XLC_GPU_MMA likewise.
	GPUMMA string `json:",omitempty"`
	// GPUAttention is "strips" when XLC_GPU_ATTENTION says so as the
	// target is made: attention's kernels, forward and backward, by
	// strips of whole rows (gpuattention.go, gpuattention_grad.go) even
	// where flash attention's apply (gpuflash.go, gpuflash_grad.go), to
	// compare the two.
	GPUAttention string `json:",omitempty"`
}

// classes are the instruction-set classes of every architecture
// (x86.go, aarch64.go, nvptx.go); cpuClass maps LLVM CPU names to their class, and
// the name becomes the tune-cpu.
var (
	classes  = joinMaps(x86Classes, armClasses, gpuClasses)
	cpuClass = joinMaps(x86CPUs, armCPUs, gpuNames)
)

func joinMaps[V any](ms ...map[string]V) map[string]V {
	out := map[string]V{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

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
		t.Features = append(slices.Clone(t.Features), cpuExtras[tune]...)
		tuneFor(&t)
		if t.gpuKernels() {
			var err error
			if t.GPUDot, err = tileFromEnv("XLC_GPU_DOT", gpuDotTileFor); err != nil {
				return nil, err
			}
			if t.GPUMMA, err = tileFromEnv("XLC_GPU_MMA", mmaTileFor); err != nil {
				return nil, err
			}
			switch t.GPUAttention = os.Getenv("XLC_GPU_ATTENTION"); t.GPUAttention {
			case "", "strips":
			default:
				return nil, fmt.Errorf("XLC_GPU_ATTENTION=%s: want strips, or unset for flash attention where it applies", t.GPUAttention)
			}
		}
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
// names when it is one of the class's, with the cache sizes Linux reports
// and the extensions of classExtras the CPU has. XLC_CPU, when set,
// overrides it (any TargetFor name but "host").
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
		t.Name, t.Features = best, append(slices.Clone(t.Features), hostExtras(best, have)...)
		if err := loadTools(); err == nil && cpuClass[toolInfo.hostCPU] == best {
			t.Name, t.Tune = toolInfo.hostCPU, toolInfo.hostCPU
			tuneFor(&t)
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
	switch goruntime.GOARCH {
	case "amd64":
		fs = x86HostFeatures()
	case "arm64":
		fs = armHostFeatures()
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
	if t.GPU() {
		return fmt.Errorf("%s is a GPU target: its kernels are PTX, which no backend of this xlc runs yet", t.Name)
	}
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
	key := fmt.Sprintf("%s %s %s %d %v", t.Arch, t.CPU, t.Tune, t.Vec, t.FMA)
	if t.Emulates != "" {
		key += " emulating " + t.Emulates
	}
	if t.GPUDot != "" {
		key += " dot " + t.GPUDot
	}
	return key
}
