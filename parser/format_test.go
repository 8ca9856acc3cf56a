package parser

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
	"golang.org/x/tools/txtar"
)

var updateFmt = flag.Bool("update-fmt", false, "rewrite the want.xl sections of testdata/fmt/*.txtar")

// fmtCase reads the in.xl and want.xl sections of a testdata/fmt archive.
func fmtCase(t testing.TB, path string) (ar *txtar.Archive, in, want []byte) {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		switch f.Name {
		case "in.xl":
			in = f.Data
		case "want.xl":
			want = f.Data
		}
	}
	if in == nil {
		t.Fatalf("%s: no in.xl section", path)
	}
	return ar, in, want
}

func TestFormatGolden(t *testing.T) {
	paths, err := filepath.Glob("../testdata/fmt/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d cases in testdata/fmt, want at least 10", len(paths))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ar, in, want := fmtCase(t, path)
			got, err := Format("in.xl", in)
			if err != nil {
				t.Fatal(err)
			}
			checkFormatted(t, "in.xl", in, got)
			if *updateFmt {
				ar.Files = slices.DeleteFunc(ar.Files, func(f txtar.File) bool { return f.Name == "want.xl" })
				ar.Files = append(ar.Files, txtar.File{Name: "want.xl", Data: got})
				if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestFormatRepoFiles formats the models and the standard library (without
// rewriting them) and checks the result the same way.
func TestFormatRepoFiles(t *testing.T) {
	paths, _ := filepath.Glob("../models/*.xl")
	paths = append(paths, "stdlib.xl")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Format(path, src)
			if err != nil {
				t.Fatal(err)
			}
			checkFormatted(t, path, src, got)
		})
	}
}

func TestFormatParseError(t *testing.T) {
	_, err := Format("bad.xl", []byte("model m {\n  let x = (1 +\n}\n"))
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T), want an *Error", err, err)
	}
	_, perr := parseFile("bad.xl", []byte("model m {\n  let x = (1 +\n}\n"))
	if perr == nil || err.Error() != perr.Error() {
		t.Errorf("got %v, want the parse error %v", err, perr)
	}
}

// TestFormatLongIfWidth checks that a one-line if is kept up to exactly
// maxWidth columns and broken one column later.
func TestFormatLongIfWidth(t *testing.T) {
	line := func(n int) string {
		// "  let x = if c { " + name + " } else { y }"
		fixed := len("  let x = if c {  } else { y }")
		name := "a"
		for len(name) < n-fixed {
			name += "a"
		}
		return "model m {\n  let x = if c { " + name + " } else { y }\n}\n"
	}
	for _, tc := range []struct {
		width   int
		oneLine bool
	}{{maxWidth, true}, {maxWidth + 1, false}} {
		src := line(tc.width)
		got, err := Format("w.xl", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if (string(got) == src) != tc.oneLine {
			t.Errorf("width %d: got\n%s", tc.width, got)
		}
	}
}

// checkFormatted checks that got, the formatting of src, keeps every comment
// once, parses to the same tree as src and is formatted to itself.
func checkFormatted(t testing.TB, name string, src, got []byte) {
	t.Helper()
	if a, b := commentTexts(name, src), commentTexts(name, got); !slices.Equal(a, b) {
		t.Errorf("comments changed:\nbefore %q\nafter  %q\noutput:\n%s", a, b, got)
	}
	f1, err := parseFile(name, src)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := parseFile(name, got)
	if err != nil {
		t.Fatalf("formatted output does not parse: %v\n%s", err, got)
	}
	stripPositions(reflect.ValueOf(f1))
	stripPositions(reflect.ValueOf(f2))
	if !reflect.DeepEqual(f1, f2) {
		t.Errorf("formatted output parses to another tree:\n%s", got)
	}
	again, err := Format(name, got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, got) {
		t.Errorf("not idempotent:\nfirst:\n%s\nsecond:\n%s", got, again)
	}
}

// commentTexts is the sorted multiset of the comments of src.
func commentTexts(name string, src []byte) []string {
	var out []string
	for _, c := range comments(name, src) {
		out = append(out, c.Value)
	}
	slices.Sort(out)
	return out
}

var positionType = reflect.TypeFor[lexer.Position]()

// stripPositions zeroes every lexer.Position in a syntax tree.
func stripPositions(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			stripPositions(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			stripPositions(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == positionType {
			v.Set(reflect.Zero(positionType))
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				stripPositions(v.Field(i))
			}
		}
	}
}

func FuzzFormat(f *testing.F) {
	paths, _ := filepath.Glob("../testdata/fmt/*.txtar")
	for _, path := range paths {
		_, in, want := fmtCase(f, path)
		f.Add(in)
		f.Add(want)
	}
	models, _ := filepath.Glob("../models/*.xl")
	for _, path := range append(models, "stdlib.xl") {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := Format("fuzz.xl", src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is a %T, not an *Error", err, err)
			}
			return
		}
		checkFormatted(t, "fuzz.xl", src, got)
	})
}
