package passes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"xlc/ir"
)

// TestAnalysisGolden runs, for every archive testdata/passes/<analysis>/
// <case>.txtar of an analysis (buffers), the analysis on input.ir and
// compares its printed result with want.plan, or its error with want.err.
// -update rewrites them.
func TestAnalysisGolden(t *testing.T) {
	for _, a := range analyses {
		files, err := filepath.Glob("../testdata/passes/" + a.name + "/*.txtar")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no golden files for %s", a.name)
		}
		for _, file := range files {
			name := a.name + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
			t.Run(name, func(t *testing.T) { runAnalysisGolden(t, file, a.name) })
		}
	}
}

func runAnalysisGolden(t *testing.T, file, analysis string) {
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
	var gotName, got string
	if r, err := Analyze(analysis, f); err != nil {
		gotName, got = "want.err", err.Error()+"\n"
	} else {
		gotName, got = "want.plan", r.String()
	}
	if f.String() != input {
		t.Errorf("the analysis changed the function:\n%s", f.String())
	}
	if *update {
		a.Files = []txtar.File{{Name: "input.ir", Data: []byte(input)}, {Name: gotName, Data: []byte(got)}}
		if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, ok := section(a, gotName)
	if !ok {
		t.Fatalf("have %s, but the archive has no %s section:\n%s", gotName, gotName, got)
	}
	if got != want {
		t.Fatalf("%s differs:\n--- have\n%s--- want\n%s", gotName, got, want)
	}
}
