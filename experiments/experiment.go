// Package experiments holds the studies `xlc experiment` runs: each trains
// small models under settings fixed in its definition, records every
// number it reports in results.jsonl, and writes REPORT.md, whose tables,
// verdicts and conclusion are computed from that file. An experiment's
// model files live in its folder (NAME/*.xl) and are embedded.
package experiments

import (
	"embed"
	"fmt"
	"slices"
	"strings"

	xlcmodels "xlc/models"
)

//go:embed */*.xl
var models embed.FS

// An Experiment is one study. Its claims, with their thresholds, are part
// of its definition, fixed before it runs.
type Experiment struct {
	Name  string
	Title string
	// Question is what the study asks; Background states the equations and
	// claims it tests in the project's words, citing the papers (markdown).
	Question, Background string
	Claims               []Claim
	// Run trains and measures, recording through r.
	Run func(r *Run) error
	// Conclude, when set, writes the conclusion's prose from the results
	// (the verdicts are listed before it either way).
	Conclude func(rs Results) string
}

// A Claim is a statement the results support or not.
type Claim struct {
	// Text states the claim and its threshold.
	Text string
	// Check decides it from the recorded results alone.
	Check func(rs Results) Verdict
}

// A Verdict is a claim's outcome and the numbers it rests on.
type Verdict struct {
	Supported bool
	Detail    string
}

var registry = map[string]*Experiment{}

// register adds e; each experiment's file calls it from init.
func register(e *Experiment) {
	if registry[e.Name] != nil {
		panic("experiments: two experiments named " + e.Name)
	}
	registry[e.Name] = e
}

// All returns the experiments in name order.
func All() []*Experiment {
	var es []*Experiment
	for _, e := range registry {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *Experiment) int { return strings.Compare(a.Name, b.Name) })
	return es
}

// Lookup returns the experiment called name, or an error listing them.
func Lookup(name string) (*Experiment, error) {
	if e := registry[name]; e != nil {
		return e, nil
	}
	var names []string
	for _, e := range All() {
		names = append(names, e.Name)
	}
	return nil, fmt.Errorf("no experiment %q (have: %s)", name, strings.Join(names, ", "))
}

// modelSource returns an embedded model file: an experiment's own,
// NAME/FILE.xl, or a shipped one, FILE.xl.
func modelSource(path string) ([]byte, error) {
	fs := models
	if !strings.Contains(path, "/") {
		fs = xlcmodels.FS
	}
	src, err := fs.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiments: no model file %s", path)
	}
	return src, nil
}
