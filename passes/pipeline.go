// Package passes holds xlc's graph-to-graph passes and the pipeline that runs
// them. Each pass lives in its own file, whose doc comment states what the pass
// guarantees afterwards; the pipeline is the table below.
package passes

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"regexp"

	"xlc/internal/atomicfile"
	"xlc/ir"
)

// A Pass rewrites f in place and reports whether it changed anything.
type Pass func(f *ir.Func) (changed bool, err error)

type pass struct {
	name string // kebab-case
	fn   Pass
	doc  string
}

// pipeline is every pass, in the order Run runs them.
var pipeline = [...]pass{
	{name: "simplify", fn: simplify, doc: "fold constants, apply algebraic identities, fold shape ops, CSE and DCE to a fixed point"},
	{name: "cse", fn: cse, doc: "merge identical instructions"},
	{name: "dce", fn: dce, doc: "drop instructions that no result depends on"},
}

// passOrder lists pairs of passes where before must run before after.
var passOrder = [...]struct{ before, after string }{
	{"cse", "dce"}, // CSE leaves the operands of merged duplicates dead
}

func init() {
	index := map[string]int{}
	for i, p := range pipeline {
		if _, dup := index[p.name]; dup {
			panic(fmt.Sprintf("passes: pass %s listed twice", p.name))
		}
		index[p.name] = i
	}
	for _, o := range passOrder {
		i, ok1 := index[o.before]
		j, ok2 := index[o.after]
		if !ok1 || !ok2 {
			panic(fmt.Sprintf("passes: ordering constraint %s before %s names an unknown pass", o.before, o.after))
		}
		if i >= j {
			panic(fmt.Sprintf("passes: %s must run before %s, but runs at %d and %s at %d", o.before, o.after, i, o.after, j))
		}
	}
}

// Options controls Run.
type Options struct {
	// Verify runs f.Verify after every pass.
	Verify bool
	// Check catches a pass that changed the printed function but reported
	// changed=false.
	Check bool
	// DumpAfter selects, by name, the passes after which f is written to
	// DumpDir (default ".") as <func>_<seq>__<pass>.ir.
	DumpAfter *regexp.Regexp
	DumpDir   string
	// Passes names the passes to run, in pipeline order; nil runs them all.
	Passes []string
}

// Run runs the pipeline's passes on f in order.
func Run(f *ir.Func, opt Options) error { return run(f, opt, pipeline[:]) }

func run(f *ir.Func, opt Options, table []pass) error {
	known := map[string]bool{}
	for _, p := range table {
		known[p.name] = true
	}
	want := map[string]bool{}
	for _, n := range opt.Passes {
		if !known[n] {
			return fmt.Errorf("unknown pass %q", n)
		}
		want[n] = true
	}
	for seq, p := range table {
		if opt.Passes != nil && !want[p.name] {
			continue
		}
		var before uint64
		if opt.Check {
			before = textHash(f)
		}
		changed, err := p.fn(f)
		if err != nil {
			return fmt.Errorf("in pass %s: %v", p.name, err)
		}
		if opt.Verify {
			if err := f.Verify(); err != nil {
				return fmt.Errorf("after pass %s: %v", p.name, err)
			}
		}
		if opt.Check && !changed && textHash(f) != before {
			return fmt.Errorf("after pass %s: the function changed, but the pass reported no change", p.name)
		}
		if opt.DumpAfter != nil && opt.DumpAfter.MatchString(p.name) {
			dir := opt.DumpDir
			if dir == "" {
				dir = "."
			}
			name := fmt.Sprintf("%s_%02d__%s.ir", f.Name, seq, p.name)
			if err := atomicfile.Write(filepath.Join(dir, name), []byte(f.String()), 0o644); err != nil {
				return fmt.Errorf("after pass %s: %v", p.name, err)
			}
		}
	}
	return nil
}

func textHash(f *ir.Func) uint64 {
	h := fnv.New64a()
	h.Write([]byte(f.String()))
	return h.Sum64()
}

// Lookup returns the pass named name.
func Lookup(name string) (Pass, bool) {
	for _, p := range pipeline {
		if p.name == name {
			return p.fn, true
		}
	}
	return nil, false
}

// Names lists the passes in pipeline order.
func Names() []string {
	names := make([]string, len(pipeline))
	for i, p := range pipeline {
		names[i] = p.name
	}
	return names
}
