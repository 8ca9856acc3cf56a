// Package suggest finds the names a misspelled name was probably meant to
// be, for "did you mean" hints in error messages.
package suggest

import (
	"sort"
	"strings"
)

// Closest returns the candidates nearest to name by edit distance
// (insertions, deletions, substitutions and transpositions of adjacent
// characters, each one edit), sorted, when the nearest are close enough to
// be a plausible typo: at most one edit per four characters of name (at
// least one), and fewer edits than name has characters. Several names at
// the same distance are all returned, since picking one would be a guess.
// A candidate equal to name is not a suggestion.
func Closest(name string, candidates []string) []string {
	limit := max(len(name)/4, 1)
	if limit >= len(name) {
		limit = len(name) - 1
	}
	var best []string
	seen := map[string]bool{}
	for _, c := range candidates {
		if c == name || seen[c] {
			continue
		}
		seen[c] = true
		d := Distance(name, c)
		if d > limit {
			continue
		}
		if d < limit {
			limit, best = d, nil
		}
		best = append(best, c)
	}
	sort.Strings(best)
	return best
}

// Hint is the " (did you mean x?)" suffix for the candidates nearest to
// name (see Closest), or "" when none is close.
func Hint(name string, candidates []string) string {
	best := Closest(name, candidates)
	switch len(best) {
	case 0:
		return ""
	case 1:
		return " (did you mean " + best[0] + "?)"
	}
	return " (did you mean " + strings.Join(best[:len(best)-1], ", ") + " or " + best[len(best)-1] + "?)"
}

// Distance is the optimal-string-alignment distance between a and b in
// bytes: the fewest insertions, deletions, substitutions and adjacent
// transpositions that turn a into b, no substring edited twice.
func Distance(a, b string) int {
	// Three rows of the dynamic-programming table: i-2, i-1 and i.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
