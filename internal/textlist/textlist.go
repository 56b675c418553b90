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
	return CappedFunc(items, max, func(s string) string { return s })
}

// CappedFunc is Capped over items rendered by str; only the items shown are
// rendered, so a list of thousands costs what the shown ones cost.
func CappedFunc[T any](items []T, max int, str func(T) string) string {
	shown := items
	if max > 0 && len(items) > max {
		shown = items[:max]
	}
	parts := make([]string, len(shown))
	for i, it := range shown {
		parts[i] = str(it)
	}
	if len(shown) < len(items) {
		return fmt.Sprintf("%s and %d more", strings.Join(parts, ", "), len(items)-len(shown))
	}
	return strings.Join(parts, ", ")
}

// CappedLines returns at most max items, then a line "... and N more" when there
// are more; items is not modified. max <= 0 returns them all.
func CappedLines(items []string, max int) []string {
	if max <= 0 || len(items) <= max {
		return items
	}
	return append(items[:max:max], fmt.Sprintf("... and %d more", len(items)-max))
}
