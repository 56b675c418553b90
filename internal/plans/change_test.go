package plans

import "testing"

func TestChanges(t *testing.T) {
	for _, tc := range []struct {
		c       Change
		mutates bool
		mark    string
	}{
		{None, false, "="}, {Create, true, "+"}, {Update, true, "~"}, {Delete, true, "-"},
		{Check, false, "?"}, {Skip, false, "·"}, {Done, false, "✓"}, {Unknown, true, "…"},
		{Refused, false, "✗"}, {Change("rebuild"), false, "?"},
	} {
		if got := tc.c.Mutates(); got != tc.mutates {
			t.Errorf("%s.Mutates() = %v, want %v", tc.c, got, tc.mutates)
		}
		if got := tc.c.Mark(); got != tc.mark {
			t.Errorf("%s.Mark() = %q, want %q", tc.c, got, tc.mark)
		}
	}
}
