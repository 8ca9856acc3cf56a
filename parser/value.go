package parser

import (
	"fmt"
	"strings"

	"xlc/ir"
)

// A value during elaboration is one of: int64, float64, string, bool,
// []any (a list), *ir.Value (a tensor), *closure (a function), *builtin.
type builtin struct {
	name string
	fn   func(e *elab, c *call) (any, error)
}

// describe names a value's kind for diagnostics.
func describe(v any) string {
	switch v := v.(type) {
	case int64:
		return "int " + fmt.Sprint(v)
	case float64:
		return "number " + ir.FormatFloat(v)
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprint("bool ", v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = short(x)
		}
		return "list [" + strings.Join(parts, ", ") + "]"
	case *ir.Value:
		return v.Type.String()
	case *closure:
		return "function " + v.def.Name
	case *builtin:
		return "builtin " + v.name
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

func short(v any) string {
	switch v := v.(type) {
	case int64:
		return fmt.Sprint(v)
	case float64:
		return ir.FormatFloat(v)
	case string:
		return fmt.Sprintf("%q", v)
	}
	return describe(v)
}

// isNumber reports whether v is a compile-time number or bool.
func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64, bool:
		return true
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// scope is a lexical scope of names.
type scope struct {
	vars   map[string]any
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]any{}, parent: parent} }

func (s *scope) lookup(name string) (any, *scope) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, s
		}
	}
	return nil, nil
}
