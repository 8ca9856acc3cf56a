package cuda

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"xlc/codegen"
	"xlc/ir"
)

// TestProfilePrint feeds the profile fake device times (no GPU) and checks
// the table: kernels by symbol (a shared one summed, "×n"), sorted by time,
// shares of the kernels' sum, the unlaunched kernel left out, the total,
// the lowerings, and the graph replay against the kernels' sum.
func TestProfilePrint(t *testing.T) {
	f, err := ir.ParseFunc("func @step(%x: f32[4]) -> (r: f32[4]) {\n  %0 = neg %x : f32[4]\n  %1 = exp %0 : f32[4]\n  %2 = neg %1 : f32[4]\n  %3 = exp %2 : f32[4]\n  return %3\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	ks := []codegen.Kernel{
		{Symbol: "xlc_k0", Instr: 0, Extent: 4, Lowering: codegen.LowerElemental, Grid: 1, Threads: 128},
		{Symbol: "xlc_k1", Instr: 1, Extent: 4, Lowering: codegen.LowerMMADot, Grid: 8, Threads: 256},
		{Symbol: "xlc_k0", Instr: 2, Extent: 4, Lowering: codegen.LowerElemental, Grid: 1, Threads: 128},
		{Symbol: "xlc_k3", Instr: 3, Extent: 0, Lowering: codegen.LowerRows},
	}
	p := newProfile(f, ks)
	p.every = 0
	p.ran() // the warm-up
	for range 2 {
		for i, us := range []float64{10, 60, 30, 0} {
			p.dev[i] += us
		}
		p.gaps += 4
		p.wall += 2 * time.Millisecond
		p.runs++
		p.ran()
		p.graph += 90
		p.graphRuns++
		p.wallGraph += time.Millisecond
		p.ran()
	}
	var b strings.Builder
	p.print(&b)
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"xlc cuda profile @step: 5 runs: 1 warm-up (not counted), 2 kernel by kernel, 2 graph replays; 3 launches/run of 2 kernels",
		"kernel by kernel: 100.0 µs/run on the GPU, plus 4.0 µs between kernels (events); host 2.00 ms/run",
		"graph replay: 90.0 µs/run on the GPU (90.0% of the kernels' sum); host 1.00 ms/run",
		`(?m)^ +1 xlc_k1 +mma-dot +1 +8×256 +60\.0 +60\.0% +60\.0  exp \(f32\[4\]\) → f32\[4\]$`,
		`(?m)^ +2 xlc_k0 +elemental +2 +1×128 +40\.0 +40\.0% +20\.0  ×2 neg \(f32\[4\]\) → f32\[4\]$`,
		`(?m)^ +total +3 +100\.0 100\.0%$`,
		`(?m)^ +mma-dot +1 +60\.0 +60\.0% +60\.0$`,
		`(?m)^ +elemental +2 +40\.0 +40\.0% +20\.0$`,
	} {
		if strings.HasPrefix(want, "(?m)") {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("no line matching %s", want)
			}
		} else if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	if strings.Contains(out, "xlc_k3") || strings.Contains(out, "rows") {
		t.Error("the kernel never launched is listed")
	}
	if strings.Index(out, "xlc_k1") > strings.Index(out, "xlc_k0") {
		t.Error("not sorted by time")
	}
}

// TestProfileTop checks that the table lists the top profTop kernels and
// sums the rest in one line, and that a profile of the warm-up alone prints
// only its header.
func TestProfileTop(t *testing.T) {
	p := &profile{name: "step", all: 2, runs: 1}
	for i := range profTop + 5 {
		p.kernels = append(p.kernels, profKernel{sym: fmt.Sprintf("xlc_k%d", i), lowering: "rows", what: "x", grid: 1, threads: 32, launched: true})
		p.dev = append(p.dev, float64(i+1))
	}
	var b strings.Builder
	p.print(&b)
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n := len(lines); n != 2+profTop+5 {
		t.Errorf("%d lines, want %d:\n%s", n, 2+profTop+5, out)
	}
	if !regexp.MustCompile(`(?m)^ +\(others\) +5 +15\.0 +2\.4% +5 more kernels$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ +30 xlc_k5 `).MatchString(out) || strings.Contains(out, "xlc_k4 ") {
		t.Errorf("not the top %d and the rest in one line:\n%s", profTop, out)
	}
	b.Reset()
	(&profile{name: "step", all: 1}).print(&b)
	if out := b.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "0 kernel by kernel") {
		t.Errorf("warm-up only: %q", out)
	}
}
