package value

import (
	"fmt"
	"strings"
)

// Spec declares one typed input: a runbook param or an action parameter.
type Spec struct {
	Type        Type
	Required    bool
	Default     any   // canonical (already coerced), nil when there is none
	Enum        []any // canonical; empty means any value of Type
	Description string
	// Check, when set, is a rule a value must meet beyond its type and enum: a
	// Calico name, a selector's syntax, a range (internal/value/check has them).
	// Resolve runs it wherever a value becomes known, so one declaration refuses a
	// literal at validate, a value bound from -f/--set before plan or apply touch the
	// cluster, and a rendered template when the step runs. Defaults are not checked:
	// a declaration's own default must pass (a test of the declarations says so).
	Check Check
}

// Check is a rule on a canonical value (never nil). Its error says what is wrong
// and what is allowed; the caller adds the file, line and field.
type Check func(v any) error

// Resolve returns the canonical value for raw, applying the default when the input
// was not given. present tells "not given" apart from an explicit null.
func (s Spec) Resolve(raw any, present bool) (any, error) {
	if !present {
		if s.Default != nil {
			return s.Default, nil
		}
		if s.Required {
			return nil, fmt.Errorf("is required")
		}
		return nil, nil
	}
	v, err := Coerce(s.Type, raw)
	if err != nil {
		return nil, err
	}
	if err := s.CheckEnum(v); err != nil {
		return nil, err
	}
	if s.Check != nil && v != nil {
		if err := s.Check(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// CheckEnum reports whether a canonical value is one of the allowed values.
func (s Spec) CheckEnum(v any) error {
	if len(s.Enum) == 0 {
		return nil
	}
	for _, e := range s.Enum {
		if Format(e) == Format(v) {
			return nil
		}
	}
	allowed := make([]string, len(s.Enum))
	for i, e := range s.Enum {
		allowed[i] = Format(e)
	}
	return fmt.Errorf("%s is not one of the allowed values %s", Format(v), strings.Join(allowed, ", "))
}
