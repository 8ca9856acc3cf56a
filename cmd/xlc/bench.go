package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"xlc/codegen"
	"xlc/driver"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/cpu"
	"xlc/runtime/cuda"
)

// backends are the runtime backends selectable with --backend.
var backends = map[string]func() runtime.Backend{
	"interp": func() runtime.Backend { return runtime.Interp{} },
	"cpu":    func() runtime.Backend { return cpu.Backend{} },
	"cuda":   func() runtime.Backend { return cuda.Backend{} },
}

// compileOptions are the compiler settings a backend wants: fusion on for
// the cpu backend, whose codegen lowers each fusion as one kernel (row
// kernels for softmax, layer norm and cross-entropy; the fast dot with its
// epilogue), which made the GPT train step faster (2-layer d=64: 34k vs 29k
// tokens/s; config S: 10.0k vs 9.1k; on a 2-core AMD EPYC), and for the
// cuda backend, whose kernels are the same table (each launch costs, and
// fused values stay out of device memory). The interpreter gains nothing
// from fusion, so it stays off there.
func compileOptions(b runtime.Backend, verify bool) driver.Options {
	opt := driver.Options{Passes: passes.Options{Verify: verify}}
	if b.Name() == "cpu" || b.Name() == "cuda" {
		opt.Passes.Fuse, opt.Passes.FusionFuel, opt.Passes.Attention = true, passes.UnlimitedFuel, true
	}
	if c, ok := b.(cpu.Backend); ok {
		opt.Passes = c.Passes()
		opt.Passes.Verify = verify
	}
	return opt
}

// cudaAvailable reports why the cuda backend cannot run here, or nil
// (cuda.Available); tests replace it to simulate a machine with a GPU.
var cudaAvailable = cuda.Available

// toolchain reports why the LLVM toolchain the cpu backend needs is
// unusable (one line naming the Debian package), or nil; tests replace it
// to simulate a machine without LLVM.
var toolchain = func() error {
	return codegen.ToolchainError()
}

// backend returns the backend named name. "auto" (the default) is cuda
// when gpu allows it (the command runs on cuda), no --cpu is given, the
// LLVM toolchain is installed and cudaAvailable is nil; else cpu when the
// toolchain is installed; otherwise the interpreter, after a one-line
// warning on warn saying what it falls back to (doing: "training"). An
// explicit cpu or cuda that cannot run is a one-line error saying why.
func backend(name string, warn io.Writer, doing, cpuName string, gpu bool) (runtime.Backend, error) {
	if cpuName != "" {
		if _, err := codegen.TargetFor(cpuName); err != nil {
			return nil, fmt.Errorf("--cpu: %v", err)
		}
		if name != "auto" && name != "cpu" {
			return nil, fmt.Errorf("--cpu applies to the cpu backend, not --backend=%s", name)
		}
	}
	if name == "auto" {
		switch {
		case toolchain() != nil:
			fmt.Fprintf(warn, "xlc: LLVM 19 not found (apt-get install llvm-19); %s on the interpreter\n", doing)
			return backends["interp"](), nil
		case gpu && cpuName == "" && cudaAvailable() == nil:
			return cuda.Backend{}, nil
		}
		return cpu.Backend{CPU: cpuName}, nil
	}
	mk := backends[name]
	if mk == nil || name == "cuda" && !gpu {
		var names []string
		for n := range backends {
			if n != "cuda" || gpu {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return nil, fmt.Errorf("--backend=%s: unknown backend (have: auto, %s)", name, strings.Join(names, ", "))
	}
	switch name {
	case "cpu":
		if err := toolchain(); err != nil {
			return nil, fmt.Errorf("--backend=cpu: %v", err)
		}
		return cpu.Backend{CPU: cpuName}, nil
	case "cuda":
		if err := cudaAvailable(); err != nil {
			return nil, fmt.Errorf("--backend=cuda: %v", err)
		}
		if err := toolchain(); err != nil {
			return nil, fmt.Errorf("--backend=cuda: %v", err)
		}
	}
	return mk(), nil
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout)
	var defs defines
	fs.Var(&defs, "D", "override a config value or train setting: -D key=value (repeatable)")
	steps := fs.Int("steps", 10, "timed steps")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	be := fs.String("backend", "auto", backendFlagHelp)
	fuse := fs.String("fuse", "", "on or off: override the backend's fusion default")
	cpuName := fs.String("cpu", "", cpuFlagHelp)
	bundleFile := fs.String("bundle", "", "time a bundle written by xlc build -o FILE.xlc (CPU or GPU kernels) instead of a model file")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if *steps < 1 || *warmup < 0 {
		return fmt.Errorf("xlc bench: want --steps >= 1 and --warmup >= 0")
	}
	var b runtime.Backend
	var m *driver.Model
	start := time.Now()
	if *bundleFile != "" {
		switch {
		case *cpuName != "":
			return fmt.Errorf("xlc bench: --cpu does not apply to a bundle, whose kernels are compiled already")
		case *fuse != "":
			return fmt.Errorf("xlc bench: --fuse does not apply to a bundle, whose kernels are compiled already")
		}
		if b, m, err = loadBundle(*bundleFile, pos, defs, *be, 0); err != nil {
			return fmt.Errorf("xlc bench: %v", err)
		}
	} else {
		if len(pos) != 1 {
			return fmt.Errorf("xlc bench: want one model file, have %d (see xlc help)", len(pos))
		}
		if b, err = backend(*be, stderr, "benchmarking", *cpuName, true); err != nil {
			return fmt.Errorf("xlc bench: %v", err)
		}
		src, err := os.ReadFile(pos[0])
		if err != nil {
			return fmt.Errorf("xlc bench: %v", err)
		}
		opt := compileOptions(b, false)
		switch *fuse {
		case "":
		case "on":
			opt.Passes.Fuse, opt.Passes.FusionFuel = true, passes.UnlimitedFuel
		case "off":
			opt.Passes.Fuse = false
		default:
			return fmt.Errorf("xlc bench: --fuse=%s: want on or off", *fuse)
		}
		if m, err = driver.Compile(pos[0], src, defs, opt); err != nil {
			return err
		}
	}
	exe, err := b.Load(m.Step)
	if err != nil {
		return fmt.Errorf("xlc bench: %v", err)
	}
	loaded := time.Since(start)
	// Bench loads the step itself: hand it the executable just loaded, so
	// the module is lowered and linked once. Bench closes it.
	res, err := runtime.Bench(&loadedBackend{Backend: b, f: m.Step, exe: exe}, m.Step, runtime.BuiltinText(), *warmup, *steps)
	if err != nil {
		return fmt.Errorf("xlc bench: %v", err)
	}
	fmt.Fprintf(stdout, "%s on %s: %.1f tokens/s (median of %d steps, %.4f s/step; compiled and loaded in %.2f s)\n",
		m.Name, where(b, *bundleFile), res.TokensPerSec(), res.Steps, res.Median, loaded.Seconds())
	return nil
}

// where names the backend a command runs on and its target: "cpu
// (znver4)", "cuda (sm_90, NVIDIA H100 80GB HBM3)", "cuda (bundle m.xlc,
// sm_90)".
func where(b runtime.Backend, bundleFile string) string {
	var what []string
	if bundleFile != "" {
		what = append(what, "bundle "+bundleFile)
	}
	switch b := b.(type) {
	case cpu.Backend:
		if t, err := codegen.TargetFor(b.CPU); err == nil {
			what = append(what, t.Name)
		}
	case cpu.Prebuilt:
		what = append(what, b.Target.Name)
	case cuda.Backend:
		if t, err := cuda.Target(b.GPU); err == nil {
			what = append(what, t.Name)
		}
	case cuda.Prebuilt:
		what = append(what, b.Target.Name)
	}
	if len(what) == 0 {
		return b.Name()
	}
	return b.Name() + " (" + strings.Join(what, ", ") + ")"
}

// backendFlagHelp describes --backend of train and bench.
const backendFlagHelp = "where the step runs: auto (cuda with a GPU and a cuda-built xlc, else cpu when LLVM 19 is installed, else interp), cuda, cpu or interp"

// loadedBackend is b whose first Load of f returns exe, already loaded;
// other loads go to b.
type loadedBackend struct {
	runtime.Backend
	f   *ir.Func
	exe runtime.Executable
}

func (l *loadedBackend) Load(f *ir.Func) (runtime.Executable, error) {
	if f == l.f && l.exe != nil {
		exe := l.exe
		l.exe = nil
		return exe, nil
	}
	return l.Backend.Load(f)
}
