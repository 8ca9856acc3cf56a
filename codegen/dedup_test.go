package codegen_test

import (
	"os"
	"strings"
	"testing"

	"xlc/codegen"
	"xlc/driver"
	"xlc/parser"
	"xlc/passes"
)

// TestKernelsShared checks that identical kernels are emitted once: the
// tiny GPT's train step has as many functions in its module with 20 layers
// as with 2, fused or not, and every instruction still has a kernel (an
// output instruction its fusion's).
func TestKernelsShared(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	for _, fuse := range []bool{false, true} {
		defines := func(layers string) int {
			defs := []parser.Define{{Key: "layers", Value: layers}, {Key: "d", Value: "16"}, {Key: "heads", Value: "2"}, {Key: "seq", Value: "8"}, {Key: "batch", Value: "2"}}
			opt := driver.Options{Passes: passes.Options{Fuse: fuse, FusionFuel: passes.UnlimitedFuel}}
			m, err := driver.Compile("gpt.xl", src, defs, opt)
			if err != nil {
				t.Fatal(err)
			}
			p, err := codegen.Compile(m.Step, codegen.Options{CPU: "znver4"})
			if err != nil {
				t.Fatal(err)
			}
			outputs := 0
			for _, k := range p.Kernels {
				outputs += len(k.Results) - 1
			}
			if len(p.Kernels)+len(p.Aliases)+outputs != len(m.Step.Body) {
				t.Errorf("layers=%s: %d kernels, %d aliases and %d outputs for %d instructions", layers, len(p.Kernels), len(p.Aliases), outputs, len(m.Step.Body))
			}
			n := 0
			for _, line := range strings.Split(p.LL, "\n") {
				if strings.HasPrefix(line, "define ") {
					n++
				}
			}
			t.Logf("fuse=%v layers=%s: %d instructions, %d defines", fuse, layers, len(m.Step.Body), n)
			return n
		}
		if two, twenty := defines("2"), defines("20"); two != twenty {
			t.Errorf("fuse=%v: %d functions with 2 layers, %d with 20", fuse, two, twenty)
		}
	}
}
