package value

import (
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
