package main

import (
	"strings"
	"testing"

	"xlc/ir"
)

// TestBuildFuse checks xlc build --fuse: the IR it writes holds fused
// functions and parses back, -d fusion prints the decisions on standard
// error, and --fusion-fuel=0 fuses nothing.
func TestBuildFuse(t *testing.T) {
	args := []string{"build", "../../models/gpt.xl", "-D", "layers=1", "-D", "d=16", "-D", "seq=8", "-D", "heads=2", "-D", "batch=2", "--func=forward", "--verify"}
	out, errs, code := xlc(t, append(args, "--fuse", "-d", "fusion")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	f, err := ir.ParseFunc(out)
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	if err := f.Verify(); err != nil || len(f.Callees()) == 0 {
		t.Fatalf("want a verified fused function, have %d callees, %v", len(f.Callees()), err)
	}
	for _, want := range []string{"# fusion @forward\n", "fuse %", "keep %", "gather stays its own kernel", "attention in one kernel", "14 kernels"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	out, errs, code = xlc(t, append(args, "--fuse", "--fusion-fuel=0")...)
	if code != 0 || strings.Contains(out, "fusion") || strings.Contains(errs, "fuse %") {
		t.Fatalf("--fusion-fuel=0: exit %d, fused anyway:\n%s", code, errs)
	}
	if _, errs, code := xlc(t, append(args, "-d", "bogus")...); code == 0 || !strings.Contains(errs, "want -d fusion") {
		t.Fatalf("-d bogus: exit %d: %s", code, errs)
	}
}
