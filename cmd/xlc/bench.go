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
)

// backends are the runtime backends selectable with --backend.
var backends = map[string]func() runtime.Backend{
	"interp": func() runtime.Backend { return runtime.Interp{} },
	"cpu":    func() runtime.Backend { return cpu.Backend{} },
}

// compileOptions are the compiler settings a backend wants: fusion on for
// the cpu backend, whose codegen lowers each fusion as one kernel (row
// kernels for softmax, layer norm and cross-entropy; the fast dot with its
// epilogue), which made the GPT train step faster (2-layer d=64: 34k vs 29k
// tokens/s; config S: 10.0k vs 9.1k; on a 2-core AMD EPYC). The interpreter gains
// nothing from fusion, so it stays off there.
func compileOptions(b runtime.Backend, verify bool) driver.Options {
	opt := driver.Options{Passes: passes.Options{Verify: verify}}
	if b.Name() == "cpu" {
		opt.Passes.Fuse, opt.Passes.FusionFuel = true, passes.UnlimitedFuel
	}
	return opt
}

// toolchain reports why the LLVM toolchain the cpu backend needs is
// unusable (one line naming the Debian package), or nil; tests replace it
// to simulate a machine without LLVM.
var toolchain = func() error {
	return codegen.ToolchainError()
}

// backend returns the backend named name. "auto" (the default) is cpu when
// the LLVM toolchain is installed and otherwise the interpreter, after a
// one-line warning on warn saying what it falls back to (doing: "training");
// an explicit cpu without the toolchain is an error naming the package.
func backend(name string, warn io.Writer, doing, cpuName string) (runtime.Backend, error) {
	if cpuName != "" {
		if _, err := codegen.TargetFor(cpuName); err != nil {
			return nil, fmt.Errorf("--cpu: %v", err)
		}
		if name == "interp" {
			return nil, fmt.Errorf("--cpu applies to the cpu backend, not --backend=interp")
		}
	}
	if name == "auto" {
		if toolchain() == nil {
			return cpu.Backend{CPU: cpuName}, nil
		}
		fmt.Fprintf(warn, "xlc: LLVM 19 not found (apt-get install llvm-19); %s on the interpreter\n", doing)
		return backends["interp"](), nil
	}
	mk := backends[name]
	if mk == nil {
		var names []string
		for n := range backends {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("--backend=%s: unknown backend (have: auto, %s)", name, strings.Join(names, ", "))
	}
	if name == "cpu" {
		if err := toolchain(); err != nil {
			return nil, fmt.Errorf("--backend=cpu: %v", err)
		}
		return cpu.Backend{CPU: cpuName}, nil
	}
	return mk(), nil
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout)
	var defs defines
	fs.Var(&defs, "D", "override a config value or train setting: -D key=value (repeatable)")
	steps := fs.Int("steps", 10, "timed steps")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	be := fs.String("backend", "auto", "where the step runs: auto (cpu when LLVM 19 is installed, else interp), cpu or interp")
	fuse := fs.String("fuse", "", "on or off: override the backend's fusion default")
	cpuName := fs.String("cpu", "", cpuFlagHelp)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("xlc bench: want one model file, have %d (see xlc help)", len(pos))
	}
	if *steps < 1 || *warmup < 0 {
		return fmt.Errorf("xlc bench: want --steps >= 1 and --warmup >= 0")
	}
	b, err := backend(*be, stderr, "benchmarking", *cpuName)
	if err != nil {
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
	start := time.Now()
	m, err := driver.Compile(pos[0], src, defs, opt)
	if err != nil {
		return err
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
	where := b.Name()
	if cb, ok := b.(cpu.Backend); ok {
		if t, err := codegen.TargetFor(cb.CPU); err == nil {
			where += " (" + t.Name + ")"
		}
	}
	fmt.Fprintf(stdout, "%s on %s: %.1f tokens/s (median of %d steps, %.4f s/step; compiled and loaded in %.2f s)\n",
		m.Name, where, res.TokensPerSec(), res.Steps, res.Median, loaded.Seconds())
	return nil
}

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
