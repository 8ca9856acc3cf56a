// Package lint holds tests of the repository's own layout rules: file
// sizes, doc comment lengths and package names, so that they stay true.
package lint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const (
	maxFileLines   = 600
	maxDocWords    = 120
	maxPackageDocs = 250
)

// goFiles returns the repository's non-test Go files, parsed with their
// comments.
func goFiles(t *testing.T) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "../.." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		files[path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, files
}

func words(g *ast.CommentGroup) int {
	if g == nil {
		return 0
	}
	return len(strings.Fields(g.Text()))
}

func TestLayout(t *testing.T) {
	fset, files := goFiles(t)
	for path, f := range files {
		rel := strings.TrimPrefix(path, "../../")
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
			t.Errorf("%s: %d lines, more than %d", rel, n, maxFileLines)
		}
		if name := f.Name.Name; name == "build" || name == "utils" || name == "helpers" || name == "common" {
			t.Errorf("%s: package %s", rel, name)
		}
		if n := words(f.Doc); n > maxPackageDocs {
			t.Errorf("%s: package doc of %d words, more than %d", rel, n, maxPackageDocs)
		}
		check := func(pos token.Pos, name string, g *ast.CommentGroup) {
			if n := words(g); n > maxDocWords {
				t.Errorf("%s: doc comment of %s, %d words, more than %d", fset.Position(pos), name, n, maxDocWords)
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				check(d.Pos(), d.Name.Name, d.Doc)
			case *ast.GenDecl:
				if d.Tok == token.IMPORT {
					continue // a cgo preamble is C, not a doc comment
				}
				check(d.Pos(), d.Tok.String(), d.Doc)
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						check(s.Pos(), s.Name.Name, s.Doc)
					case *ast.ValueSpec:
						check(s.Pos(), fmt.Sprint(s.Names[0]), s.Doc)
					}
				}
			}
		}
	}
}
