package parser

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"xlc/ir"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/dsl")

// TestDSLGolden elaborates each testdata/dsl/*.txtar archive's model.xl and
// compares the IR (want.ir) or the diagnostic (want.err). Lines of the
// archive comment of the form "-D key=value" are config overrides.
func TestDSLGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/dsl/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			a, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			wantName := ""
			var want []byte
			for _, f := range a.Files {
				switch f.Name {
				case "model.xl":
					src = f.Data
				case "want.ir", "want.err":
					wantName, want = f.Name, f.Data
				}
			}
			var defines []Define
			for _, line := range strings.Split(string(a.Comment), "\n") {
				if kv, ok := strings.CutPrefix(line, "-D "); ok {
					k, v, _ := strings.Cut(kv, "=")
					defines = append(defines, Define{k, v})
				}
			}
			var got string
			p, err := Compile("model.xl", src, defines)
			switch {
			case err != nil:
				got = err.Error() + "\n"
				if wantName == "want.ir" {
					t.Errorf("unexpected error: %v", err)
				}
				wantName = "want.err"
			default:
				got = p.Func.String()
				if wantName == "want.err" {
					t.Errorf("want an error, compiled fine")
				}
				wantName = "want.ir"
			}
			if *update {
				var files []txtar.File
				for _, f := range a.Files {
					if f.Name != "want.ir" && f.Name != "want.err" {
						files = append(files, f)
					}
				}
				a.Files = append(files, txtar.File{Name: wantName, Data: []byte(got)})
				if err := os.WriteFile(path, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal([]byte(got), want) {
				t.Errorf("%s differs:\n--- have\n%s--- want\n%s", wantName, got, want)
			}
		})
	}
}

// TestModelsCompile elaborates every model in models/ with its defaults and
// checks the IR verifies and round-trips through the IR text form.
func TestModelsCompile(t *testing.T) {
	files, _ := filepath.Glob("../models/*.xl")
	if len(files) < 3 {
		t.Fatalf("want at least 3 models, have %d", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(path, src, nil)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if err := p.Func.Verify(); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		text := p.Func.String()
		f, err := ir.ParseFunc(text)
		if err != nil {
			t.Errorf("%s: the printed IR does not parse: %v", path, err)
			continue
		}
		if again := f.String(); again != text {
			t.Errorf("%s: the IR does not round-trip:\n--- printed\n%s--- parsed and printed again\n%s", path, text, again)
		}
	}
}

// FuzzCompile feeds arbitrary text to the DSL: diagnostics are fine; a panic,
// an error that is not an *Error (file:line:col), or an internal error (the
// elaborated IR failed Compile's own Verify) is not.
func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("../models/*.xl")
	for _, p := range seeds {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	arch, _ := filepath.Glob("../testdata/dsl/*.txtar")
	for _, p := range arch {
		if a, err := txtar.ParseFile(p); err == nil {
			for _, fl := range a.Files {
				if fl.Name == "model.xl" {
					f.Add(fl.Data)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Compile("fuzz.xl", src, nil)
		if err == nil {
			return
		}
		if _, ok := err.(*Error); !ok || strings.Contains(err.Error(), "internal error") {
			t.Fatalf("want a diagnostic, have %T: %v", err, err)
		}
	})
}
