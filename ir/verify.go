package ir

import (
	"fmt"
	"math"
)

// Verify checks f: every instruction's operands are defined before it (SSA
// order), its op has the right arity and attributes, and its declared type is
// the one its type rule gives. A fusion instruction is checked against its
// callee (operand and result types, no nested fusion, the kind), a fusion
// whose callee returns several values is followed directly by its output
// instructions, and each callee is verified once. Errors name the value: "%7: want
// f32[2], have f32[3]".
func (f *Func) Verify() error {
	return f.verify(map[*Func]bool{f: true})
}

func (f *Func) verify(callees map[*Func]bool) error {
	f.Renumber()
	defined := make(map[*Value]bool, len(f.Params)+len(f.Body))
	names := make(map[string]bool, len(f.Params))
	for _, p := range f.Params {
		if !p.IsParam() || p.Name == "" {
			return fmt.Errorf("@%s: parameter %d is not a named parameter", f.Name, len(names))
		}
		if names[p.Name] {
			return fmt.Errorf("@%s: parameter %%%s defined twice", f.Name, p.Name)
		}
		if err := CheckParamName(p.Name); err != nil {
			return fmt.Errorf("@%s: %v", f.Name, err)
		}
		if err := CheckType(p.Type); err != nil {
			return fmt.Errorf("%%%s: %v", p.Name, err)
		}
		names[p.Name] = true
		defined[p] = true
	}
	args := make([]Type, 0, 4)
	outputsEnd := 0 // f.Body[:outputsEnd] holds no output instruction left to check
	for i, v := range f.Body {
		if v.Op == OpOutput && i >= outputsEnd {
			return fmt.Errorf("%v: an output instruction must directly follow its fusion", v.Ref())
		}
		if v.IsParam() {
			return fmt.Errorf("%v: a parameter in the body", v.Ref())
		}
		if defined[v] {
			return fmt.Errorf("%v: instruction appears twice", v.Ref())
		}
		args = args[:0]
		for _, a := range v.Args {
			if !defined[a] {
				return fmt.Errorf("%v: operand %v is not defined before its use", v.Ref(), a.Ref())
			}
			args = append(args, a.Type)
		}
		if err := CheckType(v.Type); err != nil {
			return fmt.Errorf("%v: %v", v.Ref(), err)
		}
		t, err := Infer(v.Op, args, v.Attrs, v.Type)
		if err != nil {
			return fmt.Errorf("%v: %v", v.Ref(), err)
		}
		if !t.Equal(v.Type) {
			return fmt.Errorf("%v: want %v, have %v", v.Ref(), t, v.Type)
		}
		if v.Op == OpConstant {
			if err := checkConstant(v); err != nil {
				return fmt.Errorf("%v: %v", v.Ref(), err)
			}
		}
		if v.Op == OpFusion {
			if err := checkCall(v); err != nil {
				return fmt.Errorf("%v: %v", v.Ref(), err)
			}
			end, err := checkOutputs(f.Body, i)
			if err != nil {
				return fmt.Errorf("%v: %v", v.Ref(), err)
			}
			outputsEnd = end
			if !callees[v.Callee] {
				callees[v.Callee] = true
				if err := v.Callee.verify(callees); err != nil {
					return fmt.Errorf("%v: in @%s: %v", v.Ref(), v.Callee.Name, err)
				}
			}
		} else if v.Callee != nil {
			return fmt.Errorf("%v: a %v with a callee", v.Ref(), v.Op)
		}
		defined[v] = true
	}
	if len(f.ResultNames) != 0 && len(f.ResultNames) != len(f.Results) {
		return fmt.Errorf("@%s: %d result names for %d results", f.Name, len(f.ResultNames), len(f.Results))
	}
	for _, r := range f.Results {
		if !defined[r] {
			return fmt.Errorf("@%s: result %v is not defined", f.Name, r.Ref())
		}
	}
	for _, n := range f.ResultNames {
		if n != "" && !isResultName(n) {
			return fmt.Errorf("@%s: result name %q: want a letter or _ first, then letters, digits, _ and .", f.Name, n)
		}
	}
	return nil
}

// isResultName reports whether a result name prints as one identifier token.
func isResultName(n string) bool {
	for i := 0; i < len(n); i++ {
		if !isNameChar(n[i]) {
			return false
		}
	}
	c := n[0]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// MaxElements is the most elements a tensor may have (2^31-1).
const MaxElements = math.MaxInt32

// CheckType reports whether t is a type a value may have: a valid dtype,
// every dim >= 0 and at most MaxElements elements (the product is computed
// without overflow, so [2^32, 2^32] does not pass as 0 elements).
func CheckType(t Type) error {
	if t.DType == Invalid || int(t.DType) >= len(dtypeNames) {
		return fmt.Errorf("invalid dtype in %v", t)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in %v", t)
		}
	}
	n := 1
	for _, d := range t.Shape {
		if d == 0 {
			return nil
		}
		if n > MaxElements/d {
			return fmt.Errorf("%v has too many elements (at most %d)", t, MaxElements)
		}
		n *= d
	}
	return nil
}

// CheckParamName reports whether name can name a parameter in the text form:
// one or more of [A-Za-z0-9_.], not beginning with a digit (%0, %1, ... are
// the instructions).
func CheckParamName(name string) error {
	if name == "" {
		return fmt.Errorf("a parameter has no name")
	}
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return fmt.Errorf("parameter name %q: want letters, digits, _ and . only", name)
		}
	}
	if name[0] >= '0' && name[0] <= '9' {
		return fmt.Errorf("parameter name %%%s begins with a digit (%%0, %%1, ... name instructions)", name)
	}
	return nil
}

func checkConstant(v *Value) error {
	val, _ := v.Attrs.Get("value")
	d := v.Type.DType
	switch x := val.(type) {
	case int64:
		switch {
		case d.IsFloat():
			return fmt.Errorf("constant: a %v value is written with a decimal point, have %d", d, x)
		case d == I32 && (x < math.MinInt32 || x > math.MaxInt32), d == Bool && x != 0 && x != 1:
			return fmt.Errorf("constant: value %d does not fit %v", x, d)
		}
		return nil
	case float64:
		if !d.IsFloat() {
			return fmt.Errorf("constant: a %v value is an integer, have %v", d, FormatFloat(x))
		}
		return nil
	}
	return fmt.Errorf("constant: want a numeric value")
}

// Verify checks every function of m.
func (m *Module) Verify() error {
	for _, f := range m.Funcs {
		if err := f.Verify(); err != nil {
			return err
		}
	}
	return nil
}
