// Package codegen lowers an ir.Func to an LLVM IR module of kernels for
// one Target (built with github.com/llir/llvm, printed in the typed-pointer
// syntax LLVM 19 still reads) and turns the module into a shared object
// with LLVM's tools (toolchain.go).
//
// Every instruction that is not a no-op becomes one kernel, a fusion one
// kernel for its whole callee. On a CPU kernel i is the exported function
//
//	void xlc_k<i>(void **bufs, int64_t lo, int64_t hi);
//
// (its target's lowering frames it, lowering.go): bufs holds the operand
// buffers in order, then the results', and a call computes the part
// [lo, hi) of the kernel's parallel range [0, Kernel.Extent); calls on
// disjoint parts may run at once. Structurally identical kernels share one
// symbol, so a 20-layer model has as many kernel functions as a 2-layer
// one. Buffers are dense and row-major; f16 and bf16 travel as i16 bit
// patterns, bool as an i8 holding 0 or 1. reshape and stop_gradient get no
// kernel: Program.Aliases tell the runtime to share the operand's buffer.
//
// Kernels compute what runtime/interp computes, bit for bit except where
// scalar.go says otherwise (f32 exp, log, tanh and erf within 2 ulps, the
// fast dot's float accumulation, reassociated float sums). Compile assumes
// the buffer layout passes.PlanBuffers gives, in which a result may be
// written over an operand it reads (see Kernel.InPlace).
package codegen

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/llir/llvm/ir/types"

	"xlc/ir"
	"xlc/passes"
)

// Options are the code generation settings.
type Options struct {
	// Target is the machine the kernels are for; when nil, CPU names it
	// (TargetFor: a class, an LLVM CPU or an architecture; "" means
	// HostTarget).
	Target *Target
	CPU    string
}

// Kernel is one compiled instruction.
type Kernel struct {
	// Symbol is the exported C function, xlc_k<Instr>.
	Symbol string
	// Instr is the instruction's index in f.Body.
	Instr int
	// Extent is the size of the parallel range [0, Extent).
	Extent int64
	// Args are the operands whose buffers come first in bufs, in order; the
	// result buffers follow them: Results, f.Body[Instr] and, for a
	// multi-output fusion, its output instructions.
	Args    []*ir.Value
	Results []*ir.Value
	// Cost estimates the scalar operations per unit of the range, for
	// deciding how to split it.
	Cost int64
	// Lowering is how the kernel computes its instruction (LowerRows,
	// LowerFastDot, ...), for profiles.
	Lowering string
	// InPlace maps the index in Args of each operand that shares a
	// result's buffer in passes.PlanBuffers(f)'s plan (a donated result
	// written over an operand read at the index it writes) to that
	// result's index in Results. noalias on two pointers to the same
	// bytes, one written, would be undefined, so the kernel reads such an
	// operand through the result pointer; the runtime must pass the same
	// address for both. A kernel with in-place operands is never shared
	// with one without.
	InPlace map[int]int
	// Scratch, when not 0, is the bytes of a buffer that the runtime
	// passes after the results (columnChunks' partial sums, dotSplit's
	// partial products): zeroed when allocated; its first 8 bytes are
	// zero when a call of the kernel starts, and the kernel leaves them
	// so. Kernels that do not run at the same time may share it.
	Scratch int64
	// Grid and Threads are a GPU kernel's launch configuration, chosen
	// at compile time: Grid blocks of Threads threads each, the entry
	// taking the buffers' device array and n (each thread runs the units
	// a grid apart); 0 on a CPU target. On the emulator (gpu-emu), whose
	// frame runs blocks, Extent is Grid.
	Grid, Threads int
}

// Alias says that instruction Instr is a no-op whose result shares the
// buffer of Of (which may itself be an alias).
type Alias struct {
	Instr int
	Of    *ir.Value
}

// Program is a function lowered to one LLVM module.
type Program struct {
	// LL is the module's text.
	LL string
	// Target is the machine the kernels were compiled for; CPU is its
	// name.
	Target *Target
	CPU    string
	// Kernels are in instruction order; run them in this order.
	Kernels []Kernel
	// Aliases are the no-op instructions.
	Aliases []Alias
	// Warnings are one line per kernel lowered as LowerRecompute.
	Warnings []string
	// Plan is passes.PlanBuffers(f), the layout the kernels assume (see
	// Kernel.InPlace); the runtime lays its buffers out by it.
	Plan *passes.BufferPlan
}

// Compile lowers every instruction of f to a kernel. f must verify.
func Compile(f *ir.Func, opt Options) (p *Program, err error) {
	if f == nil {
		return nil, fmt.Errorf("codegen: nil function")
	}
	if err := f.Verify(); err != nil {
		return nil, fmt.Errorf("codegen: @%s: %v", f.Name, err)
	}
	t := opt.Target
	if t == nil {
		if t, err = TargetFor(opt.CPU); err != nil {
			return nil, fmt.Errorf("codegen: %v", err)
		}
	}
	plan, err := passes.PlanBuffers(f)
	if err != nil {
		return nil, fmt.Errorf("codegen: @%s: %v", f.Name, err)
	}
	inPlace := inPlaceOperands(f, plan)
	mod := newModule(t)
	p = &Program{Target: t, CPU: t.Name, Plan: plan}
	seen := map[[sha256.Size]byte]Kernel{}
	for i, v := range f.Body {
		if isNoop(v) {
			p.Aliases = append(p.Aliases, Alias{Instr: i, Of: v.Args[0]})
			continue
		}
		if v.Op == ir.OpOutput {
			continue // written by its fusion's kernel
		}
		results := []*ir.Value{v}
		if v.Op == ir.OpFusion {
			results = f.Body[i : i+len(v.Callee.Results)]
		}
		key := kernelKey(v, inPlace[i])
		k, ok := seen[key]
		if !ok {
			k, err = mod.lowerInstr(fmt.Sprintf("xlc_k%d", i), v, results, inPlace[i])
			if err != nil {
				return nil, fmt.Errorf("codegen: @%s: %%%d = %v: %v", f.Name, i, v.Op, err)
			}
			seen[key] = k
			if k.Lowering == LowerRecompute {
				p.Warnings = append(p.Warnings, fmt.Sprintf("@%s: %%%d = %s: the reductions inside are recomputed for every result element (no row plan); the step is much slower than it should be", f.Name, i, Describe(v)))
			}
		}
		k.Instr, k.Args, k.Results = i, v.Args, results
		p.Kernels = append(p.Kernels, k)
	}
	p.LL = mod.String()
	return p, nil
}

// isNoop reports whether v only renames its operand's buffer: a reshape of
// a dense row-major buffer, or stop_gradient.
func isNoop(v *ir.Value) bool {
	return v.Op == ir.OpReshape || v.Op == ir.OpStopGradient
}

// inPlaceOperands returns, per instruction index, the operands that plan
// (passes.PlanBuffers(f)) places in one of the kernel's own result buffers
// (donation in place): operand index → result index (0: the instruction's,
// k: its output k's); nil for the others.
func inPlaceOperands(f *ir.Func, plan *passes.BufferPlan) map[int]map[int]int {
	index := make(map[*ir.Value]int, len(f.Body))
	for i, v := range f.Body {
		index[v] = i
	}
	pidx := make(map[*ir.Value]int, len(f.Params))
	for i, q := range f.Params {
		pidx[q] = i
	}
	// param is the parameter whose buffer holds a, or -1.
	param := func(a *ir.Value) int {
		if i, ok := pidx[a]; ok {
			return i
		}
		if i, ok := index[a]; ok {
			return plan.Loc[i].Param
		}
		return -1
	}
	res := map[int]map[int]int{}
	for i, v := range f.Body {
		if isNoop(v) || v.Op == ir.OpOutput {
			continue
		}
		n := 1
		if v.Op == ir.OpFusion {
			n = len(v.Callee.Results)
		}
		for k := range n {
			dst := plan.Loc[i+k].Param
			if dst < 0 {
				continue
			}
			for j, a := range v.Args {
				if param(a) == dst {
					if res[i] == nil {
						res[i] = map[int]int{}
					}
					res[i][j] = k
				}
			}
		}
	}
	return res
}

// lowerInstr emits the kernel named sym for the single instruction v with
// result buffers for results (v and its outputs), whose operands inPlace
// share a result's buffer.
func (m *module) lowerInstr(sym string, v *ir.Value, results []*ir.Value, inPlace map[int]int) (k Kernel, err error) {
	defer func() {
		if r := recover(); r != nil {
			ce, ok := r.(codegenError)
			if !ok {
				panic(r)
			}
			err = ce
		}
	}()
	huge := v.Op == ir.OpFusion && len(v.Callee.Body) > hugeKernel
	chunks, scratch := m.columnChunks(v)
	if chunks == 0 {
		chunks, scratch = m.dotSplit(v)
	}
	g := m.newKernel(sym, v.Args, results, inPlace, huge, scratch > 0)
	g.fills = operandFills(v)
	g.chunks = chunks
	k = Kernel{Symbol: sym, Args: v.Args, InPlace: inPlace, Scratch: scratch}
	root := v
	body := []*ir.Value{v}
	var rows *rowPlan
	columns := false
	if v.Op == ir.OpFusion {
		// The callee's parameters are the kernel's operand buffers; its
		// instructions are computed inside the kernel.
		c := v.Callee
		for i, p := range c.Params {
			g.ptrs[p] = g.ptrs[v.Args[i]]
		}
		root = c.Results[0]
		g.results = c.Results
		body = c.Body
		rows = planRows(c)
		if rows != nil && len(rows.row) == len(c.Results) && !m.t.gpuKernels() && !slices.ContainsFunc(c.Results, func(r *ir.Value) bool {
			return !leadingAxes(r) || !slices.Contains(rows.row, r)
		}) {
			// Sums over leading axes of elementwise values (a layer-norm
			// gain's and bias's gradients): the column sum reads
			// contiguously. A GPU gives each column a block instead.
			rows, columns = nil, true
		}
	}
	// The loop a kernel runs, and so its parallel range:
	//   - a fusion with one f32 dot the fast kernel takes (DotSpecOf) and
	//     an elementwise epilogue of its shape: the dot's blocks of rows
	//     (DotSpec.Extent), the epilogue applied in place over each call's
	//     rows (fastdot.go);
	//   - a callee whose reductions all reduce the same axes of one shape,
	//     reduced values coming back only through elementwise ops and
	//     broadcasts (softmax, layer norm, cross-entropy): a row kernel
	//     over the kept index space, each reduction once per row in double
	//     (rows.go); sums over leading axes: one column-sum loop;
	//   - otherwise the root decides: elemental ops, reduce_sum/max and the
	//     naive dot over the flattened result, row by row so the inner
	//     loop is contiguous; scatter_add over the table's rows, each owned
	//     by one call; rng over blocks of four values (one Philox block).
	// A multi-output fusion's results are written by the same loop.
	multi := len(g.results) > 1
	var fd *fastDot
	var gd *gpuDot
	switch {
	case multi || v.Attrs.String("kind") == ir.FusionAttention || v.Attrs.String("kind") == ir.FusionAttentionGrad:
	case m.t.gpuKernels():
		gd = g.planGPUDot(body, root)
	default:
		fd = g.planFastDot(body, root)
	}
	switch {
	case v.Op == ir.OpFusion && v.Attrs.String("kind") == ir.FusionAttention:
		if m.t.gpuKernels() {
			k.Extent, k.Cost, k.Lowering = g.emitGPUAttention(v.Callee)
		} else {
			k.Extent, k.Cost = g.emitAttention(v.Callee)
			k.Lowering = LowerAttention
		}
	case v.Op == ir.OpFusion && v.Attrs.String("kind") == ir.FusionAttentionGrad:
		if m.t.gpuKernels() {
			k.Extent, k.Cost, k.Lowering = g.emitGPUAttentionGrad(v.Callee)
		} else {
			k.Extent, k.Cost = g.emitAttentionGrad(v.Callee)
			k.Lowering = LowerAttentionGrad
		}
	case multi && columns:
		k.Extent, k.Cost = g.emitColumnSums(g.results)
		k.Lowering = LowerReduce
	case multi && rows == nil && v.Attrs.String("kind") != ir.FusionLoop:
		fail("a %s fusion with %d results has no row plan", v.Attrs.String("kind"), len(g.results))
	case gd != nil:
		k.Extent, k.Cost = g.emitGPUDot(gd)
		k.Lowering = LowerTiledDot
		if gd.spec.mmaDot() {
			k.Lowering = LowerMMADot
		}
	case fd != nil:
		k.Extent, k.Cost = g.emitFastDot(fd)
		k.Lowering = LowerFastDot
		if fd.root != fd.dot {
			k.Lowering = LowerFastDotEp
		}
	case rows != nil && v.Attrs.String("kind") == ir.FusionDot:
		if m.t.gpuKernels() {
			if gr := g.planGPUDotRows(body, rows, root); gr != nil {
				k.Extent, k.Cost = g.emitGPUDotRows(gr, rows, len(body))
				k.Lowering = LowerTiledDotRows
				break
			}
		}
		if rd := g.planRowDot(body, rows, root); rd != nil {
			k.Extent, k.Cost = g.emitFastDotRows(rd, rows, len(body))
			k.Lowering = LowerFastDotRows
		} else {
			k.Extent, k.Cost = g.emitNaiveDotRows(body, rows, root)
			k.Lowering = LowerRows
		}
	case rows != nil && m.t.gpuKernels() && rows.rowLen() >= minBlockRow:
		k.Extent, k.Cost = g.emitGPURows(rows, root, len(body))
		k.Lowering = LowerRows
	case rows != nil:
		k.Extent, k.Cost = g.emitRows(rows, root, len(body))
		k.Lowering = LowerRows
	default:
		k.Extent, k.Cost = g.lowerRoot(root)
		k.Lowering = rootLowering(root)
		if v.Op == ir.OpFusion {
			if chunks == 0 {
				k.Cost = fusionCost(v.Callee)
			}
			if recomputes(v.Callee) {
				k.Lowering = LowerRecompute
			}
		}
	}
	g.finish()
	if m.t.gpuKernels() {
		k.Grid, k.Threads = launchOf(Kernel{Extent: k.Extent, Threads: g.threads})
		if g.frame.Launch != nil {
			g.frame.Launch(k.Extent, k.Threads, k.Grid, g.coop)
		}
		if m.t.Emulates != "" {
			// The emulator's frame runs blocks.
			k.Extent, k.Cost = int64(k.Grid), k.Cost*int64(k.Threads)
		}
	}
	return k, nil
}

// hugeKernel is the most instructions a fused callee may have and still be
// optimized: opt's time grows faster than linearly in a function's size
// (a 1,000-layer model's sum of 16,000 squared gradient norms). Bigger ones are
// compiled without optimization (optnone, see newKernel): such callees are
// straight-line scalar code (a kernel takes at most one sum of a whole
// tensor, passes.secondWholeSum).
const hugeKernel = 4096

// recomputes reports whether lowering callee c elementally recomputes a
// reduction for every element of a value that depends on it: c has a
// reduction other than its root.
func recomputes(c *ir.Func) bool {
	root := c.Results[0]
	for _, v := range c.Body {
		if v != root && (v.Op == ir.OpReduceSum || v.Op == ir.OpReduceMax) {
			return true
		}
	}
	return false
}

// lowerRoot emits the loop of a kernel computing root elementally.
func (g *kernelBuilder) lowerRoot(root *ir.Value) (extent, cost int64) {
	switch root.Op {
	case ir.OpReduceSum, ir.OpReduceMax:
		if p := reducePlan(root); g.mod.t.gpuKernels() && p.rowLen() >= minBlockRow && len(g.results) == 1 {
			return g.emitGPURows(p, root, 1)
		}
		if extent, cost, ok := g.emitColumnSum(root); ok {
			return extent, cost
		}
		return g.emitFlat(root)
	case ir.OpDot:
		return g.emitDot(root)
	case ir.OpScatterAdd:
		if g.mod.t.gpuKernels() {
			return g.emitGPUScatterAdd(root)
		}
		return g.emitScatterAdd(root)
	case ir.OpRng:
		return g.emitRng(root)
	}
	return g.emitElemental(root)
}

// leadingAxes reports whether v is a float reduce_sum over axes 0..r-1
// (emitColumnSum's reductions).
func leadingAxes(v *ir.Value) bool {
	if v.Op != ir.OpReduceSum || !v.Type.DType.IsFloat() || v.Type.Shape.NumElements() < 16 {
		return false
	}
	axes := v.Attrs.Ints("axes")
	for i, a := range axes {
		if a != i {
			return false
		}
	}
	return len(axes) > 0
}

// rootLowering is how lowerRoot computes root.
func rootLowering(root *ir.Value) string {
	switch root.Op {
	case ir.OpReduceSum, ir.OpReduceMax:
		return LowerReduce
	case ir.OpDot:
		return LowerNaiveDot
	case ir.OpScatterAdd:
		return LowerScatter
	case ir.OpRng:
		return LowerRng
	}
	return LowerElemental
}

// codegenError is raised (panicked) inside the emitters for an instruction
// they cannot lower, and returned by Compile.
type codegenError string

func (e codegenError) Error() string { return string(e) }

func fail(format string, args ...any) {
	panic(codegenError(fmt.Sprintf(format, args...)))
}

// storageType is the LLVM type of one buffer element of dtype d.
func storageType(d ir.DType) types.Type {
	switch d {
	case ir.F32:
		return types.Float
	case ir.F64:
		return types.Double
	case ir.F16, ir.BF16:
		return types.I16
	case ir.I32:
		return types.I32
	case ir.I64:
		return types.I64
	case ir.Bool:
		return types.I8
	}
	fail("no storage type for %v", d)
	return nil
}

// computeType is the LLVM type a kernel computes values of dtype d in: f16
// and bf16 in double (holding values already rounded to the dtype), bool in
// i1.
func computeType(d ir.DType) types.Type {
	switch d {
	case ir.F32:
		return types.Float
	case ir.F64, ir.F16, ir.BF16:
		return types.Double
	case ir.I32:
		return types.I32
	case ir.I64:
		return types.I64
	case ir.Bool:
		return types.I1
	}
	fail("no compute type for %v", d)
	return nil
}

// sanitize keeps identifier characters for LLVM names.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// fusionCost estimates the work per result element of a fused callee: its
// instructions, each reduce or dot counting its reduced elements.
func fusionCost(c *ir.Func) int64 {
	cost := int64(1)
	for _, w := range c.Body {
		cost++
		switch w.Op {
		case ir.OpReduceSum, ir.OpReduceMax, ir.OpDot:
			n := int64(w.Args[0].Type.Shape.NumElements())
			if out := int64(w.Type.Shape.NumElements()); out > 0 {
				n /= out
			}
			cost += 2 * max(n, 1)
		}
	}
	return cost
}

// kernelKey is the structural hash of the kernel of instruction v: its op,
// attributes, operand and result types, which operands are the same value,
// and for a fusion the callee's text without its name (the fusion pass
// names parameters by position, p0, p1, ...). Kernels with equal keys have the same code, so one
// symbol serves them all.
func kernelKey(v *ir.Value, inPlace map[int]int) [sha256.Size]byte {
	var b strings.Builder
	b.WriteString(v.Op.String())
	if len(inPlace) > 0 {
		fmt.Fprintf(&b, " inplace%v", inPlace)
	}
	for i, a := range v.Args {
		b.WriteString(" " + a.Type.String())
		for j := range i {
			if v.Args[j] == a {
				b.WriteString("=" + strconv.Itoa(j))
				break
			}
		}
	}
	b.WriteString(" : " + v.Type.String())
	// Operands zero outside a triangle make a dot kernel skip work.
	for i, a := range v.Args {
		if t, ok := zeroTriangle(a); ok {
			fmt.Fprintf(&b, " zero%d:%v", i, t)
		}
	}
	if v.Op == ir.OpFusion {
		var cb strings.Builder
		v.Callee.Print(&cb)
		text := cb.String()
		text = text[strings.IndexByte(text, '('):]
		b.WriteString("\n" + text)
	} else if len(v.Attrs) > 0 {
		b.WriteString(" " + v.Attrs.Format())
	}
	return sha256.Sum256([]byte(b.String()))
}
