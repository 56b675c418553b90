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

// maxAliasNodes bounds the nodes YAML aliases may add to a document when it is
// expanded. The parser and yaml.v3's decoder walk an alias as a copy of its
// anchor, so aliases of aliases multiply: nine levels of nine ("billion laughs")
// stand for 387 million nodes in a 600-byte file, and yaml.v3 refuses excessive
// aliasing only when decoding into Go values, not while a node tree is walked. A
// runbook reuses an anchor for a toleration list or a selector a few times; ten
// thousand nodes is orders of magnitude past that and walks in microseconds.
const maxAliasNodes = 10_000

// checkAliases refuses a document whose aliases expand past maxAliasNodes, or an
// alias inside the node it names (yaml.v3 builds that cycle into the node tree,
// and a walk of it would never end). It reports the alias at fault, with the field
// path it stands at, and returns false then; nothing else may walk the tree.
func (c *collector) checkAliases(doc *yaml.Node) bool {
	g := &aliasGuard{c: c, size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	g.walk(doc, "")
	return !g.failed
}

type aliasGuard struct {
	c      *collector
	size   map[*yaml.Node]int  // expanded size of each anchored node, saturated past the bound
	open   map[*yaml.Node]bool // nodes being walked: an alias to one of them is a cycle
	added  int                 // nodes the aliases walked so far stand for
	failed bool
}

// walk visits the tree as written (aliases not followed: anchors come before their
// aliases, so each alias's anchor has been measured already) in document order and
// returns n's expanded size, saturated at maxAliasNodes+1 so it cannot overflow.
func (g *aliasGuard) walk(n *yaml.Node, path string) int {
	if n == nil || g.failed {
		return 0
	}
	if n.Kind == yaml.AliasNode {
		switch {
		case n.Alias == nil:
			return 1
		case g.open[n.Alias]:
			g.c.add(n.Line, n.Column, path, "YAML alias *%s refers to a node that contains it; write the value out", n.Value)
			g.failed = true
			return 0
		}
		s := g.size[n.Alias]
		g.added = saturate(g.added + s)
		if g.added > maxAliasNodes {
			g.c.add(n.Line, n.Column, path, "YAML alias *%s expands the document by more than %d nodes (aliases of aliases multiply, as in a \"billion laughs\" file); write the values out", n.Value, maxAliasNodes)
			g.failed = true
			return 0
		}
		return s
	}
	g.open[n] = true
	total := 1
	for i, child := range n.Content {
		cpath := path
		switch {
		case n.Kind == yaml.MappingNode && i%2 == 1 && n.Content[i-1].Kind == yaml.ScalarNode:
			cpath = join(path, n.Content[i-1].Value)
		case n.Kind == yaml.SequenceNode:
			cpath = index(path, i)
		}
		total = saturate(total + g.walk(child, cpath))
		if g.failed {
			return 0
		}
	}
	delete(g.open, n)
	if n.Anchor != "" {
		g.size[n] = total
	}
	return total
}

func saturate(n int) int { return min(n, maxAliasNodes+1) }

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
