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
	// activation, residual add, convert), or none.
	FusionDot = "dot"
)

// IsFusionKind reports whether s is a fusion kind.
func IsFusionKind(s string) bool {
	return s == FusionLoop || s == FusionReduce || s == FusionDot
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
	if b.err != nil {
		return &Value{Op: OpFusion}
	}
	if callee == nil || len(callee.Results) != 1 {
		b.Fail("fusion: want a callee with one result")
		return &Value{Op: OpFusion}
	}
	t := callee.Results[0].Type
	v := b.Emit(OpFusion, t, Attrs{}.Set("calls", callee.Name).Set("kind", kind), args...)
	if b.err != nil {
		return v
	}
	v.Callee = callee
	if err := checkCall(v); err != nil {
		b.err = err
	}
	return v
}

// checkCall checks a fusion instruction against its callee: the callee is
// set and named by calls=, takes the operands' types in order, returns one
// value of the instruction's type, contains no fusion and fits the kind.
// It does not verify the callee's body (Func.Verify does).
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
	if len(c.Results) != 1 {
		return fmt.Errorf("fusion: @%s returns %d values, want 1", c.Name, len(c.Results))
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
	}
	return nil
}
