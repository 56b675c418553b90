package textlist

import (
	"slices"
	"testing"
)

func TestCapped(t *testing.T) {
	abc := []string{"a", "b", "c"}
	for _, tc := range []struct {
		items []string
		max   int
		want  string
		lines []string
	}{
		{nil, 3, "", nil},
		{abc, 3, "a, b, c", abc},
		{abc, 5, "a, b, c", abc},
		{abc, 2, "a, b and 1 more", []string{"a", "b", "... and 1 more"}},
		{abc, 1, "a and 2 more", []string{"a", "... and 2 more"}},
		{abc, 0, "a, b, c", abc},
	} {
		if got := Capped(tc.items, tc.max); got != tc.want {
			t.Errorf("Capped(%v, %d) = %q, want %q", tc.items, tc.max, got, tc.want)
		}
		if got := CappedFunc(tc.items, tc.max, func(s string) string { return s }); got != tc.want {
			t.Errorf("CappedFunc(%v, %d) = %q, want %q", tc.items, tc.max, got, tc.want)
		}
		if got := CappedLines(tc.items, tc.max); !slices.Equal(got, tc.lines) {
			t.Errorf("CappedLines(%v, %d) = %q, want %q", tc.items, tc.max, got, tc.lines)
		}
	}
	if !slices.Equal(abc, []string{"a", "b", "c"}) {
		t.Errorf("items modified: %v", abc)
	}
}
