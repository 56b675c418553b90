package runbooks

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/internal/suggest"
)

// Helpers over yaml.v3 nodes. Working on nodes rather than decoding into structs is
// what lets every error carry file:line:col and catch unknown or duplicate keys.

type keyValue struct {
	key   *yaml.Node
	value *yaml.Node
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return strings.TrimPrefix(n.Tag, "!!") + " " + fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// mapping returns the key/value pairs of a mapping node, reporting a non-mapping and
// duplicate keys (yaml.v3 keeps both silently when parsing into nodes).
func (c *collector) mapping(n *yaml.Node, path string) ([]keyValue, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		c.add(n.Line, n.Column, path, "expected a map, got %s", kindName(n))
		return nil, false
	}
	seen := map[string]bool{}
	var out []keyValue
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			c.add(k.Line, k.Column, path, "map keys must be strings")
			continue
		}
		if k.Tag == "!!merge" {
			c.add(k.Line, k.Column, path, "YAML merge keys (<<) are not supported; write the fields out")
			continue
		}
		if seen[k.Value] {
			c.add(k.Line, k.Column, join(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, keyValue{k, v})
	}
	return out, true
}

// fields dispatches each key of a mapping to its handler and reports unknown keys.
func (c *collector) fields(n *yaml.Node, path string, handlers map[string]func(k, v *yaml.Node, path string)) map[string]*yaml.Node {
	kvs, ok := c.mapping(n, path)
	if !ok {
		return nil
	}
	present := map[string]*yaml.Node{}
	known := make([]string, 0, len(handlers))
	for name := range handlers {
		known = append(known, name)
	}
	for _, kv := range kvs {
		h, ok := handlers[kv.key.Value]
		if !ok {
			c.add(kv.key.Line, kv.key.Column, join(path, kv.key.Value), "unknown field %q%s", kv.key.Value, suggest.Hint(kv.key.Value, known))
			continue
		}
		present[kv.key.Value] = kv.key
		h(kv.key, kv.value, join(path, kv.key.Value))
	}
	return present
}

// str reads a string scalar.
func (c *collector) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		c.add(n.Line, n.Column, path, "expected a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// anyValue decodes a node into plain Go values (string, int, float64, bool, []any,
// map[string]any, nil).
func (c *collector) anyValue(n *yaml.Node, path string) (any, bool) {
	var v any
	if err := n.Decode(&v); err != nil {
		c.add(n.Line, n.Column, path, "%v", err)
		return nil, false
	}
	return stringKeys(v), true
}

// stringKeys converts map[any]any (from non-string YAML keys) so values stay JSON-like.
func stringKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = stringKeys(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = stringKeys(x[i])
		}
	}
	return v
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// scalarAt maps a byte offset inside a scalar's value to a file position, following
// the scalar's style (plain, quoted, or block) so expression errors point at the
// column where the operator must look.
func scalarAt(n *yaml.Node, lines []string) func(int) (int, int) {
	return func(off int) (int, int) {
		val := n.Value
		if off > len(val) {
			off = len(val)
		}
		before := val[:off]
		nl := strings.Count(before, "\n")
		lastNL := strings.LastIndex(before, "\n")
		inLine := off - lastNL - 1
		switch n.Style {
		case yaml.LiteralStyle, yaml.FoldedStyle:
			line := n.Line + 1 + nl
			indent := 0
			if line-1 < len(lines) {
				indent = len(lines[line-1]) - len(strings.TrimLeft(lines[line-1], " "))
			}
			return line, indent + inLine + 1
		case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
			if nl == 0 {
				return n.Line, n.Column + 1 + off
			}
			return n.Line + nl, 0
		default:
			if nl == 0 {
				return n.Line, n.Column + off
			}
			return n.Line + nl, 0
		}
	}
}
