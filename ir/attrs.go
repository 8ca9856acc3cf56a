package ir

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Attr is one named attribute. Val is one of: int64, float64, string,
// []int, [][]int.
type Attr struct {
	Key string
	Val any
}

// Attrs is a list of attributes kept sorted by key, so printing is canonical.
type Attrs []Attr

// Set returns attrs with key set to val.
func (a Attrs) Set(key string, val any) Attrs {
	switch v := val.(type) {
	case int:
		val = int64(v)
	case float32:
		val = float64(v)
	case Shape:
		val = []int(v)
	}
	for i := range a {
		if a[i].Key == key {
			b := append(Attrs{}, a...)
			b[i].Val = val
			return b
		}
	}
	b := append(append(Attrs{}, a...), Attr{key, val})
	sort.SliceStable(b, func(i, j int) bool { return b[i].Key < b[j].Key })
	return b
}

// Get returns the value of key.
func (a Attrs) Get(key string) (any, bool) {
	for _, at := range a {
		if at.Key == key {
			return at.Val, true
		}
	}
	return nil, false
}

// Int returns the integer attribute key, or 0.
func (a Attrs) Int(key string) int {
	v, _ := a.Get(key)
	n, _ := v.(int64)
	return int(n)
}

// Float returns the numeric attribute key as a float64, or 0.
func (a Attrs) Float(key string) float64 {
	v, _ := a.Get(key)
	switch n := v.(type) {
	case float64:
		return n
	case int64:
		return float64(n)
	}
	return 0
}

// String returns the string attribute key, or "".
func (a Attrs) String(key string) string {
	v, _ := a.Get(key)
	s, _ := v.(string)
	return s
}

// Ints returns the list attribute key, or nil.
func (a Attrs) Ints(key string) []int {
	v, _ := a.Get(key)
	s, _ := v.([]int)
	return s
}

// IntLists returns the nested list attribute key, or nil.
func (a Attrs) IntLists(key string) [][]int {
	v, _ := a.Get(key)
	s, _ := v.([][]int)
	return s
}

// Equal reports whether a and b hold the same attributes.
func (a Attrs) Equal(b Attrs) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || FormatAttrValue(a[i].Val) != FormatAttrValue(b[i].Val) {
			return false
		}
	}
	return true
}

// Format prints the attributes as {k=v, ...}, or "" when there are none.
func (a Attrs) Format() string {
	if len(a) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, at := range a {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(at.Key)
		b.WriteByte('=')
		b.WriteString(FormatAttrValue(at.Val))
	}
	b.WriteByte('}')
	return b.String()
}

// FormatFloat prints f so that it parses back to the same float64 and is
// never mistaken for an integer.
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// FormatAttrValue prints one attribute value.
func FormatAttrValue(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return FormatFloat(v)
	case string:
		if isIdent(v) {
			return v
		}
		return strconv.Quote(v)
	case []int:
		return Shape(v).String()
	case [][]int:
		parts := make([]string, len(v))
		for i, l := range v {
			parts[i] = Shape(l).String()
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprintf("?%T", v)
}

func isIdent(s string) bool {
	if s == "" || s == "inf" || s == "nan" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '.') {
			continue
		}
		return false
	}
	return true
}
