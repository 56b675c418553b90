package value

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCoerce(t *testing.T) {
	tests := []struct {
		typ     Type
		raw     any
		want    any
		wantErr string
	}{
		{String, "a", "a", ""},
		{String, 8080, "8080", ""},
		{String, []any{"x"}, nil, "expected string, got a list"},
		{Int, 3, 3, ""},
		{Int, int64(3), 3, ""},
		{Int, "42", 42, ""},
		{Int, 2.5, nil, "expected an integer"},
		{Int, "x", nil, `expected an integer, got "x"`},
		// float64 has no 2^63-1: this literal is 2^63, which int(v) turned negative.
		{Int, 9.223372036854775807e18, nil, "out of range"},
		{Int, -9.3e18, nil, "out of range"},
		{Int, 1e300, nil, "out of range"},
		{Int, -9.223372036854775808e18, math.MinInt64, ""},
		{Int, 4.0e15, 4000000000000000, ""},
		{Int, "9223372036854775808", nil, "out of range"},
		{Int, math.NaN(), nil, "expected an integer, got NaN"},
		{Bool, true, true, ""},
		{Bool, "false", false, ""},
		{Bool, "yes", nil, `expected true or false, got "yes"`},
		{Duration, "30m", 30 * time.Minute, ""},
		{Duration, 30, nil, "bare number"},
		{Duration, "-1s", nil, "negative"},
		{CIDR, "10.0.0.0/16", "10.0.0.0/16", ""},
		{CIDR, "FD00:0:0:0::/108", "fd00::/108", ""},
		{CIDR, "10.0.0.1/16", nil, "did you mean 10.0.0.0/16?"},
		{CIDR, "10.0.0.0", nil, "expected a CIDR"},
		{CIDR, "::ffff:10.0.0.0/112", nil, "IPv4-mapped"},
		{CIDR, "fe80::%eth0/64", nil, "expected a CIDR"},
		{List, []any{int64(1), "a"}, []any{1, "a"}, ""},
		{List, "a,b", nil, "expected list"},
		{Map, map[string]any{"a": uint64(1)}, map[string]any{"a": 1}, ""},
		{Map, nil, nil, "expected map, got null"},
	}
	for _, tt := range tests {
		got, err := Coerce(tt.typ, tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Coerce(%s, %#v) error = %v, want containing %q", tt.typ, tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Coerce(%s, %#v): %v", tt.typ, tt.raw, err)
			continue
		}
		if Format(got) != Format(tt.want) {
			t.Errorf("Coerce(%s, %#v) = %#v, want %#v", tt.typ, tt.raw, got, tt.want)
		}
	}
}

func TestParseType(t *testing.T) {
	if _, err := ParseType("cidr"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseType("ipnet"); err == nil || !strings.Contains(err.Error(), "string, int, bool, duration, cidr, list, map") {
		t.Fatalf("unexpected %v", err)
	}
}

// TestSpecCheck: a declaration's Check runs on every value Resolve accepts (a
// literal at validate, a bound param, a rendered template), after the type and the
// enum, and never on an absent value or a default.
func TestSpecCheck(t *testing.T) {
	calls := 0
	positive := func(v any) error {
		calls++
		if v.(int) < 1 {
			return errors.New("must be at least 1")
		}
		return nil
	}
	s := Spec{Type: Int, Default: 4, Check: positive}
	tests := []struct {
		raw     any
		present bool
		want    any
		wantErr string
	}{
		{3, true, 3, ""},
		{"2", true, 2, ""},
		{0, true, nil, "must be at least 1"},
		{"x", true, nil, "expected an integer"},
		{nil, false, 4, ""},
	}
	for _, tt := range tests {
		got, err := s.Resolve(tt.raw, tt.present)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%#v) error = %v, want %q", tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%#v) = %#v, %v; want %#v", tt.raw, got, err, tt.want)
		}
	}
	if calls != 3 {
		t.Errorf("Check ran %d times, want 3 (the ints 3, 2 and 0; not the bad string, not the default)", calls)
	}
}
