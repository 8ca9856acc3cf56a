package runtime

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress reports training progress: a redrawn progress bar on a terminal,
// or, when the writer is not a terminal (a pipe, a log file, a test), a
// plain line every few steps, at most about 50 lines in all.
type Progress struct {
	w                  io.Writer
	bar                *progressbar.ProgressBar // nil when not a terminal
	total, start, last int64
	every              int64
	t0                 time.Time
	line               string // the latest status, for Finish
	printed            bool   // whether line has been printed
}

// NewProgress returns a Progress for a run of total steps that starts after
// startStep steps (non-zero when resuming), writing to w.
func NewProgress(w io.Writer, total, startStep int64) *Progress {
	p := &Progress{w: w, total: total, start: startStep, last: startStep, t0: time.Now(), printed: true}
	p.every = max((total-startStep+49)/50, 1)
	if isTerminal(w) && total > 0 {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
		p.bar.Set64(startStep)
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device); tests
// replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Named is a value shown on the progress line under its name: a loss to 4
// decimals, a Plain value (a loss scale, a count) as it is.
type Named struct {
	Name  string
	Value float64
	Plain bool
}

// Update reports that step steps of total are done, with the latest losses
// (each task's and the combined objective, named as in metrics.jsonl) and
// throughput; the ETA extrapolates the time per step since NewProgress.
func (p *Progress) Update(step int64, losses []Named, tokensPerSec float64) {
	p.last = step
	eta := "?"
	if done := step - p.start; done > 0 {
		left := time.Duration(float64(time.Since(p.t0)) / float64(done) * float64(p.total-step))
		eta = left.Round(time.Second).String()
	}
	var status strings.Builder
	for _, l := range losses {
		if l.Plain {
			fmt.Fprintf(&status, "%s %g  ", l.Name, l.Value)
		} else {
			fmt.Fprintf(&status, "%s %.4f  ", l.Name, l.Value)
		}
	}
	fmt.Fprintf(&status, "%.0f tok/s  eta %s", tokensPerSec, eta)
	if p.bar != nil {
		p.bar.Describe(status.String())
		p.bar.Set64(step)
		return
	}
	p.line = fmt.Sprintf("step %d/%d  %s\n", step, p.total, status.String())
	p.printed = (step-p.start)%p.every == 0 || step == p.total
	if p.printed {
		io.WriteString(p.w, p.line)
	}
}

// Finish completes the bar, or prints the last status line if it was not
// printed yet.
func (p *Progress) Finish() {
	if p.bar != nil {
		if p.last >= p.total {
			p.bar.Finish()
		} else {
			p.bar.Exit() // interrupted: keep the bar where it stopped
		}
		return
	}
	if !p.printed {
		io.WriteString(p.w, p.line)
		p.printed = true
	}
}
