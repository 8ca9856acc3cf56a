package experiments

import (
	"fmt"
	"strings"
	"time"
)

// report is REPORT.md: the question, background, setup, tables from rs,
// plots, the verdict of each claim decided from rs, and the conclusion.
func (r *Run) report(rs Results, took time.Duration) string {
	e := r.exp
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s\n\n", e.Title)
	mode := "full run"
	if r.Quick {
		mode = "quick run (--quick: too short to conclude from)"
	}
	p("%s on %s, backend %s; %s, %s.\n\n", time.Now().UTC().Format("2006-01-02"), r.CPU, r.Backend, mode, took.Round(time.Second))
	p("```\n%s\n```\n\n", r.Command)
	p("## Question\n\n%s\n\n", strings.TrimSpace(e.Question))
	p("## Background\n\n%s\n\n", strings.TrimSpace(e.Background))
	p("## Setup\n\nData: %s.\n\n", r.DataName)
	for _, s := range r.setup {
		p("- %s\n", s)
	}
	p("\n## Results\n\nEvery number below is in `results.jsonl`, one row per line.\n\n")
	for _, t := range r.tables {
		p("### %s\n\n| %s |\n|%s\n", t.caption, strings.Join(t.cols, " | "), strings.Repeat(" --- |", len(t.cols)))
		for _, row := range rs.Rows(t.name, nil) {
			cells := make([]string, len(t.cols))
			for i, c := range t.cols {
				cells[i] = cell(row.Values[c])
			}
			p("| %s |\n", strings.Join(cells, " | "))
		}
		p("\n")
	}
	if len(r.plots) > 0 {
		p("## Plots\n\n")
		for _, pl := range r.plots {
			p("![%s](%s)\n\n", pl.Title, pl.File)
		}
	}
	p("## Verdicts\n\nDecided from `results.jsonl` by the thresholds fixed in the experiment's definition.\n\n")
	supported := 0
	for _, c := range e.Claims {
		v := c.Check(rs)
		word := "not supported"
		if v.Supported {
			word = "supported"
			supported++
		}
		p("- **%s**: %s — %s\n", word, c.Text, v.Detail)
	}
	p("\n## Conclusion\n\n%d of %d claims supported by this run's numbers.", supported, len(e.Claims))
	if r.Quick {
		p(" A quick run is a smoke test: its verdicts are not evidence.")
	}
	p("\n")
	if e.Conclude != nil {
		p("\n%s\n", strings.TrimSpace(e.Conclude(rs)))
	}
	return b.String()
}
