package ir

// Value is an SSA value: a function parameter (Op == OpInvalid, Name set) or
// the result of one instruction.
type Value struct {
	Op    Op
	Args  []*Value
	Type  Type
	Attrs Attrs
	// Name is the parameter's name; empty for instructions.
	Name string
	// ID is the value's number, dense per function: parameters are not
	// numbered, instructions are numbered in order by Func.Renumber.
	ID int
	// Callee is the fused sub-function a fusion instruction calls; its
	// name is the attribute calls=, which whoever sets Callee keeps equal.
	// Nil for every other op.
	Callee *Func
}

// IsParam reports whether v is a function parameter.
func (v *Value) IsParam() bool { return v.Op == OpInvalid }

// Role is the parameter's role attribute ("input" when unset).
func (v *Value) Role() string {
	if r := v.Attrs.String("role"); r != "" {
		return r
	}
	return "input"
}

// Func is a function: typed parameters, instructions in order, results.
type Func struct {
	Name   string
	Params []*Value
	Body   []*Value
	// Results are the returned values; ResultNames names each one.
	Results     []*Value
	ResultNames []string
}

// Renumber sets each instruction's ID to its index in Body.
func (f *Func) Renumber() {
	for i, v := range f.Body {
		v.ID = i
	}
}

// Param returns the parameter named name, or nil.
func (f *Func) Param(name string) *Value {
	for _, p := range f.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Result returns the result named name, or nil.
func (f *Func) Result(name string) *Value {
	for i, n := range f.ResultNames {
		if n == name {
			return f.Results[i]
		}
	}
	return nil
}

// Uses counts the uses of every instruction and parameter (results count).
func (f *Func) Uses() map[*Value]int {
	uses := make(map[*Value]int, len(f.Body))
	for _, v := range f.Body {
		for _, a := range v.Args {
			uses[a]++
		}
	}
	for _, r := range f.Results {
		uses[r]++
	}
	return uses
}

// Module is a list of functions.
type Module struct {
	Funcs []*Func
}

// Func returns the function named name, or nil.
func (m *Module) Func(name string) *Func {
	for _, f := range m.Funcs {
		if f.Name == name {
			return f
		}
	}
	return nil
}
