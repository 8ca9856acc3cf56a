package experiments

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xlc/internal/atomicfile"
	"xlc/runtime"
)

// Options are how an experiment runs.
type Options struct {
	// Quick runs the small version (seconds; CI runs it).
	Quick bool
	// Out is the folder for REPORT.md, results.jsonl and the plots.
	Out string
	// Log receives progress lines.
	Log io.Writer
	// Data is the text corpus; DataName says where it came from.
	Data     *runtime.Dataset
	DataName string
	// Backend is "cpu" or "interp" (where LLVM is missing); CPU names the
	// machine in the report.
	Backend, CPU string
	// Command is the command line, for the report.
	Command string
}

// A Run is one execution of an experiment: what it records becomes
// results.jsonl and REPORT.md.
type Run struct {
	Options
	exp    *Experiment
	rows   []Row
	tables []table
	plots  []Plot
	setup  []string
}

type table struct {
	name, caption string
	cols          []string
}

// Pick returns quick under --quick and full otherwise.
func (r *Run) Pick(full, quick int) int {
	if r.Quick {
		return quick
	}
	return full
}

// Logf prints a progress line.
func (r *Run) Logf(format string, args ...any) {
	fmt.Fprintf(r.Log, "%s: %s\n", r.exp.Name, fmt.Sprintf(format, args...))
}

// Setup adds a line to the report's setup section (a command, a setting).
func (r *Run) Setup(format string, args ...any) {
	r.setup = append(r.setup, fmt.Sprintf(format, args...))
}

// Table declares a report table: the rows recorded under name, shown with
// cols in that order.
func (r *Run) Table(name, caption string, cols ...string) {
	r.tables = append(r.tables, table{name, caption, cols})
}

// Record adds a row to table. A number that may not be finite (a diverged
// loss) should be recorded as text saying so.
func (r *Run) Record(table string, values map[string]any) {
	r.rows = append(r.rows, Row{Table: table, Values: values})
}

// Execute runs e with opt: it creates opt.Out, runs the experiment, writes
// results.jsonl, reads it back, decides the claims from it, and writes
// REPORT.md. Every file is written atomically.
func Execute(e *Experiment, opt Options) error {
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return err
	}
	r := &Run{Options: opt, exp: e}
	start := time.Now()
	if err := e.Run(r); err != nil {
		return fmt.Errorf("experiment %s: %v", e.Name, err)
	}
	data, err := encodeResults(r.rows)
	if err != nil {
		return err
	}
	path := filepath.Join(opt.Out, "results.jsonl")
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return err
	}
	rs, err := ReadResults(path)
	if err != nil {
		return err
	}
	if err := r.complete(rs); err != nil {
		return fmt.Errorf("experiment %s: %v", e.Name, err)
	}
	report := r.report(rs, time.Since(start))
	return atomicfile.Write(filepath.Join(opt.Out, "REPORT.md"), []byte(report), 0o644)
}

// complete checks that every declared table has rows, every row every
// column, and every number is finite.
func (r *Run) complete(rs Results) error {
	for _, t := range r.tables {
		rows := rs.Rows(t.name, nil)
		if len(rows) == 0 {
			return fmt.Errorf("table %s has no rows", t.name)
		}
		for i, row := range rows {
			for _, c := range t.cols {
				v, ok := row.Values[c]
				if !ok {
					return fmt.Errorf("table %s, row %d: no %s", t.name, i+1, c)
				}
				if s, ok := v.(string); ok && (s == "NaN" || s == "+Inf" || s == "-Inf") {
					return fmt.Errorf("table %s, row %d: %s is %s (record a diverged value as text)", t.name, i+1, c, s)
				}
			}
		}
	}
	for _, row := range rs {
		for k, v := range row.Values {
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return fmt.Errorf("table %s: %s is not finite", row.Table, k)
			}
		}
	}
	return nil
}

// cell formats a table value.
func cell(v any) string {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e9 {
			return fmt.Sprintf("%.0f", x)
		}
		return fmt.Sprintf("%.4g", x)
	case nil:
		return ""
	}
	return strings.ReplaceAll(fmt.Sprint(v), "|", `\|`)
}
