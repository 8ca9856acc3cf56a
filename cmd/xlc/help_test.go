package main

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestCommandHelp checks, for every command, that xlc CMD --help (and -h,
// -help, xlc help CMD) exits 0 and prints the command's entry in xlc help
// followed by its flags, and that the flags the entry names are exactly
// the flags the command takes.
func TestCommandHelp(t *testing.T) {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	if got, want := strings.Join(names, " "), "build train sample run bench fmt experiment help"; got != want {
		t.Fatalf("commands %q, want %q", got, want)
	}
	help, _, code := xlc(t, "help")
	if code != 0 {
		t.Fatalf("xlc help: exit %d", code)
	}
	flagLine := regexp.MustCompile(`(?m)^  -(\S+)`)
	// A flag in an entry follows a space, a bracket or a bar: -D, -o,
	// --out, [--resume | --force]; x86-64 or out/MODEL-N are no flags.
	mention := regexp.MustCompile(`(?:^|[\s\[(|])--?([A-Za-z][A-Za-z0-9-]*)`)
	for _, c := range commands {
		if !strings.Contains(help, c.help) {
			t.Errorf("xlc help lacks the entry of %s", c.name)
		}
		out, stderr, code := xlc(t, c.name, "--help")
		if code != 0 || stderr != "" {
			t.Errorf("xlc %s --help: exit %d, stderr %q", c.name, code, stderr)
		}
		for _, variant := range [][]string{{c.name, "-h"}, {c.name, "-help"}, {"help", c.name}} {
			if o, _, code := xlc(t, variant...); code != 0 || o != out {
				t.Errorf("xlc %s: exit %d, output differs from xlc %s --help:\n%s", strings.Join(variant, " "), code, c.name, o)
			}
		}
		entry, flags, _ := strings.Cut(out, "\nFlags:\n")
		if entry != "Usage:\n"+c.help {
			t.Errorf("xlc %s --help starts %q, want its entry in xlc help", c.name, entry)
		}
		var taken, named []string
		for _, m := range flagLine.FindAllStringSubmatch(flags, -1) {
			taken = append(taken, m[1])
		}
		for _, m := range mention.FindAllStringSubmatch(c.help, -1) {
			if m[1] != "help" && m[1] != "h" { // every command takes --help; the flag list omits it
				named = append(named, m[1])
			}
		}
		if a, b := set(taken), set(named); a != b {
			t.Errorf("xlc %s takes the flags %s; xlc help names %s", c.name, a, b)
		}
	}
}

// set is the distinct strings of xs, sorted and joined.
func set(xs []string) string {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	var out []string
	for x := range m {
		out = append(out, x)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
