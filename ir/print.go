package ir

import (
	"strconv"
	"strings"
)

// String prints the function in the IR text form, followed by the fused
// functions it calls (see Module.String), so that the text is complete and
// ParseFunc reads it back. Instructions are numbered densely in order, so
// the output is deterministic.
func (f *Func) String() string {
	return (&Module{Funcs: []*Func{f}}).String()
}

// Print writes f's own text form to b, without its callees.
func (f *Func) Print(b *strings.Builder) {
	f.Renumber()
	b.WriteString("func @")
	b.WriteString(f.Name)
	b.WriteByte('(')
	for i, p := range f.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("%" + p.Name + ": " + p.Type.String())
		if len(p.Attrs) > 0 {
			b.WriteString(" " + p.Attrs.Format())
		}
	}
	b.WriteString(") -> (")
	for i, r := range f.Results {
		if i > 0 {
			b.WriteString(", ")
		}
		if i < len(f.ResultNames) && f.ResultNames[i] != "" {
			b.WriteString(f.ResultNames[i] + ": ")
		}
		b.WriteString(r.Type.String())
	}
	b.WriteString(") {\n")
	for _, v := range f.Body {
		b.WriteString("  %")
		b.WriteString(strconv.Itoa(v.ID))
		b.WriteString(" = ")
		b.WriteString(v.Op.String())
		for i, a := range v.Args {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteString(", ")
			}
			b.WriteString(a.Ref())
		}
		if len(v.Attrs) > 0 {
			b.WriteByte(' ')
			b.WriteString(v.Attrs.Format())
		}
		b.WriteString(" : ")
		b.WriteString(v.Type.String())
		b.WriteByte('\n')
	}
	b.WriteString("  return")
	for i, r := range f.Results {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(r.Ref())
	}
	b.WriteString("\n}\n")
}

// Ref is how v is referred to in the text form: %name or %id.
func (v *Value) Ref() string {
	if v.IsParam() {
		return "%" + v.Name
	}
	return "%" + strconv.Itoa(v.ID)
}

// String prints the module's functions separated by blank lines: each
// function is followed by the fused functions it calls, in the order of
// their first use; every function is printed once.
func (m *Module) String() string {
	var b strings.Builder
	printed := map[*Func]bool{}
	emit := func(f *Func) {
		if printed[f] {
			return
		}
		printed[f] = true
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		f.Print(&b)
	}
	for _, f := range m.Funcs {
		emit(f)
		for _, c := range f.Callees() {
			emit(c)
		}
	}
	return b.String()
}
