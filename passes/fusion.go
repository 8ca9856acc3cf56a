package passes

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"xlc/ir"
)

// UnlimitedFuel is the Options.FusionFuel that lets the fusion pass take
// every decision to fuse.
const UnlimitedFuel = -1

// fusion groups f's instructions into kernels, each group of two or more
// becoming a fusion instruction that calls a fused function. Afterwards:
//   - every callee is a loop kernel (elementwise and shape ops), a reduce
//     kernel (reductions over one set of rows) or a dot kernel;
//   - gather, scatter_add and rng stay alone;
//   - only cheap values (computeCheap) are computed twice, copied into each
//     kernel that uses them;
//   - identical fused functions are one, so a deeper model has no more
//     distinct kernels;
//   - f computes bit for bit what it did, and fusion again changes nothing.
//
// The rules (fusion_rules.go) log each decision (Options.FusionLog) and
// count it against Options.FusionFuel. The pass is linear in the size of f.
func fusion(f *ir.Func, opt Options) (bool, error) {
	fu := newFuser(f, opt)
	if fu.log != nil {
		fmt.Fprintf(fu.log, "# fusion @%s\n", f.Name)
	}
	fu.dotEpilogues()
	fu.computeCheap()
	fu.grow()
	fu.siblings()
	if opt.Attention {
		fu.attention()
		fu.attentionGrad()
	}
	return fu.rewrite()
}

// A kernel is a group of instructions that becomes one fusion: its root and
// its outputs (fusion_outputs.go) are the values used outside it.
type kernel struct {
	root    *ir.Value
	outputs []*ir.Value        // the other results, in the order of the fusion's output instructions
	members map[*ir.Value]bool // the root, the instructions fused into it and the copies of cheap ones
	dot     *ir.Value          // the dot of a dot kernel (of an attention kernel: P·V)
	// attention: a dot kernel that computes its first operand, attention's
	// probabilities, itself (fusion_attention.go).
	attention bool
	// attentionGrad: attention's backward, dV, dK and dQ from Q, K, V, dO
	// and the row statistics (fusion_attention_grad.go).
	attentionGrad bool
	reduces       bool
	rows          *rowShape              // a reduce kernel's row structure
	state         map[*ir.Value]rowState // a reduce kernel's members' row states (absent: rowFree)
}

func (k *kernel) kind() string {
	switch {
	case k.attention:
		return ir.FusionAttention
	case k.attentionGrad:
		return ir.FusionAttentionGrad
	case k.dot != nil:
		return ir.FusionDot
	case k.reduces:
		return ir.FusionReduce
	}
	return ir.FusionLoop
}

// fuser is the state of one run of the fusion pass.
type fuser struct {
	f      *ir.Func
	users  [][]*ir.Value // by ID: the distinct instructions using the value
	result []bool        // by ID: the value is a result of f
	kernel []*kernel     // by ID: the kernel an instruction belongs to (copies of cheap ones excluded)
	copies [][]*kernel   // by ID: the kernels a cheap instruction is copied into
	needed []bool        // by ID, for cheap instructions: the original stays in f
	cheap  []cheapness   // by ID
	fuel   int           // decisions to fuse left; negative: unlimited
	joined []*ir.Value   // the members of a dot kernel that just joined a row kernel, for fill to take their producers
	log    io.Writer
}

func newFuser(f *ir.Func, opt Options) *fuser {
	f.Renumber()
	n := len(f.Body)
	fu := &fuser{
		f:      f,
		users:  make([][]*ir.Value, n),
		result: make([]bool, n),
		kernel: make([]*kernel, n),
		copies: make([][]*kernel, n),
		needed: make([]bool, n),
		cheap:  make([]cheapness, n),
		fuel:   opt.FusionFuel,
		log:    opt.FusionLog,
	}
	for _, v := range f.Body {
		for _, a := range v.Args {
			if a.IsParam() {
				continue
			}
			if u := fu.users[a.ID]; len(u) == 0 || u[len(u)-1] != v {
				fu.users[a.ID] = append(u, v)
			}
		}
	}
	for _, r := range f.Results {
		if !r.IsParam() {
			fu.result[r.ID] = true
		}
	}
	return fu
}

// logName is how the log names v: "%12 (exp)".
func logName(v *ir.Value) string { return v.Ref() + " (" + v.Op.String() + ")" }

func (fu *fuser) logf(format string, args ...any) {
	if fu.log != nil {
		fmt.Fprintf(fu.log, format+"\n", args...)
	}
}

// take spends one unit of fuel; false when none is left.
func (fu *fuser) take() bool {
	if fu.fuel == 0 {
		return false
	}
	if fu.fuel > 0 {
		fu.fuel--
	}
	return true
}

// rewrite replaces every kernel of two or more members by a fusion and
// drops the copied cheap instructions that nothing uses any more.
func (fu *fuser) rewrite() (bool, error) {
	f := fu.f
	byKey := map[string]*ir.Func{}
	next := 0
	for _, c := range f.Callees() {
		byKey[calleeKey(c)] = c
		if s, ok := strings.CutPrefix(c.Name, "fused."); ok {
			if n, err := strconv.Atoi(s); err == nil && n >= next {
				next = n + 1
			}
		}
	}
	repl := make([]*ir.Value, len(f.Body))
	body := make([]*ir.Value, 0, len(f.Body))
	changed := false
	get := func(a *ir.Value) *ir.Value {
		if !a.IsParam() && repl[a.ID] != nil {
			return repl[a.ID]
		}
		return a
	}
	for _, v := range f.Body {
		k := fu.kernel[v.ID]
		switch {
		case k != nil && len(k.members) > 1:
			changed = true
			if v != k.root {
				continue // inside the kernel
			}
			if err := k.checkOutputs(); err != nil {
				return false, fmt.Errorf("fusion: @%s: %v", f.Name, err)
			}
			callee, inputs := buildCallee(k)
			key := calleeKey(callee)
			if c, ok := byKey[key]; ok {
				callee = c
			} else {
				byKey[key] = callee
				for f.Name == "fused."+strconv.Itoa(next) {
					next++
				}
				callee.Name = "fused." + strconv.Itoa(next)
				next++
			}
			fv := &ir.Value{
				Op:     ir.OpFusion,
				Args:   inputs,
				Type:   v.Type,
				Attrs:  ir.Attrs{}.Set("calls", callee.Name).Set("kind", k.kind()),
				Callee: callee,
			}
			repl[v.ID] = fv
			body = append(body, fv)
			for i, o := range k.outputs {
				ov := &ir.Value{Op: ir.OpOutput, Args: []*ir.Value{fv}, Type: o.Type, Attrs: ir.Attrs{}.Set("index", i+1)}
				repl[o.ID] = ov
				body = append(body, ov)
			}
		case len(fu.copies[v.ID]) > 0 && !fu.needed[v.ID]:
			changed = true // copied into every kernel that uses it
		default:
			body = append(body, v)
		}
	}
	// Operands are replaced once every kernel has its fusion: a cheap value
	// left in f may read an output of a later kernel (schedule moves it).
	for _, v := range body {
		if v.Op != ir.OpOutput {
			for i, a := range v.Args {
				v.Args[i] = get(a)
			}
		}
	}
	for i, r := range f.Results {
		f.Results[i] = get(r)
	}
	body, err := schedule(body)
	if err != nil {
		return false, fmt.Errorf("fusion: @%s: %v", f.Name, err)
	}
	f.Body = body
	f.Renumber()
	return changed, nil
}

// schedule orders body so that every instruction comes after its operands,
// keeping the given order where it already is: an instruction whose
// operand comes later (a cheap value left in f that reads a kernel's
// output, written where the kernel's root was) waits until that operand is
// placed. A fusion's outputs stay right after it.
func schedule(body []*ir.Value) ([]*ir.Value, error) {
	inBody := make(map[*ir.Value]bool, len(body))
	outputs := map[*ir.Value][]*ir.Value{}
	for _, v := range body {
		inBody[v] = true
		if v.Op == ir.OpOutput {
			outputs[v.Args[0]] = append(outputs[v.Args[0]], v)
		}
	}
	placed := make(map[*ir.Value]bool, len(body))
	waitsFor := map[*ir.Value][]*ir.Value{} // operand → instructions waiting for it
	missing := map[*ir.Value]int{}
	out := make([]*ir.Value, 0, len(body))
	var place func(v *ir.Value)
	place = func(v *ir.Value) {
		done := append([]*ir.Value{v}, outputs[v]...)
		out = append(out, done...)
		for _, d := range done {
			placed[d] = true
		}
		for _, d := range done {
			for _, w := range waitsFor[d] {
				if missing[w]--; missing[w] == 0 {
					place(w)
				}
			}
			delete(waitsFor, d)
		}
	}
	for _, v := range body {
		if v.Op == ir.OpOutput {
			continue // placed with its fusion
		}
		n := 0
		for i, a := range v.Args {
			if inBody[a] && !placed[a] && !slices.Contains(v.Args[:i], a) {
				waitsFor[a] = append(waitsFor[a], v)
				n++
			}
		}
		if n == 0 {
			place(v)
		} else {
			missing[v] = n
		}
	}
	if len(out) != len(body) {
		return nil, fmt.Errorf("the kernels depend on each other in a cycle")
	}
	return out, nil
}

// buildCallee makes k's fused function (unnamed): its body is k's members
// in the post-order of walks from the root and then each output over
// operands left to right, a canonical order (two kernels that compute the
// same thing print the same, wherever their constants were defined), its
// parameters are the values k reads from outside in order of first use,
// and its results are the root and the outputs. It returns those values
// too.
func buildCallee(k *kernel) (*ir.Func, []*ir.Value) {
	var order []*ir.Value
	done := make(map[*ir.Value]bool, len(k.members))
	type frame struct {
		v    *ir.Value
		next int
	}
	for _, r := range k.results() {
		if done[r] {
			continue // a producer of an earlier result
		}
		done[r] = true
		stack := []frame{{v: r}}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(top.v.Args) {
				a := top.v.Args[top.next]
				top.next++
				if k.members[a] && !done[a] {
					done[a] = true
					stack = append(stack, frame{v: a})
				}
				continue
			}
			order = append(order, top.v)
			stack = stack[:len(stack)-1]
		}
	}
	c := &ir.Func{}
	val := make(map[*ir.Value]*ir.Value, len(order))
	var inputs []*ir.Value
	for _, m := range order {
		args := make([]*ir.Value, len(m.Args))
		for i, a := range m.Args {
			w, ok := val[a]
			if !ok {
				w = &ir.Value{Name: "p" + strconv.Itoa(len(c.Params)), Type: cloneType(a.Type)}
				c.Params = append(c.Params, w)
				inputs = append(inputs, a)
				val[a] = w
			}
			args[i] = w
		}
		w := &ir.Value{Op: m.Op, Args: args, Type: cloneType(m.Type), Attrs: m.Attrs, ID: len(c.Body)}
		c.Body = append(c.Body, w)
		val[m] = w
	}
	for _, r := range k.results() {
		c.Results = append(c.Results, val[r])
	}
	return c, inputs
}

// calleeKey is the structural identity of a fused function: its text
// without its name (ops, types, attributes, parameter order).
func calleeKey(c *ir.Func) string {
	saved := c.Name
	c.Name = ""
	var b strings.Builder
	c.Print(&b)
	c.Name = saved
	return b.String()
}

// Kernels counts the kernels f runs: its fusions and its other instructions
// except constants (splats, which a backend folds into their users),
// reshapes (a row-major reshape moves no data) and outputs (written by their
// fusion's kernel).
func Kernels(f *ir.Func) int {
	n := 0
	for _, v := range f.Body {
		if v.Op != ir.OpConstant && v.Op != ir.OpReshape && v.Op != ir.OpOutput {
			n++
		}
	}
	return n
}
