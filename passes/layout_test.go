package passes_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"

	"xlc/driver"
	"xlc/ir"
	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

// transposesIntoDots counts the transposes of f and those read by a dot.
func transposesIntoDots(f *ir.Func) (transposes, intoDots int) {
	for _, v := range f.Body {
		if v.Op == ir.OpTranspose {
			transposes++
		}
		if v.Op == ir.OpDot {
			for _, a := range v.Args {
				if a.Op == ir.OpTranspose {
					intoDots++
				}
			}
		}
	}
	return
}

// TestLayoutGoldensSameResults runs each layout golden's input and want
// functions on the interpreter with the same random arguments: the rewrites
// keep every result bit for bit.
func TestLayoutGoldensSameResults(t *testing.T) {
	files, err := filepath.Glob("../testdata/passes/layout/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no layout goldens: %v", err)
	}
	for _, file := range files {
		a, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var in, want *ir.Func
		for _, s := range a.Files {
			switch s.Name {
			case "input.ir":
				in, err = ir.ParseFunc(string(s.Data))
			case "want.ir":
				want, err = ir.ParseFunc(string(s.Data))
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", file, s.Name, err)
			}
		}
		named, err := runtime.RandomInputs(in, 3)
		if err != nil {
			t.Fatal(err)
		}
		args, err := runtime.Args(in, named)
		if err != nil {
			t.Fatal(err)
		}
		r1, err := interp.Run(in, args)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := interp.Run(want, args)
		if err != nil {
			t.Fatal(err)
		}
		sameBits(t, file, r2, r1)
	}
}

// TestLayoutGPT builds a GPT's train step with and without the layout
// pass: afterwards no transpose feeds a dot (there were some: attention's
// head split), fewer transposes remain, and the interpreter's results agree
// bit for bit.
func TestLayoutGPT(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	// Options.Fuse would run the layout pass; unfused for the comparison.
	m, err := driver.Compile("gpt.xl", src, tinyGPT("2"), driver.Options{Passes: passes.Options{Verify: true, Check: true, Passes: []string{"simplify", "cse", "dce", "softmax-grad", "layout", "linearize"}}})
	if err != nil {
		t.Fatal(err)
	}
	noLayout := compileGPT(t, tinyGPT("2"))
	for i, f := range []*ir.Func{m.Step, m.Eval} {
		g := []*ir.Func{noLayout.Step, noLayout.Eval}[i]
		tb, db := transposesIntoDots(g)
		ta, da := transposesIntoDots(f)
		t.Logf("@%s: %d transposes (%d read by dots) → %d (%d)", f.Name, tb, db, ta, da)
		if db == 0 || da != 0 || ta >= tb {
			t.Errorf("@%s: transposes %d → %d, read by dots %d → %d: want some folded, none into a dot", f.Name, tb, ta, db, da)
		}
		args := gptArgs(t, f)
		want, err := interp.Run(g, args)
		if err != nil {
			t.Fatal(err)
		}
		got, err := interp.Run(f, args)
		if err != nil {
			t.Fatal(err)
		}
		sameBits(t, f.Name, got, want)
	}
}
