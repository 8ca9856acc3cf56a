// Command gen writes the LLVM module of the dot kernels that bench/dot
// measures, and a table of them for the driver (one line a kernel: name,
// batch, M, N, K, transA, transB, extent).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	llir "github.com/llir/llvm/ir"

	"xlc/codegen"
)

type shape struct {
	name           string
	batch, m, n, k int
	ta, tb         bool
}

var shapes = []shape{
	{"sq1024", 1, 1024, 1024, 1024, false, false},
	{"qkv", 1, 2048, 768, 256, false, false},
	{"mlp_up", 1, 2048, 1024, 256, false, false},
	{"mlp_down", 1, 2048, 256, 1024, false, false},
	{"att_nn", 64, 256, 256, 32, false, false},
	{"att_qkT", 64, 256, 256, 32, false, true},
	{"att_pv", 64, 256, 32, 256, false, false},
	{"dW_tn", 1, 256, 1024, 2048, true, false},
	{"dX_nt", 1, 2048, 256, 1024, false, true},
}

func main() {
	out := flag.String("o", "dot.ll", "the module to write")
	table := flag.String("t", "dot.tsv", "the kernel table to write")
	only := flag.String("only", "", "comma-separated shape names (default all)")
	var b codegen.DotBlocking
	flag.IntVar(&b.MR, "mr", 0, "micro-tile rows (0: default)")
	flag.IntVar(&b.NR, "nr", 0, "micro-tile columns, a multiple of 16 (0: default)")
	flag.IntVar(&b.KC, "kc", 0, "K block (0: default)")
	flag.IntVar(&b.MC, "mc", 0, "M block (0: default)")
	flag.IntVar(&b.NC, "nc", 0, "N block (0: default)")
	flag.IntVar(&b.KU, "ku", 0, "k unrolling (0: default)")
	flag.IntVar(&b.PackA, "packa", 0, "1 pack A, -1 read A in place, 0 decide")
	flag.Parse()
	mod := llir.NewModule()
	var tsv strings.Builder
	for _, s := range shapes {
		if *only != "" && !strings.Contains(","+*only+",", ","+s.name+",") {
			continue
		}
		bl := b
		spec := codegen.DotSpec{Batch: s.batch, M: s.m, N: s.n, K: s.k, TransA: s.ta, TransB: s.tb, Blocking: &bl}
		ext, err := codegen.DotKernel(mod, s.name, spec)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(&tsv, "%s %d %d %d %d %d %d %d\n", s.name, s.batch, s.m, s.n, s.k, b2i(s.ta), b2i(s.tb), ext)
	}
	if err := os.WriteFile(*out, []byte(mod.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*table, []byte(tsv.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
