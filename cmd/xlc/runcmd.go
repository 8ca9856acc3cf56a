package main

import (
	"fmt"
	"io"
	"math"

	"xlc/passes"
	"xlc/runtime"
	"xlc/runtime/interp"
)

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stdout)
	var defs defines
	fs.Var(&defs, "D", "override a config value: -D key=value (repeatable)")
	seed := fs.Uint64("seed", 1, "seed for parameter initialisation and random inputs")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("xlc run: want one model file, have %d (see xlc help)", len(pos))
	}
	prog, err := compile(pos[0], defs)
	if err != nil {
		return err
	}
	f := prog.Func
	if err := passes.Run(f, passes.Options{}); err != nil {
		return fmt.Errorf("xlc run: %v", err)
	}
	argv, err := runtime.SampleArgs(f, *seed, *seed)
	if err != nil {
		return fmt.Errorf("xlc run: %v", err)
	}
	res, err := interp.Run(f, argv)
	if err != nil {
		return fmt.Errorf("xlc run: %v", err)
	}
	for i, r := range res {
		name := fmt.Sprintf("result%d", i)
		if i < len(f.ResultNames) && f.ResultNames[i] != "" {
			name = f.ResultNames[i]
		}
		fmt.Fprintf(stdout, "%s = %s\n", name, summary(r))
	}
	return nil
}

// summary prints a scalar as a number and a tensor as its type with the
// mean and the first few values.
func summary(t *interp.Tensor) string {
	if t.Type.Rank() == 0 {
		return fmt.Sprintf("%.6g", t.Scalar())
	}
	n := t.Len()
	sum := 0.0
	for i := 0; i < n; i++ {
		sum += t.At(i)
	}
	s := fmt.Sprintf("%v mean %.6g [", t.Type, sum/math.Max(1, float64(n)))
	for i := 0; i < n && i < 4; i++ {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.4g", t.At(i))
	}
	if n > 4 {
		s += " ..."
	}
	return s + "]"
}
