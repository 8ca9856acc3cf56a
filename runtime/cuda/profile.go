package cuda

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"xlc/codegen"
	"xlc/ir"
)

// profile is the per-kernel GPU profile of an Executable, on with
// XLC_DEBUG=2 (profile_gpu.go times the runs; this file, which needs no
// GPU, adds the times up and prints them). The first run is a warm-up,
// not counted. The others launch kernel by kernel, each between two CUDA
// events, or, every second one when the step has a graph, replay the
// graph between two events. At Close, and every XLC_DEBUG_EVERY runs, it
// prints to stderr the kernels' device time per run, by symbol (a shared
// kernel is one row, "×n"), the top profTop and a total, then by
// lowering, and the graph replay's time against the kernels' sum.
type profile struct {
	name    string    // the function's
	out     io.Writer // os.Stderr
	every   int       // print every that many runs; 0: only at Close
	kernels []profKernel

	all       int       // runs, the warm-up included
	runs      int       // runs timed kernel by kernel
	dev       []float64 // µs by kernel (index in Executable.kernels), summed over runs
	gaps      float64   // µs between one kernel's end and the next one's start, summed
	graphRuns int
	graph     float64       // µs of the graph replays, summed
	wall      time.Duration // host time of the runs timed kernel by kernel
	wallGraph time.Duration // and of the graph replays
	gates     int           // gates closed while timing
	timeouts  int           // of them, opened by their timeout
	note      string        // what went wrong while timing, if anything
}

// profKernel is what the profile shows of a kernel.
type profKernel struct {
	sym, lowering, what string
	grid, threads       int
	launched            bool // its range is not empty
}

// profTop is how many kernels the table lists.
const profTop = 30

func newProfile(f *ir.Func, ks []codegen.Kernel) *profile {
	p := &profile{name: f.Name, out: os.Stderr, dev: make([]float64, len(ks))}
	p.every, _ = strconv.Atoi(os.Getenv("XLC_DEBUG_EVERY"))
	for _, k := range ks {
		p.kernels = append(p.kernels, profKernel{sym: k.Symbol, lowering: k.Lowering, what: codegen.Describe(f.Body[k.Instr]),
			grid: k.Grid, threads: k.Threads, launched: k.Extent > 0})
	}
	return p
}

// graphTurn reports whether this run, the p.all-th, replays the graph (when
// there is one): the warm-up and then every second run.
func (p *profile) graphTurn() bool { return p.all%2 == 0 }

// profRow is a row of the table: a kernel symbol or a lowering.
type profRow struct {
	key, lowering, what string
	grid, threads       int
	instrs              int     // instructions launching it, per run
	us                  float64 // per run
}

// rows sums the kernels' device times per run by symbol and by lowering,
// each sorted by time, and their total.
func (p *profile) rows() (bySym, byLow []*profRow, total float64) {
	syms, lows := map[string]*profRow{}, map[string]*profRow{}
	for i, k := range p.kernels {
		if !k.launched {
			continue
		}
		us := p.dev[i] / float64(max(p.runs, 1))
		r := syms[k.sym]
		if r == nil {
			r = &profRow{key: k.sym, lowering: k.lowering, what: k.what, grid: k.grid, threads: k.threads}
			syms[k.sym] = r
			bySym = append(bySym, r)
		}
		l := lows[k.lowering]
		if l == nil {
			l = &profRow{key: k.lowering}
			lows[k.lowering] = l
			byLow = append(byLow, l)
		}
		r.instrs++
		l.instrs++
		r.us += us
		l.us += us
		total += us
	}
	for _, rs := range [][]*profRow{bySym, byLow} {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].us > rs[j].us })
	}
	return bySym, byLow, total
}

// print writes the profile to w.
func (p *profile) print(w io.Writer) {
	if p.all == 0 {
		return
	}
	bySym, byLow, total := p.rows()
	launches := 0
	for _, r := range bySym {
		launches += r.instrs
	}
	share := func(us float64) float64 {
		if total <= 0 {
			return 0
		}
		return 100 * us / total
	}
	ms := func(d time.Duration, n int) float64 { return float64(d) / 1e6 / float64(max(n, 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, "xlc cuda profile @%s: %d runs: 1 warm-up (not counted), %d kernel by kernel, %d graph replays; %d launches/run of %d kernels\n",
		p.name, p.all, p.runs, p.graphRuns, launches, len(bySym))
	if p.runs > 0 {
		fmt.Fprintf(&b, "kernel by kernel: %.1f µs/run on the GPU, plus %.1f µs between kernels (events); host %.2f ms/run (launches and synchronization)\n",
			total, p.gaps/float64(p.runs), ms(p.wall, p.runs))
	}
	if p.graphRuns > 0 {
		g := p.graph / float64(p.graphRuns)
		fmt.Fprintf(&b, "graph replay: %.1f µs/run on the GPU", g)
		if p.runs > 0 && total > 0 {
			fmt.Fprintf(&b, " (%.1f%% of the kernels' sum)", 100*g/total)
		}
		fmt.Fprintf(&b, "; host %.2f ms/run\n", ms(p.wallGraph, p.graphRuns))
	}
	if p.timeouts > 0 {
		fmt.Fprintf(&b, "%d of %d gates opened on their timeout: those kernels' times include launch latency\n", p.timeouts, p.gates)
	}
	if p.note != "" {
		fmt.Fprintf(&b, "note: %s\n", p.note)
	}
	if p.runs == 0 {
		io.WriteString(w, b.String())
		return
	}
	fmt.Fprintf(&b, "%4s %-12s %-11s %4s %13s %9s %6s %9s  %s\n", "rank", "kernel", "lowering", "×n", "grid×threads", "µs/run", "share", "µs/launch", "instruction")
	for i, r := range bySym {
		if i == profTop {
			rest := 0.0
			n := 0
			for _, r := range bySym[i:] {
				rest += r.us
				n += r.instrs
			}
			fmt.Fprintf(&b, "%4s %-12s %-11s %4d %13s %9.1f %5.1f%% %9s  %d more kernels\n", "", "(others)", "", n, "", rest, share(rest), "", len(bySym)-i)
			break
		}
		what := r.what
		if r.instrs > 1 {
			what = fmt.Sprintf("×%d %s", r.instrs, what)
		}
		fmt.Fprintf(&b, "%4d %-12s %-11s %4d %13s %9.1f %5.1f%% %9.1f  %s\n", i+1, r.key, r.lowering, r.instrs,
			fmt.Sprintf("%d×%d", r.grid, r.threads), r.us, share(r.us), r.us/float64(r.instrs), what)
	}
	fmt.Fprintf(&b, "%4s %-12s %-11s %4d %13s %9.1f %5.1f%%\n", "", "total", "", launches, "", total, share(total))
	fmt.Fprintf(&b, "by lowering: %-11s %4s %9s %6s %9s\n", "", "×n", "µs/run", "share", "µs/launch")
	for _, r := range byLow {
		fmt.Fprintf(&b, "%12s %-11s %4d %9.1f %5.1f%% %9.1f\n", "", r.key, r.instrs, r.us, share(r.us), r.us/float64(r.instrs))
	}
	io.WriteString(w, b.String())
}

// ran counts a run (its times already added) and prints the profile every
// p.every runs.
func (p *profile) ran() {
	p.all++
	if p.every > 0 && p.all%p.every == 0 {
		p.print(p.out)
	}
}
