package experiments

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xlc/codegen"
	"xlc/runtime"
)

// testOptions runs quick, on the cpu backend where LLVM is installed.
func testOptions(t *testing.T) Options {
	be := "interp"
	if codegen.ToolchainError() == nil {
		be = "cpu"
	}
	return Options{Quick: true, Out: t.TempDir(), Log: io.Discard, Data: runtime.BuiltinText(),
		DataName: "the built-in text", Backend: be, CPU: "the test machine", Command: "go test"}
}

// selftest trains the tiny model a few steps and records its losses.
func selftest(extra map[string]any) *Experiment {
	return &Experiment{
		Name: "selftest", Title: "Self test", Question: "Does the loss fall?", Background: "None.",
		Claims: []Claim{{Text: "the last loss is below the first", Check: func(rs Results) Verdict {
			first, ok1 := rs.Float("loss", map[string]any{"step": 0}, "loss")
			last, ok2 := rs.Float("loss", map[string]any{"step": 4}, "loss")
			return Verdict{ok1 && ok2 && last < first, "first " + cell(first) + ", last " + cell(last)}
		}}},
		Run: func(r *Run) error {
			tr, err := r.Trainer("testdata/tiny.xl", 1, "lr=0.3")
			if err != nil {
				return err
			}
			defer tr.Close()
			r.Setup("`%s`", Command("testdata/tiny.xl", "lr=0.3"))
			r.Table("loss", "Training loss", "step", "loss")
			var pts [][2]float64
			for s := range r.Pick(50, 5) {
				m, err := tr.Step()
				if err != nil {
					return err
				}
				r.Record("loss", map[string]any{"step": s, "loss": m["loss"]})
				pts = append(pts, [2]float64{float64(s), m["loss"]})
			}
			if extra != nil {
				r.Record("loss", extra)
			}
			return r.Plot(Plot{File: "loss.png", Chart: runtime.Chart{Title: "loss", X: "step", Y: "loss"},
				Series: map[string][][2]float64{"train": pts}})
		},
	}
}

// TestExecuteWritesReport: the report has the table, the plot and a
// verdict decided from results.jsonl, and every file is in the folder.
func TestExecuteWritesReport(t *testing.T) {
	opt := testOptions(t)
	if err := Execute(selftest(nil), opt); err != nil {
		t.Fatal(err)
	}
	rep, err := os.ReadFile(filepath.Join(opt.Out, "REPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| step | loss |", "![loss](loss.png)", "**supported**: the last loss is below the first", "1 of 1 claims"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("REPORT.md lacks %q:\n%s", want, rep)
		}
	}
	rs, err := ReadResults(filepath.Join(opt.Out, "results.jsonl"))
	if err != nil || len(rs.Rows("loss", nil)) != 5 {
		t.Fatalf("results.jsonl: %d loss rows, %v", len(rs.Rows("loss", nil)), err)
	}
	if os.Getenv("XLC_SHOW_REPORT") != "" {
		t.Log(string(rep))
	}
	if _, err := os.Stat(filepath.Join(opt.Out, "loss.png")); err != nil {
		t.Fatal(err)
	}
}

// TestExecuteRefusesIncomplete: a row without a column, or a number that
// is not finite, fails the run instead of making a report.
func TestExecuteRefusesIncomplete(t *testing.T) {
	for _, extra := range []map[string]any{{"step": 9}, {"step": 9, "loss": math.NaN()}, {"step": 9, "loss": math.Inf(1), "x": 1.0}} {
		opt := testOptions(t)
		err := Execute(selftest(extra), opt)
		if err == nil {
			t.Errorf("row %v: want an error", extra)
		}
		if _, serr := os.Stat(filepath.Join(opt.Out, "REPORT.md")); serr == nil {
			t.Errorf("row %v: REPORT.md written despite %v", extra, err)
		}
	}
}

// TestQuick runs every experiment's quick version, as CI does, each with
// complete tables and finite numbers (Execute checks), and a verdict per
// claim. It runs on the interpreter: compiling a quick run's many small
// configurations cold takes minutes, and the cpu backend is held to the
// interpreter by its own tests (TestExecuteWritesReport trains on it).
func TestQuick(t *testing.T) {
	for _, e := range All() {
		t.Run(e.Name, func(t *testing.T) {
			opt := testOptions(t)
			opt.Backend = "interp"
			start := time.Now()
			if err := Execute(e, opt); err != nil {
				t.Fatal(err)
			}
			rep, err := os.ReadFile(filepath.Join(opt.Out, "REPORT.md"))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(rep), "supported**: "); n != len(e.Claims) || n == 0 {
				t.Errorf("%d verdicts for %d claims", n, len(e.Claims))
			}
			t.Logf("%s --quick: %v", e.Name, time.Since(start).Round(time.Millisecond))
		})
	}
}
