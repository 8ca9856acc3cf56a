// Package passes holds xlc's graph-to-graph passes and the pipeline that runs
// them. Each pass lives in its own file, whose doc comment states what the pass
// guarantees afterwards; the pipeline is the table below.
//
// The train step these passes run on is built before them, by package
// trainstep.
package passes

import (
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"xlc/internal/atomicfile"
	"xlc/ir"
)

// A Pass rewrites f in place and reports whether it changed anything.
type Pass func(f *ir.Func) (changed bool, err error)

type pass struct {
	name string // kebab-case
	fn   func(f *ir.Func, opt Options) (changed bool, err error)
	// on, when set, decides from the options whether the pass runs when
	// Options.Passes does not name the passes; nil runs it always.
	on  func(opt Options) bool
	doc string
}

// plain adapts a pass that takes no options.
func plain(p Pass) func(*ir.Func, Options) (bool, error) {
	return func(f *ir.Func, _ Options) (bool, error) { return p(f) }
}

// pipeline is every pass, in the order Run runs them.
var pipeline = [...]pass{
	{name: "simplify", fn: plain(simplify), doc: "fold constants, apply algebraic identities, fold shape ops, CSE and DCE to a fixed point"},
	{name: "cse", fn: plain(cse), doc: "merge identical instructions"},
	{name: "dce", fn: plain(dce), doc: "drop instructions that no result depends on"},
	{name: "softmax-grad", fn: plain(softmaxGrad),
		doc: "the backward of a softmax reads its output p and its sum s (p·s for exp's output), not its input"},
	{name: "attention-d", fn: plain(attentionD), on: func(opt Options) bool { return opt.Attention },
		doc: "attention's backward takes each row's D = Σ dP·P over the keys as Σ dO·O over the head dimension (FlashAttention-2), so dS is elementwise (with Options.Attention)"},
	{name: "remat", fn: remat, on: func(opt Options) bool { return opt.Attention || opt.RematActivations },
		doc: "attention's probabilities, read by P·V and again later, are recomputed for the later reads (with Options.Attention), and large activations too (Options.RematActivations)"},
	// layout runs where fusion does: the layouts it leaves are those the
	// compiled kernels read in place; the interpreter reads any.
	{name: "layout", fn: plain(layout), on: func(opt Options) bool { return opt.Fuse },
		doc: "fold transposes into the dots and reductions that read them (dims renumbered), where the reader can take the other order (with Options.Fuse)"},
	// precision runs after layout, so that the conversions it puts before
	// the dots do not hide the transposes layout folds into them.
	{name: "precision", fn: precision, on: func(opt Options) bool { return opt.Precision == ir.BF16 || opt.Precision == ir.F16 },
		doc: "matrix products read their f32 operands in the half type Options.Precision and sum in f32"},
	{name: "linearize", fn: plain(linearize),
		doc: "an elementwise backward linear in its cotangent dy becomes dy·J, J (the derivative) computed in the forward beside the activation"},
	{name: "fusion", fn: fusion, on: func(opt Options) bool { return opt.Fuse },
		doc: "group instructions into loop, reduce and dot kernels called as fused functions (Options.Fuse)"},
}

// passOrder lists pairs of passes where before must run before after.
var passOrder = [...]struct{ before, after string }{
	{"layout", "precision"},         // see the table
	{"precision", "fusion"},         // fusion places the conversions
	{"cse", "dce"},                  // CSE leaves the operands of merged duplicates dead
	{"simplify", "fusion"},          // fused functions are not simplified
	{"dce", "fusion"},               // a dead value would become a kernel
	{"simplify", "layout"},          // transposes of transposes are composed first
	{"layout", "fusion"},            // fusion would hide the transposes in loop kernels
	{"simplify", "softmax-grad"},    // p·s is not folded back into exp's output
	{"softmax-grad", "fusion"},      // the forward's kernel then ends the input's life
	{"softmax-grad", "remat"},       // the backward reads p, not exp's output
	{"softmax-grad", "attention-d"}, // D's product reads P·V's operand p
	{"attention-d", "remat"},        // P's readers in the backward are fewer
	{"attention-d", "fusion"},       // dS's kernel needs no pass over the row
	{"remat", "precision"},          // the probabilities' first reader is still their dot
	{"remat", "fusion"},             // the forward's attention becomes one kernel
	{"remat", "linearize"},          // values remat makes the backward read stay alive
	{"precision", "linearize"},      // a half copy the backward reads is freed too
	{"linearize", "fusion"},         // J's kernel is the activation's
	{"dce", "linearize"},            // readers counted are live ones
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
	// DumpDir (default "."; created if need be) as <func>_<seq>__<pass>.ir.
	DumpAfter *regexp.Regexp
	DumpDir   string
	// Passes names the passes to run, in pipeline order; nil runs them all
	// but those off by default (precision, layout and fusion).
	Passes []string

	// Fuse runs the layout and fusion passes, off by default: the
	// interpreter gains nothing from them; a compiled backend sets it.
	Fuse bool
	// FusionFuel is how many decisions to fuse the fusion pass may take
	// (the first N, in its deterministic order), so that a miscompile can be
	// bisected to one decision; UnlimitedFuel (-1) takes them all. The zero
	// value fuses nothing: set -1 with Fuse.
	FusionFuel int
	// FusionLog, when set, receives one line per fusion decision with its
	// reason: "fuse %12 (exp) into %13 (reduce_sum): producer of a reduction".
	FusionLog io.Writer

	// Attention makes attention one kernel (kind=attention: scores,
	// softmax and the product by the values) that never stores the
	// probabilities, and recomputes them for the backward (remat), whose
	// kernels become one too (kind=attention_grad), each row's D summed
	// beforehand from the output (attention-d). Set it with Fuse for a
	// compiled backend: every codegen target lowers such kernels.
	Attention bool
	// RematActivations makes remat recompute large activations for the
	// backward too (the train setting remat = "activations").
	RematActivations bool

	// Precision, bf16 or f16, runs the precision pass (mixed precision);
	// f32 or the zero value leaves every type as it is.
	Precision ir.DType
	// PrecisionLog, when set, receives one line per dot: "half %12 (dot
	// f32[64,64]): reads %3 and %w in bf16, sums in f32".
	PrecisionLog io.Writer
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
		if opt.Passes != nil && !want[p.name] || opt.Passes == nil && p.on != nil && !p.on(opt) {
			continue
		}
		var before uint64
		if opt.Check {
			before = textHash(f)
		}
		changed, err := p.fn(f, opt)
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
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("after pass %s: %v", p.name, err)
			}
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

// Lookup returns the pass named name, with default options (for fusion:
// unlimited fuel, no log).
func Lookup(name string) (Pass, bool) {
	for _, p := range pipeline {
		if p.name == name {
			fn := p.fn
			return func(f *ir.Func) (bool, error) { return fn(f, Options{FusionFuel: UnlimitedFuel}) }, true
		}
	}
	return nil, false
}

// runPass runs the pass named name once with opt and reports whether it
// changed f.
func runPass(name string, f *ir.Func, opt Options) (bool, error) {
	for _, p := range pipeline {
		if p.name == name {
			return p.fn(f, opt)
		}
	}
	return false, fmt.Errorf("unknown pass %q", name)
}

// Names lists the passes in pipeline order.
func Names() []string {
	names := make([]string, len(pipeline))
	for i, p := range pipeline {
		names[i] = p.name
	}
	return names
}

// analyses run on the final function, after the pipeline, and change
// nothing: each returns a printable result (a golden test's want.plan).
var analyses = [...]struct {
	name string
	fn   func(f *ir.Func) (fmt.Stringer, error)
	doc  string
}{
	{name: "buffers", fn: planAndVerify, doc: "plan every value's buffer (liveness, arena offsets with reuse, donated results in place) and verify the plan"},
}

// Analyze runs the analysis named name on f.
func Analyze(name string, f *ir.Func) (fmt.Stringer, error) {
	for _, a := range analyses {
		if a.name == name {
			return a.fn(f)
		}
	}
	return nil, fmt.Errorf("unknown analysis %q", name)
}

// IsAnalysis reports whether name is an analysis rather than a pass.
func IsAnalysis(name string) bool {
	for _, a := range analyses {
		if a.name == name {
			return true
		}
	}
	return false
}
