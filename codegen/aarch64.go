package codegen

// aarch64 is Armv8-A with NEON.
var (
	armTriple = "aarch64-unknown-linux-gnu"
	armLayout = "e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128-Fn32"

	armClasses = map[string]Target{
		// 8×12: 24 q accumulators, 3 of B, A's lanes by element.
		"aarch64": {Arch: "arm64", Triple: armTriple, DataLayout: armLayout, CPU: "generic",
			Features: []string{"asimd", "fp"}, Vec: 4, Regs: 32, FMA: true, L1: 32 << 10, L2: 512 << 10,
			MR: 8, NR: 12},
	}

	armCPUs = map[string]string{
		"generic": "aarch64", "cortex-a72": "aarch64", "cortex-a76": "aarch64", "neoverse-n1": "aarch64",
		"neoverse-n2": "aarch64", "neoverse-v1": "aarch64", "neoverse-v2": "aarch64", "apple-m1": "aarch64",
		"apple-m2": "aarch64", "ampere1": "aarch64",
	}
)

// armHostFeatures are what every arm64 CPU has: floating point and NEON.
func armHostFeatures() []string { return []string{"asimd", "fp"} }

// armLowering is the CPU lowering with libm only (Debian 12's glibc has
// no libmvec for aarch64).
type armLowering struct{ cpuLowering }

func (armLowering) tools() (opt, link []string) { return []string{"-O3"}, []string{"-lm"} }
