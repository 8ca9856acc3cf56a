package suggest

import (
	"reflect"
	"testing"
)

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"heads", "heads", 0},
		{"haeds", "heads", 1},      // transposition
		{"sublayr", "sublayer", 1}, // deletion
		{"layer_nrom", "layer_norm", 1},
		{"cross_entopy", "cross_entropy", 1},
		{"gelux", "gelu", 1}, // insertion
		{"gelo", "gelu", 1},  // substitution
		{"ca", "abc", 3},     // optimal string alignment, not Damerau: 3, not 2
		{"kitten", "sitting", 3},
	}
	for _, c := range cases {
		if d := Distance(c.a, c.b); d != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, d, c.want)
		}
		if d := Distance(c.b, c.a); d != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, d, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"heads", "head", "layers", "layer_norm", "rms_norm", "max", "min", "x", "d"}
	cases := []struct {
		name string
		want []string
	}{
		{"haeds", []string{"heads"}},
		{"heds", []string{"heads"}}, // head is two edits away
		{"hed", []string{"head"}},   // heads is two edits away
		{"layer_nrom", []string{"layer_norm"}},
		{"mox", []string{"max"}},
		{"mix", []string{"max", "min"}}, // one edit from both
		{"y", nil},                      // replacing every letter is no typo
		{"xy", []string{"x"}},
		{"heads", []string{"head"}},           // the name itself is no suggestion
		{"zzzzzz", nil},                       // nothing close
		{"lyrs", nil},                         // two edits from layers: too many for four letters
		{"lyaers_", nil},                      // two edits; seven letters allow one
		{"layr_nrom", []string{"layer_norm"}}, // two edits; nine letters allow two
	}
	for _, c := range cases {
		if got := Closest(c.name, names); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Closest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	if h := Hint("mix", names); h != " (did you mean max or min?)" {
		t.Errorf("Hint = %q", h)
	}
	if h := Hint("haeds", names); h != " (did you mean heads?)" {
		t.Errorf("Hint = %q", h)
	}
	if h := Hint("zzz", names); h != "" {
		t.Errorf("Hint = %q", h)
	}
}
