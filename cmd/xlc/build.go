package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"xlc/bundle"
	"xlc/codegen"
	"xlc/driver"
	"xlc/internal/atomicfile"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime/cpu"
	"xlc/runtime/cuda"
)

func cmdBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", stdout)
	var defs defines
	fs.Var(&defs, "D", "override a config value: -D key=value (repeatable)")
	emit := fs.String("emit", "ir", "what to write: ir, ll (the kernels' LLVM module for --cpu's or --gpu's target, fused), asm (its assembly) or ptx (asm for --gpu, default sm_80)")
	which := fs.String("func", "train_step", "which function: train_step (forward, backward, optimizer as one graph) or forward")
	out := fs.String("o", "", "write the output to this file (atomically) instead of standard output")
	verify := fs.Bool("verify", false, "verify the IR after every pass")
	dumpAfter := fs.String("dump-after", "", "write the IR after each pass whose name matches this regexp")
	dumpDir := fs.String("dump-dir", ".", "folder for --dump-after files")
	fuse := fs.Bool("fuse", false, "run the fusion pass: group instructions into kernels (fused functions)")
	fuel := fs.Int("fusion-fuel", passes.UnlimitedFuel, "take only the first N fusion decisions (-1: all), to bisect a miscompile")
	asBundle := fs.Bool("bundle", false, "write a bundle for xlc train --bundle (implied by -o FILE.xlc)")
	targetName := fs.String("target", "cpu", "the backend the kernels are for: cpu (native code for --cpu) or cuda (PTX for --gpu)")
	cpuName := fs.String("cpu", "", "with --bundle, --emit=ll or --emit=asm: "+cpuFlagHelp)
	gpuName := fs.String("gpu", "", "with --target cuda or --emit=ll, asm or ptx: the GPU the kernels are for: sm_80, sm_90, a100, h100 or h200 (default: this machine's GPU, else sm_80)")
	var debug debugFlags
	fs.Var(&debug, "d", "print a pass's decisions to standard error: -d fusion, -d precision")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("xlc build: want one model file, have %d (see xlc help)", len(pos))
	}
	if *emit != "ir" && *emit != "ll" && *emit != "asm" && *emit != "ptx" {
		return fmt.Errorf("xlc build: --emit=%s: want ir, ll, asm or ptx", *emit)
	}
	target := *cpuName
	switch {
	case *targetName != "cpu" && *targetName != "cuda":
		return fmt.Errorf("xlc build: --target %s: want cpu or cuda", *targetName)
	case *gpuName != "" && *cpuName != "":
		return fmt.Errorf("xlc build: --cpu and --gpu name two targets; give one")
	case *targetName == "cuda" && *cpuName != "":
		return fmt.Errorf("xlc build: --target cuda takes --gpu, not --cpu")
	case *gpuName != "" || *targetName == "cuda" || *emit == "ptx":
		if *emit == "ptx" && *cpuName != "" {
			return fmt.Errorf("xlc build: --emit=ptx is for a GPU: --gpu, not --cpu")
		}
		t, err := cuda.Target(*gpuName)
		if err != nil {
			return fmt.Errorf("xlc build: --gpu %s: want sm_80, sm_90, a100, h100 or h200", *gpuName)
		}
		target = t.Name
	}
	if *asBundle || strings.HasSuffix(*out, ".xlc") {
		if *out == "" {
			return fmt.Errorf("xlc build: --bundle needs -o FILE.xlc")
		}
		if *gpuName != "" && *targetName != "cuda" {
			return fmt.Errorf("xlc build: a bundle for --gpu %s needs --target cuda", *gpuName)
		}
		if *emit != "ir" {
			return fmt.Errorf("xlc build: --emit=%s does not apply to a bundle (-o FILE.xlc holds the kernels)", *emit)
		}
		return buildBundle(pos[0], defs, *out, target, *targetName == "cuda", *verify, debug, stderr)
	}
	kernels := *emit != "ir"
	opt := passes.Options{Verify: *verify, DumpDir: *dumpDir, Fuse: *fuse || kernels, FusionFuel: *fuel}
	opt.Attention = opt.Fuse
	if debug["fusion"] {
		opt.FusionLog = stderr
	}
	if debug["precision"] {
		opt.PrecisionLog = stderr
	}
	if *dumpAfter != "" {
		re, err := regexp.Compile(*dumpAfter)
		if err != nil {
			return fmt.Errorf("xlc build: --dump-after: %v", err)
		}
		opt.DumpAfter = re
	}
	var f *ir.Func
	var name string
	switch *which {
	case "train_step":
		src, err := os.ReadFile(pos[0])
		if err != nil {
			return fmt.Errorf("xlc build: %v", err)
		}
		m, err := driver.Compile(pos[0], src, defs, driver.Options{Passes: opt, Log: stderr})
		if err != nil {
			return err
		}
		f, name = m.Step, m.Name
	case "forward":
		prog, err := compile(pos[0], defs)
		if err != nil {
			return err
		}
		if err := passes.Run(prog.Func, opt); err != nil {
			return fmt.Errorf("xlc build: %v", err)
		}
		f, name = prog.Func, prog.Name
	default:
		return fmt.Errorf("xlc build: --func=%s: want train_step or forward", *which)
	}
	if err := f.Verify(); err != nil {
		return fmt.Errorf("xlc build: internal error: %v", err)
	}
	text := f.String()
	if kernels {
		if text, err = lowerKernels(f, target, *emit); err != nil {
			return fmt.Errorf("xlc build: %v", err)
		}
	}
	if *out != "" {
		if err := atomicfile.Write(*out, []byte(text), 0o644); err != nil {
			return fmt.Errorf("xlc build: %v", err)
		}
	} else {
		fmt.Fprint(stdout, text)
	}
	nparams, nfloats := 0, 0
	for _, p := range f.Params {
		if p.Role() == "param" {
			nparams++
			nfloats += p.Type.Shape.NumElements()
		}
	}
	plan, err := passes.PlanBuffers(f)
	if err == nil {
		err = plan.Verify(f)
	}
	if err != nil {
		return fmt.Errorf("xlc build: internal error: %v", err)
	}
	fmt.Fprintf(stderr, "%s @%s: %d instructions, %d parameter tensors, %d parameters, peak %s MiB (%s MiB without buffer reuse)\n",
		name, f.Name, len(f.Body), nparams, nfloats, mib(plan.PeakBytes), mib(plan.NaiveBytes))
	if *fuse || kernels {
		fmt.Fprintf(stderr, "%s @%s: %d kernels, %d fused functions\n", name, f.Name, passes.Kernels(f), len(f.Callees()))
	}
	return nil
}

// lowerKernels is f's kernels for the target cpu names ("" for this
// machine's) as an LLVM module (emit "ll") or its assembly ("asm", "ptx":
// PTX for a GPU target).
func lowerKernels(f *ir.Func, cpu, emit string) (string, error) {
	t, err := codegen.TargetFor(cpu)
	if err != nil {
		return "", fmt.Errorf("--cpu: %v", err)
	}
	p, err := codegen.Compile(f, codegen.Options{Target: t})
	if err != nil {
		return "", err
	}
	if emit == "ll" {
		return p.LL, nil
	}
	return codegen.Assemble(p.LL)
}

// buildBundle compiles the model as the cpu and cuda backends train it
// (fusion on) and writes its bundle to out: the model source and defines,
// the train step's and the forward pass's IR and kernels (shared objects,
// or PTX for a GPU), the target (a codegen.TargetFor name; "" is this
// machine's CPU), a GPU exactly when gpu.
func buildBundle(path string, defs defines, out, target string, gpu bool, verify bool, debug debugFlags, stderr io.Writer) error {
	t, err := codegen.TargetFor(target)
	if err != nil {
		return fmt.Errorf("xlc build: --cpu: %v", err)
	}
	if t.GPU() && !gpu {
		return fmt.Errorf("xlc build: --cpu %s: a GPU target; a GPU bundle is --target cuda --gpu %s", target, target)
	}
	if err := toolchain(); err != nil {
		return fmt.Errorf("xlc build: a bundle needs LLVM: %v", err)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("xlc build: %v", err)
	}
	opt := compileOptions(cpu.Backend{CPU: target}, verify)
	opt.Log = stderr
	if debug["fusion"] {
		opt.Passes.FusionLog = stderr
	}
	if debug["precision"] {
		opt.Passes.PrecisionLog = stderr
	}
	m, err := driver.Compile(path, src, defs, opt)
	if err != nil {
		return err
	}
	b, err := bundle.New(m, t)
	if err != nil {
		return fmt.Errorf("xlc build: %v", err)
	}
	if err := bundle.Write(out, b); err != nil {
		return fmt.Errorf("xlc build: %v", err)
	}
	kind, code, size := "CPU", "native code", len(b.StepSO)+len(b.EvalSO)
	if b.GPU() {
		kind, code, size = "GPU", "PTX", len(b.StepPTX)+len(b.EvalPTX)
	}
	fmt.Fprintf(stderr, "%s: bundle %s for %s %s: @%s %d kernels, @%s %d kernels, %s KiB of %s\n",
		m.Name, out, kind, b.Target.Name, m.Step.Name, passes.Kernels(m.Step), m.Eval.Name, passes.Kernels(m.Eval), kib(size), code)
	return nil
}

// cpuFlagHelp describes --cpu.
const cpuFlagHelp = "the CPU the kernels are for: x86-64-v3 (AVX2), x86-64-v4 (AVX-512), aarch64, or an LLVM CPU name such as znver4 (default: this machine's, or $XLC_CPU)"

func kib(n int) string { return fmt.Sprintf("%.0f", float64(n)/1024) }

// mib formats a byte count in MiB: two decimals below 10 MiB, one above.
func mib(n int) string {
	m := float64(n) / (1 << 20)
	if m < 10 {
		return fmt.Sprintf("%.2f", m)
	}
	return fmt.Sprintf("%.1f", m)
}

// debugFlags collects -d names (repeatable, comma-separated).
type debugFlags map[string]bool

func (d *debugFlags) String() string { return "" }

func (d *debugFlags) Set(s string) error {
	if *d == nil {
		*d = debugFlags{}
	}
	for _, n := range strings.Split(s, ",") {
		if n != "fusion" && n != "precision" {
			return fmt.Errorf("want -d fusion or -d precision, have %q", n)
		}
		(*d)[n] = true
	}
	return nil
}
