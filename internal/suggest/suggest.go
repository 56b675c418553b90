// Package suggest finds the known name a mistyped one was probably meant to be,
// for "did you mean" hints on unknown commands, flags, environments and steps.
package suggest

import (
	"fmt"
	"strings"
)

// Closest returns the candidate nearest to name, if it is close enough to be a typo:
// the same name in another case, a prefix of at least four characters, or within one
// edit per three characters (transpositions count once). It mirrors the runbook
// parser's suggestions so every "did you mean" in the tool feels the same.
func Closest(name string, candidates []string) (string, bool) {
	lower := strings.ToLower(name)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if lc == lower || (len(lower) >= 4 && strings.HasPrefix(lc, lower)) {
			return c, true
		}
	}
	limit := max(1, len([]rune(name))/3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := Distance(lower, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// Hint is ` (did you mean "x"?)` for the closest candidate, or "".
func Hint(name string, candidates []string) string {
	if c, ok := Closest(name, candidates); ok {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

// Distance is the optimal-string-alignment edit distance (Levenshtein plus adjacent
// transpositions, the commonest typo).
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
