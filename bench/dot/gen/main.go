// Command gen writes the LLVM module of the dot kernels that bench/dot
// measures, and a table of them for the driver (one line a kernel: name,
// batch, M, N, K, transA, transB, extent, then the sizes in floats of the
// A, B and C buffers the kernel reads and writes, and 1 when the layout
// is strided, 0 when dense).
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
	name string
	spec codegen.DotSpec
}

func dense(name string, batch, m, n, k int, ta, tb bool) shape {
	return shape{name, codegen.DotSpec{Batch: batch, M: m, N: n, K: k, TransA: ta, TransB: tb}}
}

// attention returns the four strided batched products of multi-head
// attention on [batch, seq, heads, dh] operands as DotSpecOf reads them
// after the layout pass (logged from the compiled train step of
// models/gpt.xl): scores q·kᵀ (M=N=seq, K=dh), P·v and Pᵀ·do (M=seq,
// N=dh, K=seq; P is [batch, heads, seq, seq]), and qᵀ·ds stored K×M
// (M=dh, N=seq, K=seq).
func attention(prefix string, batch, seq, heads, dh int) []shape {
	bh := batch * heads
	row := int64(heads * dh) // stride of one position in [b, s, h, dh]
	qkv := int64(seq) * row  // one sequence
	pp := int64(seq * seq)   // one head's scores
	ph := int64(heads) * pp  // one sequence's scores
	ld := heads * dh         // leading dimension of a [b, s, h, dh] operand
	dd := int64(seq * dh)    // one head of a dense [b, h, s, dh] result
	return []shape{
		{prefix + "att_qk", codegen.DotSpec{Batch: bh, M: seq, N: seq, K: dh, TransB: true, LDA: ld, LDB: ld,
			BatchDims: []codegen.DotBatchDim{{Size: batch, A: qkv, B: qkv, C: ph}, {Size: heads, A: int64(dh), B: int64(dh), C: pp}}}},
		{prefix + "att_pv", codegen.DotSpec{Batch: bh, M: seq, N: dh, K: seq, LDB: ld,
			BatchDims: []codegen.DotBatchDim{{Size: batch, A: ph, B: qkv, C: int64(heads) * dd}, {Size: heads, A: pp, B: int64(dh), C: dd}}}},
		{prefix + "att_ptdo", codegen.DotSpec{Batch: bh, M: seq, N: dh, K: seq, TransA: true, LDB: ld,
			BatchDims: []codegen.DotBatchDim{{Size: batch, A: ph, B: qkv, C: int64(heads) * dd}, {Size: heads, A: pp, B: int64(dh), C: dd}}}},
		{prefix + "att_qtds", codegen.DotSpec{Batch: bh, M: dh, N: seq, K: seq, TransA: true, LDA: ld,
			BatchDims: []codegen.DotBatchDim{{Size: batch, A: qkv, B: ph, C: int64(heads) * dd}, {Size: heads, A: int64(dh), B: pp, C: dd}}}},
	}
}

// model returns the dense products of a GPT train step with width d,
// batch·seq = rows tokens, MLP width 4d and vocabulary v: forward
// (x·W), input gradients (dy·Wᵀ) and weight gradients (xᵀ·dy, K = rows).
func model(prefix string, rows, d, v int) []shape {
	return []shape{
		dense(prefix+"fw_dd", 1, rows, d, d, false, false),
		dense(prefix+"fw_up", 1, rows, 4*d, d, false, false),
		dense(prefix+"fw_down", 1, rows, d, 4*d, false, false),
		dense(prefix+"dx_dd", 1, rows, d, d, false, true),
		dense(prefix+"dx_up", 1, rows, 4*d, d, false, true),
		dense(prefix+"dx_down", 1, rows, d, 4*d, false, true),
		dense(prefix+"dx_vocab", 1, rows, v, d, false, true),
		dense(prefix+"dw_dd", 1, d, d, rows, true, false),
		dense(prefix+"dw_up", 1, d, 4*d, rows, true, false),
		dense(prefix+"dw_down", 1, 4*d, d, rows, true, false),
		dense(prefix+"dw_vocab", 1, v, d, rows, true, false),
	}
}

// shapes: 1024³ and the products of the train steps of configs S (d=128,
// seq=128, batch=16, 4 heads of 32, vocab 256) and M (d=256, seq=256,
// batch=8, 8 heads of 32, vocab 256), with the layouts the model's
// kernels read (DotSpecOf after the layout pass).
var shapes = func() []shape {
	s := []shape{dense("sq1024", 1, 1024, 1024, 1024, false, false)}
	s = append(s, model("S_", 2048, 128, 256)...)
	s = append(s, attention("S_", 16, 128, 4, 32)...)
	s = append(s, model("M_", 2048, 256, 256)...)
	s = append(s, attention("M_", 8, 256, 8, 32)...)
	return s
}()

// extentOf returns the number of floats a buffer must hold for rows×cols
// stored with leading dimension ld (0: cols), over the batch dims with
// per-dim strides stride (the dense default when dims is nil).
func extentOf(rows, cols, ld int, batch int, strides []int64, sizes []int) int64 {
	if ld == 0 {
		ld = cols
	}
	last := int64(rows-1)*int64(ld) + int64(cols)
	if strides == nil {
		return int64(batch-1)*int64(rows)*int64(ld) + last
	}
	for i, st := range strides {
		last += int64(sizes[i]-1) * st
	}
	return last
}

func main() {
	out := flag.String("o", "dot.ll", "the module to write")
	table := flag.String("t", "dot.tsv", "the kernel table to write")
	prefix := flag.String("prefix", "", "prefix of the kernels' names (to compare two builds in one run)")
	only := flag.String("only", "", "comma-separated shape names or prefixes ending in * (default all)")
	var b codegen.DotBlocking
	flag.IntVar(&b.MR, "mr", 0, "micro-tile rows (0: default)")
	flag.IntVar(&b.NR, "nr", 0, "micro-tile columns, a multiple of 16 (0: default)")
	flag.IntVar(&b.KC, "kc", 0, "K block (0: default)")
	flag.IntVar(&b.MC, "mc", 0, "M block (0: default)")
	flag.IntVar(&b.NC, "nc", 0, "N block (0: default)")
	flag.IntVar(&b.RB, "rb", 0, "rows of C per parallel unit (0: default)")
	flag.IntVar(&b.KU, "ku", 0, "k unrolling (0: default)")
	flag.IntVar(&b.PackA, "packa", 0, "1 pack A, -1 read A in place, 0 decide")
	flag.IntVar(&b.PackB, "packb", 0, "1 pack B, -1 read B in place (not transposed), 0 decide")
	flag.Parse()
	mod := llir.NewModule()
	var tsv strings.Builder
	for _, s := range shapes {
		if *only != "" && !selected(*only, s.name) {
			continue
		}
		spec := s.spec
		if b != (codegen.DotBlocking{}) {
			bl := b
			spec.Blocking = &bl
		}
		name := *prefix + s.name
		ext, err := codegen.DotKernel(mod, name, spec)
		if err != nil {
			log.Fatal(err)
		}
		ra, ca, rb, cb := spec.M, spec.K, spec.K, spec.N
		if spec.TransA {
			ra, ca = ca, ra
		}
		if spec.TransB {
			rb, cb = cb, rb
		}
		var sa, sb, sc []int64
		var sizes []int
		for _, d := range spec.BatchDims {
			sa, sb, sc = append(sa, d.A), append(sb, d.B), append(sc, d.C)
			sizes = append(sizes, d.Size)
		}
		na := extentOf(ra, ca, spec.LDA, spec.Batch, sa, sizes)
		nb := extentOf(rb, cb, spec.LDB, spec.Batch, sb, sizes)
		nc := extentOf(spec.M, spec.N, spec.LDC, spec.Batch, sc, sizes)
		strided := spec.LDA != 0 || spec.LDB != 0 || spec.LDC != 0 || spec.BatchDims != nil
		fmt.Fprintf(&tsv, "%s %d %d %d %d %d %d %d %d %d %d %d\n", name, spec.Batch, spec.M, spec.N, spec.K,
			b2i(spec.TransA), b2i(spec.TransB), ext, na, nb, nc, b2i(strided))
	}
	if err := os.WriteFile(*out, []byte(mod.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*table, []byte(tsv.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

// selected tells whether name is in the comma-separated list, whose
// entries ending in * match prefixes.
func selected(list, name string) bool {
	for _, e := range strings.Split(list, ",") {
		if e == name || strings.HasSuffix(e, "*") && strings.HasPrefix(name, strings.TrimSuffix(e, "*")) {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
