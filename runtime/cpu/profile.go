package cpu

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"xlc/codegen"
)

// profile times every kernel launch of an Executable (XLC_DEBUG >= 2) and
// the copies in and out of Run. At Close, and every XLC_DEBUG_EVERY runs
// when that is set, it prints to stderr a table sorted by total time: the
// kernel symbol (one row for a shared kernel, "×n"), its lowering,
// launches, total ms, share of the profiled time, µs per launch, the
// parallel extent and the instruction (codegen.Describe). The header names
// the shared object, whose kernels.ll lies beside it.
type profile struct {
	every     int // print every that many runs; 0: only at Close
	runs      int
	launches  []time.Duration // per kernel (index in Executable.kernels)
	copyIn    time.Duration
	copyOut   time.Duration
	wall      time.Duration // whole Runs
	lastPrint int
}

func newProfile(nkernels int) *profile {
	p := &profile{launches: make([]time.Duration, nkernels)}
	p.every, _ = strconv.Atoi(os.Getenv("XLC_DEBUG_EVERY"))
	return p
}

// print writes the table of e's kernel times, sorted by total time, to w.
// Kernels sharing a symbol are one row.
func (p *profile) print(w io.Writer, e *Executable) {
	if p.runs == 0 {
		return
	}
	type row struct {
		sym, low, what string
		calls          int
		instrs         int
		total          time.Duration
		extent         int64
	}
	bySym := map[string]*row{}
	var rows []*row
	var ktotal time.Duration
	for i, k := range e.kernels {
		r := bySym[k.sym]
		if r == nil {
			r = &row{sym: k.sym, low: k.lowering, what: codegen.Describe(e.f.Body[k.instr]), extent: k.extent}
			bySym[k.sym] = r
			rows = append(rows, r)
		}
		r.instrs++
		r.calls += p.runs
		r.total += p.launches[i]
		ktotal += p.launches[i]
	}
	rows = append(rows,
		&row{sym: "(copy in)", what: "Run: arguments into the parameters' buffers", calls: p.runs, total: p.copyIn},
		&row{sym: "(copy out)", what: "Run: results out of their buffers", calls: p.runs, total: p.copyOut})
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].total > rows[j].total })
	all := ktotal + p.copyIn + p.copyOut
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	var b strings.Builder
	fmt.Fprintf(&b, "xlc cpu profile @%s: %d runs, %.2f ms/run (kernels %.2f, copies %.2f, other %.2f); %d launches/run of %d kernels\n",
		e.f.Name, p.runs, ms(p.wall)/float64(p.runs), ms(ktotal)/float64(p.runs), ms(p.copyIn+p.copyOut)/float64(p.runs),
		ms(p.wall-all)/float64(p.runs), len(e.kernels), len(bySym))
	fmt.Fprintf(&b, "kernels from %s (kernels.ll beside it)\n", e.so)
	fmt.Fprintf(&b, "%-12s %-10s %6s %9s %6s %8s %6s  %s\n", "kernel", "lowering", "calls", "total ms", "share", "µs/call", "extent", "instruction")
	for _, r := range rows {
		share := 0.0
		if all > 0 {
			share = 100 * float64(r.total) / float64(all)
		}
		what := r.what
		if r.instrs > 1 {
			what = fmt.Sprintf("×%d %s", r.instrs, what)
		}
		fmt.Fprintf(&b, "%-12s %-10s %6d %9.2f %5.1f%% %8.1f %6d  %s\n", r.sym, r.low, r.calls, ms(r.total), share,
			float64(r.total)/1e3/float64(max(r.calls, 1)), r.extent, what)
	}
	io.WriteString(w, b.String())
}
