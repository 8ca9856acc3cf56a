package main

import (
	"fmt"
	"io"
	"os"

	"xlc/internal/atomicfile"
	"xlc/parser"
)

func cmdFmt(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fmt", stderr)
	write := fs.Bool("w", false, "rewrite the files in place (atomically) instead of printing them")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("xlc fmt: want at least one model file (see xlc help)")
	}
	for _, path := range pos {
		src, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("xlc fmt: %v", err)
		}
		out, err := parser.Format(path, src)
		if err != nil {
			return err
		}
		if !*write {
			stdout.Write(out)
			continue
		}
		if string(out) != string(src) {
			st, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("xlc fmt: %v", err)
			}
			if err := atomicfile.Write(path, out, st.Mode().Perm()); err != nil {
				return fmt.Errorf("xlc fmt: %v", err)
			}
		}
	}
	return nil
}
