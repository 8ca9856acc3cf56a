package parser

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestNestingLimit feeds the parser, the formatter and the elaborator inputs
// nested far too deeply (which overflowed the Go stack, a crash no recover
// catches) and checks each is refused with a diagnostic at the token that
// goes too deep; and that inputs just inside the limit, or long but flat,
// still compile.
func TestNestingLimit(t *testing.T) {
	model := func(expr string) string {
		return "model m {\n  input a: f32[2]\n  output y = " + expr + "\n}\n"
	}
	// The model's braces are the first level, sum's parenthesis the second.
	const prefix = len("  output y = ") // columns before the expression
	tests := []struct {
		name string
		src  string
		col  int // of the diagnostic on line 3; 0: compiles
	}{
		{"parentheses", model("sum(" + strings.Repeat("(", 200_000) + "a" + strings.Repeat(")", 200_000) + ")"), prefix + 4 + 255},
		{"minus signs", model("sum(" + strings.Repeat("- ", 2_000_000) + "a)"), prefix + 4 + 2*254 + 1},
		{"not signs", model("sum(where(" + strings.Repeat("!", 250) + "true, a, a))"), 0},
		{"power chain", model("sum(a) + " + strings.Repeat("2 ** ", 300_000) + "2"), prefix + 9 + 5*255 + 3},
		{"else if chain", model("sum(a) + " + strings.Repeat("if false { 1 } else ", 300_000) + "{ 2 }"), -1},
		{"power through if", model("sum(a) + " + strings.Repeat("2.0 ** if 1 < 2 { 1.0 } else { 1.0 } ** ", 300) + "1.0"), -1},
		{"mixed", model("sum(" + strings.Repeat("-(", 200) + "a" + strings.Repeat(")", 200) + ")"), prefix + 4 + 2*127 + 1},
		{"brackets at the limit", model("sum(" + strings.Repeat("(", 254) + "a" + strings.Repeat(")", 254) + ")"), 0},
		{"powers at the limit", model("sum(a) + " + strings.Repeat("1 ** ", 255) + "1"), 0},
		{"long sum", model("sum(a)" + strings.Repeat(" + 1", 5000)), 0},
		{"products of negations", model("sum(a)" + strings.Repeat(" * -1", 1000)), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("m.xl", []byte(tc.src), nil)
			_, ferr := Format("m.xl", []byte(tc.src))
			if tc.col == 0 {
				if err != nil || ferr != nil {
					t.Fatalf("want no error, have %v / %v", err, ferr)
				}
				return
			}
			for _, err := range []error{err, ferr} {
				e, ok := err.(*Error)
				if !ok || !strings.Contains(e.Msg, "nesting deeper than 256") {
					t.Fatalf("want a nesting diagnostic, have %v", err)
				}
				if e.Pos.Line != 3 || tc.col > 0 && e.Pos.Column != tc.col {
					t.Errorf("diagnostic at %d:%d, want 3:%d", e.Pos.Line, e.Pos.Column, tc.col)
				}
			}
		})
	}
	// Many short lines each with a ** or a leading minus are not one chain.
	var b strings.Builder
	b.WriteString("model m {\n  input a: f32[2]\n  let x = sum(a)\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "  let b%d = x ** 2.0\n  -x\n", i)
	}
	b.WriteString("  output y = x\n}\n")
	if _, err := Compile("m.xl", []byte(b.String()), nil); err != nil {
		t.Errorf("1000 lines of x ** 2.0 and -x: %v", err)
	}
}

// TestHugeModelSizes checks that a model too big for the IR is a diagnostic
// at the user's source, never an internal error: gpt's attention scores at
// seq=50000 have 1.6e11 elements.
func TestHugeModelSizes(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile("gpt.xl", src, []Define{{"seq", "50000"}})
	e, ok := err.(*Error)
	if !ok || e.Pos.Filename != "gpt.xl" || !strings.Contains(e.Msg, "too many elements") {
		t.Fatalf("want a diagnostic in gpt.xl about too many elements, have %v", err)
	}
}
