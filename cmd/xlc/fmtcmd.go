package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"xlc/internal/atomicfile"
	"xlc/parser"
)

// cmdFmt prints or (-w) rewrites each file in canonical form. Like gofmt, a
// file that cannot be read or parsed does not stop the others: every such
// error is returned together, after the other files are done (exit status
// 1). -w writes through a symbolic link to the file it points at, leaving
// the link in place.
func cmdFmt(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fmt", stdout)
	write := fs.Bool("w", false, "rewrite the files in place (atomically) instead of printing them")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("xlc fmt: want at least one model file (see xlc help)")
	}
	var errs []error
	for _, path := range pos {
		if err := fmtFile(path, *write, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fmtFile(path string, write bool, stdout io.Writer) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("xlc fmt: %v", err)
	}
	out, err := parser.Format(path, src)
	if err != nil {
		return err
	}
	if !write {
		_, err := stdout.Write(out)
		return err
	}
	if string(out) == string(src) {
		return nil
	}
	st, err := os.Stat(path) // the file a link names, whose mode is kept
	if err != nil {
		return fmt.Errorf("xlc fmt: %v", err)
	}
	if err := atomicfile.Write(path, out, st.Mode().Perm()); err != nil {
		return fmt.Errorf("xlc fmt: %v", err)
	}
	return nil
}
