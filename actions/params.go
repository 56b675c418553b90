package actions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The engine hands actions canonical parameter values (internal/value): strings,
// bools, ints, time.Duration, []any, map[string]any, or nil when an optional
// parameter without default was not given. These accessors read them; a wrong type
// is a programming error upstream, reported as an error, never a panic.

func paramString(c *Call, key string) (string, error) {
	switch v := c.With[key].(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("parameter %s: expected a string, got %T", key, v)
	}
}

func paramBool(c *Call, key string) (bool, error) {
	switch v := c.With[key].(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	default:
		return false, fmt.Errorf("parameter %s: expected a bool, got %T", key, v)
	}
}

// paramInt returns the int and whether it was given.
func paramInt(c *Call, key string) (int, bool, error) {
	switch v := c.With[key].(type) {
	case int:
		return v, true, nil
	case nil:
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("parameter %s: expected an int, got %T", key, v)
	}
}

func paramDuration(c *Call, key string, def time.Duration) (time.Duration, error) {
	switch v := c.With[key].(type) {
	case time.Duration:
		if v <= 0 {
			return def, nil
		}
		return v, nil
	case nil:
		return def, nil
	default:
		return 0, fmt.Errorf("parameter %s: expected a duration, got %T", key, v)
	}
}

// paramStrict decodes a free-form parameter (a list or map written in YAML) into a
// Kubernetes API type, refusing fields the type does not have: a misspelt
// toleration key must be an error, not a toleration that silently matches nothing.
func paramStrict(c *Call, key string, into any) (bool, error) {
	raw, ok := c.With[key]
	if !ok || raw == nil {
		return false, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return false, fmt.Errorf("parameter %s: %w", key, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return false, fmt.Errorf("parameter %s: %w", key, err)
	}
	return true, nil
}
