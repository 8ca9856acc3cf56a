package ir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"xlc/ir"
)

// irTexts returns every IR text in testdata: .ir files and the sections of
// txtar archives whose names end in .ir.
func irTexts(t testing.TB) map[string]string {
	texts := map[string]string{}
	err := filepath.WalkDir("../testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".ir":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			texts[path] = string(b)
		case ".txtar":
			a, err := txtar.ParseFile(path)
			if err != nil {
				return err
			}
			for _, f := range a.Files {
				if strings.HasSuffix(f.Name, ".ir") {
					texts[path+":"+f.Name] = string(f.Data)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

// TestRoundTrip checks that every IR text in testdata parses and prints back
// byte for byte.
func TestRoundTrip(t *testing.T) {
	texts := irTexts(t)
	if len(texts) == 0 {
		t.Fatal("no IR texts found in testdata")
	}
	for name, src := range texts {
		m, err := ir.Parse(src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := m.String(); got != src {
			t.Errorf("%s: round trip differs:\n--- have\n%s--- want\n%s", name, got, src)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, src := range irTexts(f) {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := ir.Parse(src)
		if err != nil {
			return
		}
		// Whatever parses must print and parse back to the same text.
		out := m.String()
		m2, err := ir.Parse(out)
		if err != nil {
			t.Fatalf("printed IR does not parse: %v\n%s", err, out)
		}
		if out2 := m2.String(); out2 != out {
			t.Fatalf("print is not a fixed point:\n%s\n---\n%s", out, out2)
		}
		_ = m.Verify()
	})
}
