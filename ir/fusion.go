package ir

import "fmt"

// The kinds of fusion, the attribute kind= of a fusion instruction. They
// tell a backend how to generate the kernel; the callee is ordinary IR
// either way, and evaluating it op by op gives the fusion's result.
const (
	// FusionLoop: elementwise and shape ops, one loop over the output's
	// elements. The callee has no reduce and no dot.
	FusionLoop = "loop"
	// FusionReduce: a row kernel. The callee has one or more reduces, all
	// over the same axes of operands of one shape (the rows), and no dot;
	// the root is a reduce, or a value computed from reduced values
	// broadcast back along the reduced axes (softmax, layer norm).
	FusionReduce = "reduce"
	// FusionDot: exactly one dot, whose operands are callee parameters,
	// and an elementwise epilogue over the dot's output (bias add,
	// activation, residual add, convert), or none; the epilogue may end in
	// a row kernel whose reductions reduce the product's last axis
	// (softmax over attention scores).
	FusionDot = "dot"
	// FusionAttention: attention's scores, softmax and product in one
	// kernel: two dots, the first's product read only by a row kernel
	// over its last axis (scale, mask, softmax), whose result (the
	// probabilities) only the second dot reads, as its first operand
	// contracted on that axis; the second dot's epilogue may follow. The
	// row kernel's other results (row statistics) are the outputs. A
	// backend never stores the probabilities.
	FusionAttention = "attention"
	// FusionAttentionGrad: attention's backward in one kernel: five dots,
	// the probabilities P recomputed (the scores' dot and an elementwise
	// epilogue), dS (dO·Vᵀ and a row kernel reading P, or an elementwise
	// epilogue when each row's sum D comes in computed), and dV = Pᵀ·dO,
	// dK = dSᵀ·Q and dQ = dS·K, each stored as the dot's result or its
	// transpose; the last of the three is the root, the others outputs.
	FusionAttentionGrad = "attention_grad"
)

// IsFusionKind reports whether s is a fusion kind.
func IsFusionKind(s string) bool {
	return s == FusionLoop || s == FusionReduce || s == FusionDot || s == FusionAttention || s == FusionAttentionGrad
}

// Callees returns the distinct functions that f's fusion instructions call,
// in the order of their first use.
func (f *Func) Callees() []*Func {
	var out []*Func
	seen := map[*Func]bool{}
	for _, v := range f.Body {
		if v.Callee != nil && !seen[v.Callee] {
			seen[v.Callee] = true
			out = append(out, v.Callee)
		}
	}
	return out
}

// Fusion appends a fusion instruction calling callee on args with the given
// kind; the callee must take args' types and return one value.
func (b *Builder) Fusion(callee *Func, kind string, args ...*Value) *Value {
	if b.err == nil && (callee == nil || len(callee.Results) != 1) {
		b.Fail("fusion: want a callee with one result")
	}
	return b.FusionOutputs(callee, kind, args...)[0]
}

// FusionOutputs appends a fusion instruction calling callee on args with
// the given kind, followed by an output instruction for each of the
// callee's results after the first, and returns the callee's results in
// order: the fusion, then the outputs.
func (b *Builder) FusionOutputs(callee *Func, kind string, args ...*Value) []*Value {
	if b.err != nil {
		return []*Value{{Op: OpFusion}}
	}
	if callee == nil || len(callee.Results) == 0 {
		b.Fail("fusion: want a callee with a result")
		return []*Value{{Op: OpFusion}}
	}
	t := callee.Results[0].Type
	v := b.Emit(OpFusion, t, Attrs{}.Set("calls", callee.Name).Set("kind", kind), args...)
	if b.err != nil {
		return []*Value{v}
	}
	v.Callee = callee
	if err := checkCall(v); err != nil {
		b.err = err
		return []*Value{v}
	}
	out := []*Value{v}
	for i, r := range callee.Results[1:] {
		out = append(out, b.Emit(OpOutput, r.Type, Attrs{}.Set("index", i+1), v))
	}
	return out
}

// checkCall checks a fusion instruction against its callee: the callee is
// set and named by calls=, takes the operands' types in order, returns at
// least one value, the first of the instruction's type (the others are its
// output instructions'), contains no fusion and fits the kind. It does not
// verify the callee's body (Func.Verify does).
func checkCall(v *Value) error {
	c := v.Callee
	if c == nil {
		return fmt.Errorf("fusion: no callee")
	}
	if name := v.Attrs.String("calls"); name != c.Name {
		return fmt.Errorf("fusion: calls=%s, but the callee is @%s", name, c.Name)
	}
	if len(c.Params) != len(v.Args) {
		return fmt.Errorf("fusion: @%s takes %d operands, have %d", c.Name, len(c.Params), len(v.Args))
	}
	for i, a := range v.Args {
		if !a.Type.Equal(c.Params[i].Type) {
			return fmt.Errorf("fusion: operand %d: @%s wants %v, have %v", i, c.Name, c.Params[i].Type, a.Type)
		}
	}
	if len(c.Results) == 0 {
		return fmt.Errorf("fusion: @%s returns no value", c.Name)
	}
	if !c.Results[0].Type.Equal(v.Type) {
		return fmt.Errorf("fusion: @%s returns %v, the instruction is %v", c.Name, c.Results[0].Type, v.Type)
	}
	dots, reduces := 0, 0
	for _, w := range c.Body {
		switch w.Op {
		case OpFusion:
			return fmt.Errorf("fusion: @%s contains a fusion (%v); fused functions do not nest", c.Name, w.Ref())
		case OpDot:
			dots++
		case OpReduceSum, OpReduceMax:
			reduces++
		}
	}
	switch kind := v.Attrs.String("kind"); {
	case kind == FusionLoop && dots+reduces > 0:
		return fmt.Errorf("fusion: @%s has %d dots and %d reduces, a kind=loop fusion none", c.Name, dots, reduces)
	case kind == FusionReduce && (reduces == 0 || dots > 0):
		return fmt.Errorf("fusion: @%s has %d reduces and %d dots, a kind=reduce fusion at least one reduce and no dot", c.Name, reduces, dots)
	case kind == FusionDot && dots != 1:
		return fmt.Errorf("fusion: @%s has %d dots, a kind=dot fusion one", c.Name, dots)
	case kind == FusionAttentionGrad && dots != 5:
		return fmt.Errorf("fusion: @%s has %d dots, a kind=attention_grad fusion five", c.Name, dots)
	case kind == FusionAttention && (dots != 2 || reduces == 0):
		return fmt.Errorf("fusion: @%s has %d dots and %d reduces, a kind=attention fusion two and at least one", c.Name, dots, reduces)
	}
	return nil
}

// checkOutputs checks the instructions after the fusion v at body[i]: a
// fusion whose callee returns n values is followed directly by output
// instructions of indexes 1 to n-1, in order, each of the type of the
// callee's result. It returns the index of the first instruction after
// them.
func checkOutputs(body []*Value, i int) (int, error) {
	v := body[i]
	n := len(v.Callee.Results)
	for k := 1; k < n; k++ {
		j := i + k
		if j >= len(body) || body[j].Op != OpOutput || len(body[j].Args) != 1 || body[j].Args[0] != v || body[j].Attrs.Int("index") != k {
			return 0, fmt.Errorf("fusion: @%s returns %d values: want output %v {index=%d} next", v.Callee.Name, n, v.Ref(), k)
		}
		if t := v.Callee.Results[k].Type; !body[j].Type.Equal(t) {
			return 0, fmt.Errorf("%v: output %d of @%s is %v, the instruction is %v", body[j].Ref(), k, v.Callee.Name, t, body[j].Type)
		}
	}
	return i + n, nil
}
