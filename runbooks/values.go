package runbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/internal/suggest"
	"github.com/runbookdev/runbook/internal/value"
)

// Params are resolved param values: canonical values by name, and where each came from.
type Params struct {
	Values map[string]any
	Source map[string]string // "default", a values file, or "--set"
}

// ValueInputs are the operator's inputs for params, in the order given on the command
// line. Precedence, lowest first: the param's default, values files in order (a later
// file wins), --set flags in order (a later flag wins). Map params merge key by key
// across layers (Helm's habit); every other type is replaced whole.
type ValueInputs struct {
	Files []string // -f
	Sets  []string // --set a=b or a.key=b
}

type entry struct {
	raw    any
	pos    Pos
	source string
}

// ResolveParams merges defaults, values files and --set into typed params. Every
// problem in every input is reported, each with its file:line:col or flag.
func ResolveParams(rb *Runbook, in ValueInputs) (*Params, error) {
	var errs Errors
	merged := map[string]*entry{}
	apply := func(name string, e *entry, mapKey []string) {
		p := rb.Param(name)
		if len(mapKey) > 0 {
			cur, _ := merged[name]
			var m map[string]any
			if cur != nil {
				m, _ = cur.raw.(map[string]any)
			}
			if m == nil {
				m = map[string]any{}
			} else {
				m = deepCopy(m).(map[string]any)
			}
			setPath(m, mapKey, e.raw)
			e = &entry{raw: m, pos: e.pos, source: e.source}
		} else if p.Type == value.Map {
			if cur := merged[name]; cur != nil {
				if base, ok := cur.raw.(map[string]any); ok {
					if over, ok := e.raw.(map[string]any); ok {
						e = &entry{raw: mergeMaps(deepCopy(base).(map[string]any), over), pos: e.pos, source: e.source}
					}
				}
			}
		}
		merged[name] = e
	}
	for _, p := range rb.Params {
		if p.Default != nil {
			merged[p.Name] = &entry{raw: value.JSON(p.Default), pos: p.Pos, source: "default"}
		}
	}
	for _, file := range in.Files {
		entries, ferrs := readValuesFile(rb, file)
		errs = append(errs, ferrs...)
		for _, kv := range entries {
			apply(kv.name, kv.e, nil)
		}
	}
	for _, s := range in.Sets {
		name, key, raw, err := parseSet(rb, s)
		if err != nil {
			errs = append(errs, &Error{Pos: Pos{File: "--set " + s}, Msg: err.Error()})
			continue
		}
		apply(name, &entry{raw: raw, pos: Pos{File: "--set " + s}, source: "--set"}, key)
	}
	out := &Params{Values: map[string]any{}, Source: map[string]string{}}
	for _, p := range rb.Params {
		e := merged[p.Name]
		if e == nil {
			if p.Required {
				errs = append(errs, &Error{Pos: p.Pos, Path: "params." + p.Name,
					Msg: fmt.Sprintf("required param is not set: give it in a values file (-f) or with --set %s=...", p.Name)})
			}
			continue
		}
		v, err := p.Resolve(e.raw, true)
		if err != nil {
			errs = append(errs, &Error{Pos: e.pos, Path: p.Name, Msg: err.Error()})
			continue
		}
		out.Values[p.Name] = v
		out.Source[p.Name] = e.source
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type namedEntry struct {
	name string
	e    *entry
}

// readValuesFile reads one -f file: a map of param name to value.
func readValuesFile(rb *Runbook, file string) ([]namedEntry, Errors) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: file}, Msg: fmt.Sprintf("read values file: %v", err)}}
	}
	return parseValues(rb, file, src)
}

func parseValues(rb *Runbook, file string, src []byte) ([]namedEntry, Errors) {
	c := &collector{file: file}
	doc, empty := decodeOne(c, src, "a values file")
	if empty {
		return nil, nil // an empty values file sets nothing
	}
	if doc == nil {
		return nil, c.errs
	}
	root := resolve(doc)
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, c.errs
	}
	kvs, ok := c.mapping(root, "")
	if !ok {
		return nil, c.errs
	}
	if isRunbook(kvs) {
		c.add(root.Line, root.Column, "", "this is a Runbook, not a values file: pass the runbook as the argument and only values files to -f")
		return nil, c.errs
	}
	var out []namedEntry
	for _, kv := range kvs {
		p := rb.Param(kv.key.Value)
		if p == nil {
			c.add(kv.key.Line, kv.key.Column, kv.key.Value, "unknown param %q%s; the runbook declares: %s",
				kv.key.Value, suggest.Hint(kv.key.Value, rb.paramNames()), strings.Join(rb.paramNames(), ", "))
			continue
		}
		raw, ok := c.anyValue(kv.value, kv.key.Value)
		if !ok {
			continue
		}
		out = append(out, namedEntry{p.Name, &entry{raw: raw, pos: Pos{File: file, Line: kv.value.Line, Col: kv.value.Column}, source: file}})
	}
	return out, c.errs
}

func isRunbook(kvs []keyValue) bool {
	var api, kind bool
	for _, kv := range kvs {
		switch kv.key.Value {
		case "apiVersion":
			api = strings.HasPrefix(kv.value.Value, "runbook/")
		case "kind":
			kind = kv.value.Value == Kind
		}
	}
	return api || kind
}

// parseSet parses one --set flag: name=value, name.key.sub=value for map params, and
// name={a,b} for list params. Values stay strings; the param's type converts them.
func parseSet(rb *Runbook, s string) (name string, mapKey []string, raw any, err error) {
	lhs, rhs, ok := strings.Cut(s, "=")
	if !ok {
		return "", nil, nil, fmt.Errorf("expected name=value")
	}
	path := strings.Split(lhs, ".")
	for _, seg := range path {
		if seg == "" {
			return "", nil, nil, fmt.Errorf("empty key in %q", lhs)
		}
	}
	p := rb.Param(path[0])
	if p == nil {
		return "", nil, nil, fmt.Errorf("unknown param %q%s; the runbook declares: %s", path[0], suggest.Hint(path[0], rb.paramNames()), strings.Join(rb.paramNames(), ", "))
	}
	if len(path) > 1 && p.Type != value.Map {
		return "", nil, nil, fmt.Errorf("param %s is a %s, so %q cannot set a key inside it", p.Name, p.Type, lhs)
	}
	if p.Type == value.List && len(path) == 1 {
		if !strings.HasPrefix(rhs, "{") || !strings.HasSuffix(rhs, "}") {
			return "", nil, nil, fmt.Errorf("param %s is a list: write --set %s={a,b}", p.Name, p.Name)
		}
		items := []any{}
		if inner := strings.TrimSpace(rhs[1 : len(rhs)-1]); inner != "" {
			for _, it := range strings.Split(inner, ",") {
				items = append(items, strings.TrimSpace(it))
			}
		}
		return p.Name, nil, items, nil
	}
	if p.Type == value.Map && len(path) == 1 {
		return "", nil, nil, fmt.Errorf("param %s is a map: set its keys with --set %s.key=value", p.Name, p.Name)
	}
	return p.Name, path[1:], rhs, nil
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func mergeMaps(base, over map[string]any) map[string]any {
	for k, v := range over {
		if bm, ok := base[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				base[k] = mergeMaps(bm, om)
				continue
			}
		}
		base[k] = v
	}
	return base
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = deepCopy(x[i])
		}
		return out
	}
	return v
}

// Digest identifies the params: a run resumes only with the same digest (new params
// start a new run).
func (p *Params) Digest() string {
	names := make([]string, 0, len(p.Values))
	for n := range p.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	canon := make([][2]any, len(names))
	for i, n := range names {
		canon[i] = [2]any{n, value.JSON(p.Values[n])}
	}
	b, _ := json.Marshal(canon)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Digest identifies the runbook file's content.
func (rb *Runbook) Digest() string {
	sum := sha256.Sum256(rb.Source)
	return "sha256:" + hex.EncodeToString(sum[:])
}
