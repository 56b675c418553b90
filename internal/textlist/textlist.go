// Package textlist renders lists for people: refusals, plans and findings name
// what they are about without flooding a report with thousands of pods.
package textlist

import (
	"fmt"
	"strings"
)

// Capped joins at most max items with ", " and says how many more there are:
// "a, b and 3 more". max <= 0 joins them all.
func Capped(items []string, max int) string {
	if max <= 0 || len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

// CappedLines returns at most max items, then a line "... and N more" when there
// are more; items is not modified. max <= 0 returns them all.
func CappedLines(items []string, max int) []string {
	if max <= 0 || len(items) <= max {
		return items
	}
	return append(items[:max:max], fmt.Sprintf("... and %d more", len(items)-max))
}
