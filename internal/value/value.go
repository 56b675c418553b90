// Package value is the type system shared by runbook params and action parameters:
// the handful of types an operator can write in YAML, how a raw value (from YAML, a
// values file or --set) is checked and converted, and the canonical form each type
// takes inside expressions. Keeping it in one leaf package means a runbook param and an
// action's `with:` field can never disagree about what "cidr" or "duration" means.
package value

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type names a value type of the runbook language.
type Type string

const (
	String   Type = "string"
	Int      Type = "int"
	Bool     Type = "bool"
	Duration Type = "duration"
	CIDR     Type = "cidr"
	List     Type = "list"
	Map      Type = "map"
	// Any accepts whatever YAML holds; only actions use it (e.g. free-form selectors).
	Any Type = "any"
)

// Types lists the types a runbook param may declare, in documentation order.
var Types = []Type{String, Int, Bool, Duration, CIDR, List, Map}

// ParseType returns the Type called name, or an error listing the valid ones.
func ParseType(name string) (Type, error) {
	for _, t := range Types {
		if string(t) == name {
			return t, nil
		}
	}
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown type %q (want one of %s)", name, strings.Join(names, ", "))
}

// GoType is the Go type a value of t has inside expressions; the expression
// checker uses it to type-check guards at validate time.
func (t Type) GoType() reflect.Type {
	switch t {
	case String, CIDR:
		return reflect.TypeOf("")
	case Int:
		return reflect.TypeOf(0)
	case Bool:
		return reflect.TypeOf(false)
	case Duration:
		return reflect.TypeOf(time.Duration(0))
	case List:
		return reflect.TypeOf([]any(nil))
	case Map:
		return reflect.TypeOf(map[string]any(nil))
	default:
		return reflect.TypeOf((*any)(nil)).Elem()
	}
}

// Coerce checks raw against t and returns its canonical form: ints as int, durations as
// time.Duration, CIDRs as their canonical string, lists as []any, maps as map[string]any.
// Strings are converted where the operator obviously meant the type ("30s" for a
// duration, "3" from --set for an int); anything else is an error that says what was
// expected, never a silent zero.
func Coerce(t Type, raw any) (any, error) {
	switch t {
	case Any:
		return normalize(raw), nil
	case String:
		switch v := raw.(type) {
		case string:
			return v, nil
		case int, int64, float64, bool:
			// YAML turns 8080 or 1.20 into numbers; a string param still means the text.
			return fmt.Sprint(v), nil
		}
	case Int:
		switch v := raw.(type) {
		case int:
			return v, nil
		case int64:
			if v < math.MinInt || v > math.MaxInt {
				return nil, fmt.Errorf("%d does not fit in an int", v)
			}
			return int(v), nil
		case uint64:
			if v > math.MaxInt {
				return nil, fmt.Errorf("%d does not fit in an int", v)
			}
			return int(v), nil
		case float64:
			// YAML reads 1e3 or 9.223372036854775807e18 as a float, and int() of a
			// float past the int range is no error in Go but a wrapped, negative
			// number. The bounds are exact as floats, -2^63 and 2^63 (exclusive):
			// float64(math.MaxInt) rounds up to 2^63 and would let 2^63 through.
			if math.IsInf(v, 0) || v >= -float64(math.MinInt) || v < float64(math.MinInt) {
				return nil, fmt.Errorf("%v is out of range for an int (%d to %d)", v, math.MinInt, math.MaxInt)
			}
			if math.IsNaN(v) || v != math.Trunc(v) {
				return nil, fmt.Errorf("expected an integer, got %v", v)
			}
			return int(v), nil
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%q is out of range for an int (%d to %d)", v, math.MinInt, math.MaxInt)
			}
			if err != nil {
				return nil, fmt.Errorf("expected an integer, got %q", v)
			}
			return n, nil
		}
	case Bool:
		switch v := raw.(type) {
		case bool:
			return v, nil
		case string:
			switch v {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			return nil, fmt.Errorf("expected true or false, got %q", v)
		}
	case Duration:
		switch v := raw.(type) {
		case time.Duration:
			return v, nil
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("expected a duration such as 30s, 5m or 1h30m, got %q", v)
			}
			if d < 0 {
				return nil, fmt.Errorf("duration %q is negative", v)
			}
			return d, nil
		case int, int64:
			return nil, fmt.Errorf("expected a duration with a unit such as %vs, got the bare number %v", v, v)
		}
	case CIDR:
		if s, ok := raw.(string); ok {
			return CanonicalCIDR(s)
		}
	case List:
		if l, ok := raw.([]any); ok {
			return normalize(l), nil
		}
	case Map:
		if m, ok := raw.(map[string]any); ok {
			return normalize(m), nil
		}
	default:
		return nil, fmt.Errorf("unknown type %q", t)
	}
	return nil, fmt.Errorf("expected %s, got %s", t, Describe(raw))
}

// CanonicalCIDR parses an IPv4 or IPv6 prefix and returns the form Calico stores:
// lower-case, compressed IPv6 (calico#11311 shows what non-canonical IPv6 CIDRs break).
// Host bits set are refused rather than masked: "10.0.0.1/16" is more likely a typo
// than a request for 10.0.0.0/16, and a migration must not guess.
func CanonicalCIDR(s string) (string, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("expected a CIDR such as 10.0.0.0/16 or fd00::/108, got %q", s)
	}
	if p.Addr().Zone() != "" {
		return "", fmt.Errorf("CIDR %q must not have an IPv6 zone", s)
	}
	if p.Addr().Is4In6() {
		return "", fmt.Errorf("CIDR %q is an IPv4-mapped IPv6 prefix; write the IPv4 form", s)
	}
	if m := p.Masked(); m != p {
		return "", fmt.Errorf("CIDR %q has host bits set; did you mean %s?", s, m)
	}
	return p.String(), nil
}

// Describe names the kind of a raw value for error messages.
func Describe(raw any) string {
	switch v := raw.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("bool %v", v)
	case int, int64, uint64:
		return fmt.Sprintf("int %v", v)
	case float64:
		return fmt.Sprintf("number %v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case time.Duration:
		return fmt.Sprintf("duration %v", v)
	}
	return fmt.Sprintf("%T", raw)
}

// normalize turns the integer flavours YAML decoders produce into int so that
// expressions compare them without surprises.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x)
		}
	case uint64:
		if x <= math.MaxInt {
			return int(x)
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

// Format renders a canonical value for plans and reports.
func Format(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case time.Duration:
		return x.String()
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + Format(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i := range x {
			parts[i] = Format(x[i])
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// JSON returns v in a form encoding/json renders the way an operator wrote it
// (durations as "5m0s" strings, not nanoseconds).
func JSON(v any) any {
	switch x := v.(type) {
	case time.Duration:
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = JSON(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = JSON(e)
		}
		return out
	}
	return v
}

// JSONMap applies JSON to every value of a map (params, rendered with: blocks).
func JSONMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = JSON(v)
	}
	return out
}
