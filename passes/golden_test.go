package passes

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"xlc/ir"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/passes/*/*.txtar")

// TestGolden runs, for every archive testdata/passes/<pass>/<case>.txtar, the
// pass on input.ir with Verify and Check and compares the printed result with
// want.ir, or the error with want.err. It also checks that the golden is a
// fixed point: the pass reports no change on want.ir and prints it back.
// The archive comment may hold options ("fuel: N", "precision: f16",
// "attention: on", "remat: activations"); a
// fusion or precision archive's decisions section is the pass's decision
// log.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/passes/*/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		pass := filepath.Base(filepath.Dir(file))
		if IsAnalysis(pass) {
			continue // TestAnalysisGolden
		}
		name := pass + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) { runGolden(t, file, pass) })
	}
}

// goldenOptions reads the pass options from an archive's comment: a line
// "fuel: N" sets FusionFuel (default unlimited), "precision: T" Precision
// (default bf16), "attention: on" Attention, "remat: activations"
// RematActivations.
func goldenOptions(comment string) (Options, error) {
	opt := Options{FusionFuel: UnlimitedFuel, Precision: ir.BF16}
	for _, line := range strings.Split(comment, "\n") {
		if v, ok := strings.CutPrefix(line, "precision:"); ok {
			d, ok := ir.ParseDType(strings.TrimSpace(v))
			if !ok {
				return opt, fmt.Errorf("comment: %q: not a dtype", line)
			}
			opt.Precision = d
		}
		switch strings.TrimSpace(line) {
		case "attention: on":
			opt.Attention = true
		case "remat: activations":
			opt.RematActivations = true
		}
		if v, ok := strings.CutPrefix(line, "fuel:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return opt, fmt.Errorf("comment: %q: %v", line, err)
			}
			opt.FusionFuel = n
		}
	}
	return opt, nil
}

func section(a *txtar.Archive, name string) (string, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return string(f.Data), true
		}
	}
	return "", false
}

func runGolden(t *testing.T, file, pass string) {
	_, ok := Lookup(pass)
	if !ok {
		t.Fatalf("no pass named %q", pass)
	}
	a, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	input, ok := section(a, "input.ir")
	if !ok {
		t.Fatal("no input.ir section")
	}
	f, err := ir.ParseFunc(input)
	if err != nil {
		t.Fatalf("input.ir: %v", err)
	}
	if err := f.Verify(); err != nil {
		t.Fatalf("input.ir does not verify: %v", err)
	}
	opt, err := goldenOptions(string(a.Comment))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	switch pass {
	case "fusion":
		opt.FusionLog = &log
	case "precision":
		opt.PrecisionLog = &log
	}
	var gotName, got string
	run := opt
	run.Verify, run.Check, run.Passes = true, true, []string{pass}
	if err := Run(f, run); err != nil {
		gotName, got = "want.err", err.Error()+"\n"
	} else {
		gotName, got = "want.ir", f.String()
	}
	if *update {
		files := []txtar.File{{Name: "input.ir", Data: []byte(input)}, {Name: gotName, Data: []byte(got)}}
		if log.Len() > 0 {
			files = append(files, txtar.File{Name: "decisions", Data: []byte(log.String())})
		}
		a.Files = files
		if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want, ok := section(a, "decisions"); (ok || log.Len() > 0) && want != log.String() {
		t.Errorf("decisions differ:\n--- have\n%s--- want\n%s", log.String(), want)
	}
	want, ok := section(a, gotName)
	if !ok {
		t.Fatalf("have %s, but the archive has no %s section:\n%s", gotName, gotName, got)
	}
	if got != want {
		t.Fatalf("%s differs:\n--- have\n%s--- want\n%s", gotName, got, want)
	}
	if gotName != "want.ir" {
		return
	}
	g, err := ir.ParseFunc(want)
	if err != nil {
		t.Fatalf("want.ir: %v", err)
	}
	opt.FusionLog = nil
	changed, err := runPass(pass, g, opt)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if again := g.String(); changed || again != want {
		t.Errorf("not idempotent: the second run reports changed=%v and prints:\n%s", changed, again)
	}
}
