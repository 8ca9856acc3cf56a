package parser

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestTypoSuggestions checks "did you mean" on every single-edit typo
// (deletion, insertion, substitution, transposition of adjacent letters)
// of every standard library function and every builtin, called in a model
// where nothing else is in scope but the input x. A typo's expected
// suggestions are exactly the names in scope it is one edit from: usually
// the name it was made from alone, but some typos are one edit from two
// names (aos: abs and cos; af16: f16 and bf16), and then both are
// suggested, neither picked at random.
//
// Skipped, and counted in the log: typos that are themselves names in
// scope (sign → sin, f32 → i32, rsqrt → sqrt: the call compiles or fails
// for another reason, and no suggestion is due), typos that are no
// identifier (a leading digit), the words the grammar reads in an
// expression (if, true, false), and one-letter typos (replacing a whole
// name is no typo, so none is suggested).
func TestTypoSuggestions(t *testing.T) {
	lib, err := stdlib()
	if err != nil {
		t.Fatal(err)
	}
	var funcs []string
	for _, d := range lib.Decls {
		if d.Def != nil {
			funcs = append(funcs, d.Def.Name)
		}
	}
	for name := range builtins {
		funcs = append(funcs, name)
	}
	sort.Strings(funcs)
	scope := map[string]bool{"x": true}
	for _, f := range funcs {
		scope[f] = true
	}
	// near[t] lists the names in scope that t is one edit from.
	near := map[string][]string{}
	for name := range scope {
		for _, ty := range edits1(name) {
			near[ty] = append(near[ty], name)
		}
	}
	ident := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hint := regexp.MustCompile(`unknown name (\w+)(?: \(did you mean (.*)\?\))?$`)
	tested, skipped := 0, 0
	for _, f := range funcs {
		for _, ty := range edits1(f) {
			if scope[ty] || !ident.MatchString(ty) || ty == "if" || ty == "true" || ty == "false" || len(ty) == 1 {
				skipped++
				continue
			}
			tested++
			src := fmt.Sprintf("model m {\n  input x: f32[2, 4]\n  output y = sum(%s(x))\n}\n", ty)
			_, err := Compile("typo.xl", []byte(src), nil)
			perr, ok := err.(*Error)
			if !ok {
				t.Errorf("%s (from %s): want an unknown-name error, have %v", ty, f, err)
				continue
			}
			m := hint.FindStringSubmatch(perr.Msg)
			if m == nil || m[1] != ty {
				t.Errorf("%s (from %s): %s", ty, f, perr.Msg)
				continue
			}
			want := append([]string(nil), near[ty]...)
			sort.Strings(want)
			if got := splitAlternatives(m[2]); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s (from %s): %q, want the suggestions %v", ty, f, perr.Msg, want)
			}
		}
	}
	t.Logf("%d typos of %d names checked, %d skipped", tested, len(funcs), skipped)
}

// edits1 returns every distinct string one edit from s (not s itself),
// over the characters of identifiers.
func edits1(s string) []string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789_"
	seen := map[string]bool{s: true}
	var out []string
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			add(s[:i] + s[i+1:]) // deletion
		}
		if i+1 < len(s) {
			add(s[:i] + string(s[i+1]) + string(s[i]) + s[i+2:]) // transposition
		}
		for _, c := range chars {
			if i < len(s) {
				add(s[:i] + string(c) + s[i+1:]) // substitution
			}
			add(s[:i] + string(c) + s[i:]) // insertion
		}
	}
	return out
}

// splitAlternatives reads "a", "a or b" or "a, b or c" back into names.
func splitAlternatives(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.Replace(s, " or ", ", ", 1)
	return strings.Split(s, ", ")
}

// TestMisspellingsInGPT misspells names in models/gpt.xl as a user might
// (a stdlib function, a function of the model, a config value, keyword
// arguments of a stdlib function) and checks that each error points at the
// typo and suggests the name meant; a name in a train value that is only a
// train setting gets no suggestion, since train settings are not names.
func TestMisspellingsInGPT(t *testing.T) {
	src, err := os.ReadFile("../models/gpt.xl")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		old, new string
		want     string
		defs     []Define
	}{
		{"f(layer_norm(x))", "f(layer_nrom(x))", "unknown name layer_nrom (did you mean layer_norm?)", nil},
		{"x = sublayer(x, attn)", "x = sublayr(x, attn)", "unknown name sublayr (did you mean sublayer?)", nil},
		{"attention(h, heads,", "attention(h, haeds,", "unknown name haeds (did you mean heads?)", nil},
		{"attention(h, heads,", "attention(h, haeds = heads,", "attention has no parameter haeds (did you mean heads?)", nil},
		{"cross_entropy(tap", "cross_entopy(tap", "unknown name cross_entopy (did you mean cross_entropy?)", nil},
		{"mlp(h, 4 * d, gain", "mlp(h, 4 * d, gian", "mlp has no parameter gian (did you mean gain?)", nil},
		{"linear(h, vocab, gain = 0.5, bias", "linear(h, vocab, gain = 0.5, biass", "linear has no parameter biass (did you mean bias?)", nil},
		{"(2 * layers) ** 0.25", "(2 * layres) ** 0.25", "unknown name layres (did you mean layers?)", []Define{{Key: "norm", Value: "deepnorm"}}},
		{"min_lr_ratio = 0.3\n  steps = 1000", "min_lr_ratio = 0.3\n  steps = 1000 * lr_ratio", "unknown name lr_ratio", nil}, // a train setting is no name
	}
	for _, c := range cases {
		if strings.Count(string(src), c.old) != 1 {
			t.Fatalf("%q is not once in gpt.xl", c.old)
		}
		bad := strings.Replace(string(src), c.old, c.new, 1)
		_, err := Compile("gpt.xl", []byte(bad), c.defs)
		perr, ok := err.(*Error)
		if !ok {
			t.Errorf("%s: want a diagnostic, have %v", c.new, err)
			continue
		}
		typo := strings.Fields(strings.TrimPrefix(perr.Msg, "unknown name "))[0]
		if strings.Contains(perr.Msg, "has no parameter") {
			typo = strings.Fields(perr.Msg)[4]
		}
		if perr.Msg != c.want {
			t.Errorf("%s: %s, want %s", c.new, perr.Short(), c.want)
		}
		at := strings.Index(bad, c.new) + strings.LastIndex(c.new, typo)
		if got := lineCol(bad, at); got != [2]int{perr.Pos.Line, perr.Pos.Column} {
			t.Errorf("%s: at %d:%d, the typo %s is at %d:%d", c.new, perr.Pos.Line, perr.Pos.Column, typo, got[0], got[1])
		}
	}
}

// lineCol is the 1-based line and column of byte i of src.
func lineCol(src string, i int) [2]int {
	line := strings.Count(src[:i], "\n") + 1
	return [2]int{line, i - strings.LastIndex(src[:i], "\n")}
}
