package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"sandbox", "staging", "prod", "deletePool", "deletePodsInPool", "apply"}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"stagign", "staging", true}, // transposition
		{"prd", "prod", true},
		{"PROD", "prod", true},
		{"aply", "apply", true},
		{"deletepool", "deletePool", true},
		{"deletePods", "deletePodsInPool", true}, // prefix
		{"production", "", false},
		{"x", "", false},
		{"qa", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Closest(tt.name, known)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Closest(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
	if h := Hint("stagign", known); h != ` (did you mean "staging"?)` {
		t.Errorf("Hint: %q", h)
	}
	if h := Hint("zzz", known); h != "" {
		t.Errorf("Hint of nothing close: %q", h)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"", "ab", 2}} {
		if got := Distance(tt.a, tt.b); got != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}
