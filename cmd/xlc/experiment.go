package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"xlc/codegen"
	"xlc/experiments"
	"xlc/runtime"
)

func cmdExperiment(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("experiment", stdout)
	quick := fs.Bool("quick", false, "the small version, in seconds (a smoke test, not evidence)")
	out := fs.String("out", "", "folder for REPORT.md, results.jsonl and plots (default out/experiments/NAME)")
	data := fs.String("data", "", "a text file or a folder of text files (default: built-in generated text)")
	be := fs.String("backend", "auto", "auto (cpu when LLVM 19 is installed, else interp; interp with --quick), cpu or interp")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		for _, e := range experiments.All() {
			fmt.Fprintf(stdout, "%-10s %s\n", e.Name, e.Title)
		}
		return nil
	}
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("xlc experiment: want one experiment name, have %s (xlc experiment lists them)", strings.Join(pos, " "))}
	}
	e, err := experiments.Lookup(pos[0])
	if err != nil {
		return fmt.Errorf("xlc experiment: %v", err)
	}
	if *quick && *be == "auto" {
		*be = "interp" // tiny models: compiling them would take longer than running them
	}
	b, err := backend(*be, stderr, "experimenting", "", false)
	if err != nil {
		return fmt.Errorf("xlc experiment: %v", err)
	}
	opt := experiments.Options{Quick: *quick, Out: *out, Log: stderr, Backend: b.Name(),
		CPU: cpuDescription(), Command: commandLine(args, *data)}
	if opt.Out == "" {
		opt.Out = filepath.Join("out", "experiments", e.Name)
	}
	opt.Data, opt.DataName = runtime.BuiltinText(), "the built-in generated text"
	if *data != "" {
		if opt.Data, err = runtime.LoadText(*data, 0.1, 1025); err != nil {
			return fmt.Errorf("xlc experiment: %v", err)
		}
		opt.DataName = fmt.Sprintf("%s (%d bytes; the last tenth for validation)", filepath.Base(*data), len(opt.Data.Train)+len(opt.Data.Val))
	}
	if err := experiments.Execute(e, opt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", filepath.Join(opt.Out, "REPORT.md"))
	return nil
}

// commandLine is the experiment's command line for its report, the data
// file named by its base name (where it lives is this machine's business).
func commandLine(args []string, data string) string {
	words := []string{"xlc", "experiment"}
	for _, a := range args {
		if data != "" && strings.HasSuffix(a, data) {
			a = strings.TrimSuffix(a, data) + filepath.Base(data)
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// cpuDescription names this machine's CPU and the kernels' target.
func cpuDescription() string {
	name := "an unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				name = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if t, err := codegen.TargetFor(""); err == nil {
		name += " (" + t.Name + ")"
	}
	return name
}
