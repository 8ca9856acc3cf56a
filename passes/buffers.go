package passes

import (
	"fmt"
	"strings"

	"xlc/ir"
)

// PlanBuffers plans the memory of f's values, without changing f, for a
// backend that runs its instructions one by one in body order:
//   - every parameter has its own buffer;
//   - every other storage class (a value and its aliases, see liveness) has
//     a 64-byte-aligned arena offset, chosen best-fit; two classes share
//     bytes only when their lives are disjoint;
//   - a parameter's new value (a result named like a role=param or
//     role=state parameter) is written into its buffer when nothing reads
//     the old value afterwards, or its kernel reads it only at the index it
//     writes; Donations says why or why not.
//
// Verify proves the plan sound. Sizes are the CPU backend's: dense,
// row-major, at least 64 bytes.
func PlanBuffers(f *ir.Func) (*BufferPlan, error) {
	if f == nil {
		return nil, fmt.Errorf("buffers: nil function")
	}
	lv, err := liveness(f)
	if err != nil {
		return nil, err
	}
	n := len(f.Body)
	p := &BufferPlan{
		Func:        f.Name,
		ParamOffset: make([]int, len(f.Params)),
		Loc:         make([]Loc, n),
		Bytes:       make([]int, n),
		Def:         make([]int, n),
		Last:        make([]int, n),
	}
	for _, v := range f.Body {
		p.ops = append(p.ops, v.Op.String())
	}
	for i, q := range f.Params {
		p.params = append(p.params, q.Name)
		p.ParamOffset[i] = p.ParamBytes
		p.ParamBytes += bufferBytes(q)
	}
	p.NaiveBytes = p.ParamBytes
	for _, v := range f.Body {
		if !isAlias(v) {
			p.NaiveBytes += bufferBytes(v)
		}
	}

	// Donations: which instruction classes go into a parameter's buffer.
	// The parameter's class must be dead by then: its last use comes before
	// the instruction defining the result's class, or is that instruction
	// itself and the instruction reads the parameter only at the index it
	// writes (inPlaceSafe). Otherwise the result keeps its own buffer.
	pidx := paramIndexes(f)
	inParam := map[int]int{} // root body index → parameter index
	claimed := map[int]bool{}
	for k, r := range f.Results {
		if k >= len(f.ResultNames) {
			break // unnamed results are no parameter's new value
		}
		name := f.ResultNames[k]
		pi := indexOr(pidx, name)
		if pi < 0 {
			continue
		}
		prm := f.Params[pi]
		if role := prm.Role(); role != "param" && role != "state" {
			continue
		}
		d := Donation{Result: name, Param: pi}
		root := lv.root[r]
		switch {
		case root == prm:
			d.InPlace, d.Why = true, "unchanged: the result is the parameter"
		case root.IsParam():
			d.Why = fmt.Sprintf("the result is parameter %%%s", root.Name)
		case claimed[pi]:
			d.Why = fmt.Sprintf("%%%s's buffer already holds another result", prm.Name)
		default:
			ri, t := lv.index[root], lv.def[root] // t: when root's kernel runs
			if q, ok := inParam[ri]; ok {
				d.Why = fmt.Sprintf("%%%d already goes into %%%s", ri, f.Params[q].Name)
				break
			}
			if bufferBytes(root) > bufferBytes(prm) {
				d.Why = fmt.Sprintf("%%%d needs %d bytes, %%%s has %d", ri, bufferBytes(root), prm.Name, bufferBytes(prm))
				break
			}
			last := lv.last[prm]
			switch {
			case last == n:
				d.Why = fmt.Sprintf("%%%s is itself (an alias of) a result", prm.Name)
			case last < t:
				d.InPlace = true
				if last < 0 {
					d.Why = fmt.Sprintf("%%%s is not used", prm.Name)
				} else {
					d.Why = fmt.Sprintf("last use of %%%s at %%%d, before %%%d", prm.Name, last, t)
				}
			case last == t && inPlaceSafe(root, prm, lv):
				d.InPlace, d.Why = true, fmt.Sprintf("last use of %%%s at %%%d, which reads it elementwise", prm.Name, t)
			case last == t:
				d.Why = fmt.Sprintf("%%%d reads %%%s at other indices than it writes", t, prm.Name)
			default:
				d.Why = fmt.Sprintf("%%%s is used at %%%d, after %%%d", prm.Name, last, ri)
			}
			if d.InPlace {
				inParam[ri] = pi
				claimed[pi] = true
			}
		}
		p.Donations = append(p.Donations, d)
		if d.InPlace {
			p.InPlace = append(p.InPlace, name)
		}
	}

	// Arena assignment in schedule order, best-fit among the ranges freed
	// by classes already dead: a class whose last use is instruction i is
	// free for the result of instruction i+1, never for i's own result.
	expire := make([][]int, n+1) // by last use: roots whose class dies there
	var fl freeList
	cur := 0
	released := 0 // times whose dead classes are released
	for i, v := range f.Body {
		// An output is written at its fusion's time: what dies there is
		// released only after every output of the fusion has its place.
		for ; released < i && v.Op != ir.OpOutput; released++ {
			for _, j := range expire[released] {
				fl.release(p.Loc[j].Offset, p.Bytes[j])
				cur -= p.Bytes[j]
			}
		}
		p.Def[i], p.Last[i] = lv.def[lv.root[v]], lv.last[lv.root[v]]
		if isAlias(v) {
			a := v.Args[0]
			if a.IsParam() {
				p.Loc[i] = Loc{Param: pidx[a.Name]}
				p.Bytes[i] = p.bytesOfParam(f, p.Loc[i].Param)
			} else {
				j := lv.index[a]
				p.Loc[i], p.Bytes[i] = p.Loc[j], p.Bytes[j]
			}
			continue
		}
		p.Bytes[i] = bufferBytes(v)
		if pi, ok := inParam[i]; ok {
			p.Loc[i] = Loc{Param: pi}
			continue
		}
		p.Loc[i] = Loc{Param: -1, Offset: fl.alloc(p.Bytes[i])}
		cur += p.Bytes[i]
		p.LiveBytes = max(p.LiveBytes, cur)
		last := lv.last[v]
		if last < n {
			expire[last] = append(expire[last], i)
		}
	}
	p.ArenaBytes = fl.top
	p.PeakBytes = p.ParamBytes + p.ArenaBytes
	return p, nil
}

// Loc is where a value's bytes are: parameter Param's buffer (Param >= 0),
// or the arena at Offset (Param == -1).
type Loc struct {
	Param  int
	Offset int
}

// A Donation is the decision for one result named like a role=param or
// role=state parameter.
type Donation struct {
	Result  string
	Param   int // index in f.Params
	InPlace bool
	Why     string
}

// BufferPlan is PlanBuffers' result. Slices indexed by instruction follow
// f.Body's order.
type BufferPlan struct {
	Func string
	// ParamOffset is each parameter's byte offset in the parameter region
	// of ParamBytes; each parameter has its own buffer.
	ParamOffset []int
	ParamBytes  int
	// Loc is where each instruction's result lives: an alias where its
	// operand does, a donated result in its parameter's buffer, any other
	// in the arena.
	Loc []Loc
	// Bytes is each instruction's buffer size (64-byte aligned, at least
	// 64); an alias has its root's.
	Bytes []int
	// Def and Last are the life of each instruction's storage class: the
	// times (instruction indices) of its root's definition (-1: a
	// parameter) and of its last use (len(f.Body): a result).
	Def, Last []int
	// ArenaBytes is the arena's size; LiveBytes the most arena bytes live
	// at one time, the least any placement for this schedule needs.
	ArenaBytes int
	LiveBytes  int
	// PeakBytes is the memory the plan needs: ParamBytes + ArenaBytes.
	PeakBytes int
	// NaiveBytes is the memory without planning: one buffer per parameter
	// and per instruction that is not an alias.
	NaiveBytes int
	// Donations, in result order; InPlace names the results written into
	// their parameter's buffer.
	Donations []Donation
	InPlace   []string

	params, ops []string // for printing: f's parameter names, each instruction's op
}

func (p *BufferPlan) bytesOfParam(f *ir.Func, i int) int { return bufferBytes(f.Params[i]) }

// String prints the plan: a summary line, one line per instruction, one
// per donation.
func (p *BufferPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "buffers @%s: peak %d B = params %d B + arena %d B (live at most %d B); without reuse %d B\n",
		p.Func, p.PeakBytes, p.ParamBytes, p.ArenaBytes, p.LiveBytes, p.NaiveBytes)
	pname := func(i int) string {
		if i < len(p.params) {
			return "%" + p.params[i]
		}
		return fmt.Sprintf("param#%d", i)
	}
	n := len(p.Loc)
	for i, l := range p.Loc {
		op := ""
		if i < len(p.ops) {
			op = " " + p.ops[i]
		}
		last := fmt.Sprint(p.Last[i])
		if p.Last[i] == n {
			last = "end"
		}
		def := fmt.Sprint(p.Def[i])
		if p.Def[i] < 0 {
			def = "start"
		}
		where := fmt.Sprintf("arena %d", l.Offset)
		if l.Param >= 0 {
			where = "in " + pname(l.Param)
		}
		fmt.Fprintf(&b, "%%%d%s: %d B, live [%s,%s], %s\n", i, op, p.Bytes[i], def, last, where)
	}
	for _, d := range p.Donations {
		how := "own buffer"
		if d.InPlace {
			how = "in place"
		}
		fmt.Fprintf(&b, "donate %s -> %s: %s (%s)\n", d.Result, pname(d.Param), how, d.Why)
	}
	return b.String()
}

// bufferBytes is v's buffer size: dense, 64-byte aligned, at least 64.
func bufferBytes(v *ir.Value) int {
	return (max(1, v.Type.Shape.NumElements()*v.Type.DType.Size()) + 63) &^ 63
}

// isAlias reports whether v shares its operand's storage (codegen's no-ops).
func isAlias(v *ir.Value) bool { return v.Op == ir.OpReshape || v.Op == ir.OpStopGradient }

// paramIndexes maps each parameter's name to its index: one map, so that
// lookups stay O(1) on functions with thousands of parameters.
func paramIndexes(f *ir.Func) map[string]int {
	m := make(map[string]int, len(f.Params))
	for i, q := range f.Params {
		m[q.Name] = i
	}
	return m
}

// indexOr returns m[name], or -1 when name is absent.
func indexOr(m map[string]int, name string) int {
	if i, ok := m[name]; ok {
		return i
	}
	return -1
}

// live holds the storage classes of a function and their lives.
type live struct {
	root  map[*ir.Value]*ir.Value // every value → its class's root
	index map[*ir.Value]int       // instruction → body index
	def   map[*ir.Value]int       // root → time of definition (-1: parameter)
	last  map[*ir.Value]int       // root → time of last use (len(Body): a result)
}

// liveness finds f's storage classes and their lives. reshape and
// stop_gradient (codegen's no-op aliases) share their operand's storage, so
// a value and its aliases form one class, live from the instruction that
// defines its root (parameters: from the start) through the last
// instruction that uses any member; a class holding a result lives to the
// end (time len(f.Body)). A value nobody uses still lives at its own
// instruction, which writes it. An output instruction is written by its
// fusion's kernel: its class is defined at the fusion's time, so it never
// shares bytes with what the fusion reads.
func liveness(f *ir.Func) (*live, error) {
	n := len(f.Body)
	lv := &live{
		root:  make(map[*ir.Value]*ir.Value, n+len(f.Params)),
		index: make(map[*ir.Value]int, n),
		def:   map[*ir.Value]int{},
		last:  map[*ir.Value]int{},
	}
	for _, q := range f.Params {
		lv.root[q], lv.def[q], lv.last[q] = q, -1, -1
	}
	for i, v := range f.Body {
		lv.index[v] = i
		if v.Op == ir.OpOutput {
			// Written by its fusion's kernel, at the fusion's time; it
			// reads nothing.
			t, ok := lv.index[v.Args[0]]
			if !ok {
				return nil, fmt.Errorf("buffers: @%s: %%%d is the output of a value not defined before it", f.Name, i)
			}
			lv.root[v], lv.def[v], lv.last[v] = v, t, t
			continue
		}
		for _, a := range v.Args {
			r, ok := lv.root[a]
			if !ok {
				return nil, fmt.Errorf("buffers: @%s: %%%d uses a value not defined before it", f.Name, i)
			}
			lv.last[r] = max(lv.last[r], i)
		}
		if isAlias(v) {
			lv.root[v] = lv.root[v.Args[0]]
			continue
		}
		lv.root[v], lv.def[v], lv.last[v] = v, i, i
	}
	for _, r := range f.Results {
		root, ok := lv.root[r]
		if !ok {
			return nil, fmt.Errorf("buffers: @%s: a result is not defined in the function", f.Name)
		}
		lv.last[root] = n
	}
	return lv, nil
}

// inPlaceSafe reports whether instruction v may write its result over the
// buffer of parameter prm (whose class v's kernel is the last to use): the
// kernel reads every operand of prm's class only at the index it writes.
// For an output instruction, the kernel is its fusion's, which writes all
// its results at each index of their one shape (a loop fusion).
func inPlaceSafe(v *ir.Value, prm *ir.Value, lv *live) bool {
	if v.Type.Shape.NumElements() != prm.Type.Shape.NumElements() || v.Type.DType.Size() != prm.Type.DType.Size() {
		return false
	}
	if v.Op == ir.OpOutput {
		v = v.Args[0]
	}
	var callee *ir.Func
	switch {
	case v.Op.IsElementwise():
	case v.Op == ir.OpFusion && v.Callee != nil && v.Attrs.String("kind") == ir.FusionLoop:
		callee = v.Callee
	default:
		return false
	}
	for k, a := range v.Args {
		if lv.root[a] != prm {
			continue
		}
		if a.Type.Shape.NumElements() != v.Type.Shape.NumElements() {
			return false
		}
		if callee != nil && !elementwiseToRoot(callee, callee.Params[k]) {
			return false
		}
	}
	return true
}

// elementwiseToRoot reports whether every use of q in c, and of every value
// computed from it, is elementwise, so each of c's results (all of one
// shape) reads q only at its own index.
func elementwiseToRoot(c *ir.Func, q *ir.Value) bool {
	for _, r := range c.Results {
		if !r.Type.Shape.Equal(c.Results[0].Type.Shape) {
			return false
		}
	}
	tainted := map[*ir.Value]bool{q: true}
	for _, w := range c.Body {
		for _, a := range w.Args {
			if !tainted[a] {
				continue
			}
			if !w.Op.IsElementwise() || !w.Type.Shape.Equal(c.Results[0].Type.Shape) {
				return false
			}
			tainted[w] = true
		}
	}
	return true
}

// freeList is the arena's free ranges, sorted by offset and coalesced, below
// its high-water mark top.
type freeList struct {
	blocks []block
	top    int
}

type block struct{ off, size int }

// alloc returns the offset of n free bytes: the smallest free range that
// fits (the lowest such), else a free range at the top extended, else the
// top.
func (l *freeList) alloc(n int) int {
	best := -1
	for i, b := range l.blocks {
		if b.size >= n && (best < 0 || b.size < l.blocks[best].size) {
			best = i
		}
	}
	if best >= 0 {
		b := &l.blocks[best]
		off := b.off
		b.off += n
		b.size -= n
		if b.size == 0 {
			l.blocks = append(l.blocks[:best], l.blocks[best+1:]...)
		}
		return off
	}
	if k := len(l.blocks) - 1; k >= 0 && l.blocks[k].off+l.blocks[k].size == l.top {
		off := l.blocks[k].off
		l.blocks = l.blocks[:k]
		l.top = off + n
		return off
	}
	off := l.top
	l.top += n
	return off
}

func (l *freeList) release(off, n int) {
	i := 0
	lo, hi := 0, len(l.blocks)
	for lo < hi {
		m := (lo + hi) / 2
		if l.blocks[m].off < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i = lo
	l.blocks = append(l.blocks, block{})
	copy(l.blocks[i+1:], l.blocks[i:])
	l.blocks[i] = block{off, n}
	if i+1 < len(l.blocks) && l.blocks[i].off+l.blocks[i].size == l.blocks[i+1].off {
		l.blocks[i].size += l.blocks[i+1].size
		l.blocks = append(l.blocks[:i+1], l.blocks[i+2:]...)
	}
	if i > 0 && l.blocks[i-1].off+l.blocks[i-1].size == l.blocks[i].off {
		l.blocks[i-1].size += l.blocks[i].size
		l.blocks = append(l.blocks[:i], l.blocks[i+1:]...)
	}
}

// planAndVerify is the "buffers" analysis: PlanBuffers, then Verify.
func planAndVerify(f *ir.Func) (fmt.Stringer, error) {
	p, err := PlanBuffers(f)
	if err != nil {
		return nil, err
	}
	if err := p.Verify(f); err != nil {
		return nil, err
	}
	return p, nil
}
