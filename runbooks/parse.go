package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/suggest"
	"github.com/runbookdev/runbook/internal/value"
)

var (
	identRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	stepIDRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	nameRe   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
)

// DefaultUntilTimeout bounds an `until` wait when the step sets no timeout.
const DefaultUntilTimeout = 10 * time.Minute

// ParseFile reads and parses a runbook file; see Parse.
func ParseFile(path string, reg *decl.Registry) (*Runbook, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	return Parse(path, src, reg)
}

// Parse parses and validates a runbook. On failure the error is an Errors listing
// every problem found, each with file:line:col and the field path.
func Parse(file string, src []byte, reg *decl.Registry) (*Runbook, error) {
	c := &collector{file: file}
	root := readSingleDoc(c, src)
	if root == nil {
		return nil, c.errs.Err()
	}
	rb := &Runbook{File: file, Source: src, OnFailure: Rollback, Pos: Pos{File: file, Line: root.Line, Col: root.Column}}
	p := &parser{c: c, rb: rb, reg: reg, lines: strings.Split(string(src), "\n")}
	p.top(root)
	if len(c.errs) == 0 || rb.Steps != nil {
		p.compileAll()
	}
	if len(c.errs) == 0 {
		c.errs = append(c.errs, rb.checkDefaults()...)
	}
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	return rb, nil
}

// readSingleDoc decodes exactly one YAML document into a node tree.
func readSingleDoc(c *collector, src []byte) *yaml.Node {
	doc, empty := decodeOne(c, src, "a runbook file")
	if empty {
		c.add(1, 1, "", "empty file: expected a runbook (apiVersion: %s, kind: %s)", APIVersion, Kind)
	}
	return doc
}

// decodeOne decodes the one YAML document of a file (what names the file for the
// error): a second document is an error at its line, since yaml.v3 would read the
// first and drop the rest without a word. It returns the document's root node, or
// nil when the file is invalid (reported) or holds no document (empty is true).
func decodeOne(c *collector, src []byte, what string) (root *yaml.Node, empty bool) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		line, col, msg := yamlErrPos(err, src)
		c.add(line, col, "", "invalid YAML: %s", msg)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		c.add(extra.Line, extra.Column, "", "%s holds one YAML document; found another one here", what)
	} else if !errors.Is(err, io.EOF) {
		line, col, msg := yamlErrPos(err, src)
		c.add(line, col, "", "invalid YAML: %s", msg)
	}
	if len(doc.Content) == 0 {
		c.add(1, 1, "", "empty document")
		return nil, false
	}
	if !c.checkAliases(&doc) {
		return nil, false
	}
	return doc.Content[0], false
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlErrPos pulls the position out of yaml.v3's error text. Errors of its reader
// (bytes that are not UTF-8, control characters) carry none: their place is
// found by scanning the file as the reader does.
func yamlErrPos(err error, src []byte) (line, col int, msg string) {
	msg = err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &line)
		return line, 0, m[2]
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if line, col, what, ok := readerErrorAt(src); ok {
		return line, col, msg + " (" + what
	}
	return 1, 0, msg
}

// readerErrorAt finds the first byte yaml.v3's reader refuses (reader.go: UTF-8
// only, and only the YAML 1.2 printable characters) and says what it is, with the
// advice for it. Files with a UTF-16 byte order mark are decoded as UTF-16 by
// yaml.v3 and not scanned here. Columns count characters, as yaml.v3's do.
func readerErrorAt(src []byte) (line, col int, what string, ok bool) {
	if bytes.HasPrefix(src, []byte{0xFE, 0xFF}) || bytes.HasPrefix(src, []byte{0xFF, 0xFE}) {
		return 0, 0, "", false
	}
	line, col = 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("byte 0x%02x): save the file as UTF-8", src[i]), true
		case !yamlPrintable(r) && !(i == 0 && r == 0xFEFF):
			return line, col, fmt.Sprintf("U+%04X)", r), true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else if r != '\r' {
			col++
		}
		i += size
	}
	return 0, 0, "", false
}

// yamlPrintable is YAML 1.2's c-printable, which yaml.v3's reader enforces.
func yamlPrintable(r rune) bool {
	switch {
	case r == 0x09 || r == 0x0A || r == 0x0D || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7E, r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

type parser struct {
	c     *collector
	rb    *Runbook
	reg   *decl.Registry
	lines []string
	// raw nodes kept for the second pass (expressions need every step id first)
	pending  []pendingExpr
	withs    []pendingWith
	forEachs []pendingForEach
}

type pendingForEach struct {
	node      *yaml.Node
	stepIndex int
	dst       *ForEach
}

type pendingExpr struct {
	node   *yaml.Node
	path   string
	target **Expr
	site   exprSite
}

type pendingWith struct {
	node *yaml.Node // the with: mapping (nil when absent)
	at   Pos        // where to report missing required parameters
	path string
	decl *decl.Action
	dst  **With
	site exprSite
}

func (p *parser) top(root *yaml.Node) {
	var apiVersion, kind string
	present := p.c.fields(root, "", map[string]func(k, v *yaml.Node, path string){
		"apiVersion": func(_, v *yaml.Node, path string) {
			if s, ok := p.c.str(v, path); ok {
				apiVersion = s
				if s != APIVersion {
					p.c.add(v.Line, v.Column, path, "unsupported apiVersion %q (want %s)", s, APIVersion)
				}
			}
		},
		"kind": func(_, v *yaml.Node, path string) {
			if s, ok := p.c.str(v, path); ok {
				kind = s
				if s != Kind {
					p.c.add(v.Line, v.Column, path, "kind %q is not %s", s, Kind)
				}
			}
		},
		"metadata":  func(_, v *yaml.Node, path string) { p.metadata(v, path) },
		"onFailure": func(_, v *yaml.Node, path string) { p.rb.OnFailure = p.failurePolicy(v, path) },
		"params":    func(_, v *yaml.Node, path string) { p.params(v, path) },
		"steps":     func(_, v *yaml.Node, path string) { p.steps(v, path) },
	})
	if present == nil {
		return
	}
	for _, f := range []string{"apiVersion", "kind", "metadata", "steps"} {
		if present[f] == nil {
			p.c.add(root.Line, root.Column, "", "missing required field %q", f)
		}
	}
	_, _ = apiVersion, kind
}

func (p *parser) metadata(n *yaml.Node, path string) {
	present := p.c.fields(n, path, map[string]func(k, v *yaml.Node, path string){
		"name": func(_, v *yaml.Node, path string) {
			if s, ok := p.c.str(v, path); ok {
				if len(s) > 63 || !nameRe.MatchString(s) {
					p.c.add(v.Line, v.Column, path, "name %q must be lower-case letters, digits, '-' and '.', at most 63 characters", s)
				}
				p.rb.Name = s
			}
		},
		"description": func(_, v *yaml.Node, path string) { p.rb.Description, _ = p.c.str(v, path) },
		"labels": func(_, v *yaml.Node, path string) {
			kvs, _ := p.c.mapping(v, path)
			p.rb.Labels = map[string]string{}
			for _, kv := range kvs {
				if s, ok := p.c.str(kv.value, join(path, kv.key.Value)); ok {
					p.rb.Labels[kv.key.Value] = s
				}
			}
		},
	})
	if present != nil && present["name"] == nil {
		p.c.add(n.Line, n.Column, path, "missing required field \"name\"")
	}
}

func (p *parser) failurePolicy(n *yaml.Node, path string) FailurePolicy {
	s, ok := p.c.str(n, path)
	if !ok {
		return ""
	}
	switch FailurePolicy(s) {
	case Rollback, Stop:
		return FailurePolicy(s)
	}
	p.c.add(n.Line, n.Column, path, "onFailure must be rollback or stop, got %q", s)
	return ""
}

func (p *parser) params(n *yaml.Node, path string) {
	kvs, _ := p.c.mapping(n, path)
	for _, kv := range kvs {
		name, ppath := kv.key.Value, join(path, kv.key.Value)
		if !identRe.MatchString(name) {
			p.c.add(kv.key.Line, kv.key.Column, ppath, "param name %q must be an identifier (letters, digits, _; not starting with a digit) so expressions can say params.%s", name, name)
			continue
		}
		pr := &Param{Name: name, Pos: Pos{File: p.c.file, Line: kv.key.Line, Col: kv.key.Column}}
		var rawDefault, rawEnum *yaml.Node
		present := p.c.fields(kv.value, ppath, map[string]func(k, v *yaml.Node, path string){
			"type": func(_, v *yaml.Node, path string) {
				if s, ok := p.c.str(v, path); ok {
					t, err := value.ParseType(s)
					if err != nil {
						p.c.add(v.Line, v.Column, path, "%v", err)
					}
					pr.Type = t
				}
			},
			"default":     func(_, v *yaml.Node, _ string) { rawDefault = v },
			"enum":        func(_, v *yaml.Node, _ string) { rawEnum = v },
			"required":    func(_, v *yaml.Node, path string) { pr.Required = p.bool(v, path) },
			"description": func(_, v *yaml.Node, path string) { pr.Description, _ = p.c.str(v, path) },
		})
		if present == nil {
			continue
		}
		if present["type"] == nil {
			p.c.add(kv.key.Line, kv.key.Column, ppath, "missing required field \"type\" (one of string, int, bool, duration, cidr, list, map)")
		}
		p.rb.Params = append(p.rb.Params, pr)
		if pr.Type == "" {
			continue
		}
		if rawEnum != nil {
			if pr.Type != value.String && pr.Type != value.Int && pr.Type != value.CIDR {
				p.c.add(rawEnum.Line, rawEnum.Column, join(ppath, "enum"), "enum is only allowed for string, int and cidr params")
			} else if rawEnum.Kind != yaml.SequenceNode || len(rawEnum.Content) == 0 {
				p.c.add(rawEnum.Line, rawEnum.Column, join(ppath, "enum"), "enum must be a non-empty list")
			} else {
				for i, e := range rawEnum.Content {
					raw, ok := p.c.anyValue(e, index(join(ppath, "enum"), i))
					if !ok {
						continue
					}
					v, err := value.Coerce(pr.Type, raw)
					if err != nil {
						p.c.add(e.Line, e.Column, index(join(ppath, "enum"), i), "%v", err)
						continue
					}
					pr.Enum = append(pr.Enum, v)
				}
			}
		}
		if rawDefault != nil {
			dpath := join(ppath, "default")
			if pr.Required {
				p.c.add(rawDefault.Line, rawDefault.Column, dpath, "a required param cannot have a default (it would never be missing)")
			}
			if raw, ok := p.c.anyValue(rawDefault, dpath); ok {
				if raw == nil {
					p.c.add(rawDefault.Line, rawDefault.Column, dpath, "default is null; omit it instead")
				} else if v, err := value.Coerce(pr.Type, raw); err != nil {
					p.c.add(rawDefault.Line, rawDefault.Column, dpath, "%v", err)
				} else if err := pr.CheckEnum(v); err != nil {
					p.c.add(rawDefault.Line, rawDefault.Column, dpath, "%v", err)
				} else {
					pr.Default = v
				}
			}
		}
	}
}

func (p *parser) bool(n *yaml.Node, path string) bool {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.c.add(n.Line, n.Column, path, "expected true or false, got %s", kindName(n))
		return false
	}
	return n.Value == "true"
}

func (p *parser) duration(n *yaml.Node, path string) time.Duration {
	raw, ok := p.c.anyValue(n, path)
	if !ok {
		return 0
	}
	v, err := value.Coerce(value.Duration, raw)
	if err != nil {
		p.c.add(n.Line, n.Column, path, "%v", err)
		return 0
	}
	if v.(time.Duration) == 0 {
		p.c.add(n.Line, n.Column, path, "timeout must be positive")
	}
	return v.(time.Duration)
}

func (p *parser) steps(n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.c.add(n.Line, n.Column, path, "expected a list of steps, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		p.c.add(n.Line, n.Column, path, "a runbook needs at least one step")
	}
	p.rb.Steps = []*Step{}
	seen := map[string]int{}
	for i, sn := range n.Content {
		spath := index(path, i)
		st := &Step{Index: i, Pos: Pos{File: p.c.file, Line: sn.Line, Col: sn.Column}}
		p.rb.Steps = append(p.rb.Steps, st)
		var withNode, rollbackNode, cleanupNode *yaml.Node
		var withAt Pos
		var guards []pendingExpr
		guard := func(field string, target **Expr, allowSelf bool) func(k, v *yaml.Node, path string) {
			return func(_, v *yaml.Node, path string) {
				if _, ok := p.c.str(v, path); ok {
					guards = append(guards, pendingExpr{node: resolve(v), path: path, target: target,
						site: exprSite{path: path, stepIndex: i, allowSelf: allowSelf}})
				}
			}
		}
		present := p.c.fields(sn, spath, map[string]func(k, v *yaml.Node, path string){
			"id": func(_, v *yaml.Node, path string) {
				if s, ok := p.c.str(v, path); ok {
					st.ID = s
					switch {
					case len(s) > 63 || !stepIDRe.MatchString(s):
						p.c.add(v.Line, v.Column, path, "step id %q must be lower-case letters, digits and '-', at most 63 characters", s)
					case seen[s] > 0:
						p.c.add(v.Line, v.Column, path, "duplicate step id %q (first used by steps[%d])", s, seen[s]-1)
					default:
						seen[s] = i + 1
					}
				}
			},
			"name": func(_, v *yaml.Node, path string) { st.Name, _ = p.c.str(v, path) },
			"action": func(_, v *yaml.Node, path string) {
				st.Action, st.Decl = p.action(v, path)
			},
			"with": func(k, v *yaml.Node, _ string) {
				withNode, withAt = v, Pos{File: p.c.file, Line: k.Line, Col: k.Column}
			},
			"when":      guard("when", &st.When, false),
			"require":   guard("require", &st.Require, false),
			"until":     guard("until", &st.Until, true),
			"assert":    guard("assert", &st.Assert, true),
			"timeout":   func(_, v *yaml.Node, path string) { st.Timeout = p.duration(v, path) },
			"onFailure": func(_, v *yaml.Node, path string) { st.OnFailure = p.failurePolicy(v, path) },
			"rollback":  func(_, v *yaml.Node, _ string) { rollbackNode = v },
			"cleanup":   func(_, v *yaml.Node, _ string) { cleanupNode = v },
			"forEach": func(_, v *yaml.Node, path string) {
				// Set now, compiled in the second pass: whether a step has forEach
				// decides where expressions may read item.
				st.ForEach = &ForEach{Path: path, Pos: Pos{File: p.c.file, Line: v.Line, Col: v.Column}}
				p.forEachs = append(p.forEachs, pendingForEach{node: v, stepIndex: i, dst: st.ForEach})
			},
		})
		if present == nil {
			continue
		}
		for _, f := range []string{"id", "action"} {
			if present[f] == nil {
				p.c.add(sn.Line, sn.Column, spath, "missing required field %q", f)
			}
		}
		p.pending = append(p.pending, guards...)
		if st.Decl != nil {
			if withNode == nil {
				withAt = st.Pos
			}
			p.withs = append(p.withs, pendingWith{node: withNode, at: withAt, path: join(spath, "with"), decl: st.Decl, dst: &st.With,
				site: exprSite{stepIndex: i}})
		}
		if st.Until != nil || present["until"] != nil {
			if st.Timeout == 0 {
				st.Timeout = DefaultUntilTimeout
			}
		}
		st.Rollback = RollbackNone
		if rollbackNode != nil {
			p.rollback(st, rollbackNode, join(spath, "rollback"))
		}
		if cleanupNode != nil {
			st.CleanupHooks = p.hooks(cleanupNode, join(spath, "cleanup"), i)
		}
	}
}

func (p *parser) action(n *yaml.Node, path string) (string, *decl.Action) {
	s, ok := p.c.str(n, path)
	if !ok {
		return "", nil
	}
	d, found := p.reg.Action(s)
	if !found {
		names := []string{}
		for _, d := range p.reg.Actions() {
			names = append(names, d.Name)
		}
		p.c.add(n.Line, n.Column, path, "unknown action %q%s; `runbook actions` lists them", s, suggest.Hint(s, names))
		return s, nil
	}
	return s, d
}

func (p *parser) rollback(st *Step, n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "auto":
			st.Rollback = RollbackAuto
			if st.Decl != nil && st.Decl.Inverse == "" && !st.Decl.PointOfNoReturn {
				p.c.add(n.Line, n.Column, path, "action %s has no inverse; list explicit rollback hooks or use none", st.Decl.Name)
			}
		case "none":
			st.Rollback = RollbackNone
		default:
			p.c.add(n.Line, n.Column, path, "rollback must be auto, none, or a list of hooks, got %q", n.Value)
		}
	} else {
		st.Rollback = RollbackExplicit
		st.RollbackHooks = p.hooks(n, path, st.Index)
	}
	if st.Decl != nil && st.Decl.PointOfNoReturn && st.Rollback != RollbackNone {
		p.c.add(n.Line, n.Column, path, "action %s is a point of no return: it cannot be rolled back", st.Decl.Name)
	}
}

func (p *parser) hooks(n *yaml.Node, path string, stepIndex int) []*Hook {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.c.add(n.Line, n.Column, path, "expected a list of hooks ({action, with}), got %s", kindName(n))
		return nil
	}
	var out []*Hook
	for i, hn := range n.Content {
		hpath := index(path, i)
		h := &Hook{Pos: Pos{File: p.c.file, Line: hn.Line, Col: hn.Column}}
		var withNode *yaml.Node
		withAt := h.Pos
		present := p.c.fields(hn, hpath, map[string]func(k, v *yaml.Node, path string){
			"action": func(_, v *yaml.Node, path string) { h.Action, h.Decl = p.action(v, path) },
			"with": func(k, v *yaml.Node, _ string) {
				withNode, withAt = v, Pos{File: p.c.file, Line: k.Line, Col: k.Column}
			},
		})
		if present == nil {
			continue
		}
		if present["action"] == nil {
			p.c.add(hn.Line, hn.Column, hpath, "missing required field \"action\"")
		}
		if h.Decl != nil {
			if h.Decl.PointOfNoReturn {
				p.c.add(hn.Line, hn.Column, join(hpath, "action"), "action %s is a point of no return and cannot be a hook", h.Decl.Name)
			}
			p.withs = append(p.withs, pendingWith{node: withNode, at: withAt, path: join(hpath, "with"), decl: h.Decl, dst: &h.With,
				site: exprSite{stepIndex: stepIndex, allowSelf: true}})
		}
		out = append(out, h)
	}
	return out
}

// compileAll is the second pass: with every step id known, compile guards and check
// each with: block against its action's declaration.
func (p *parser) compileAll() {
	p.rb.scope = newScope(p.rb, p.reg)
	cp := newCompiler(p.c, p.rb, p.rb.scope)
	for _, f := range p.forEachs {
		p.forEach(cp, f)
	}
	for _, g := range p.pending {
		g.site.at = scalarAt(g.node, p.lines)
		src, off := unwrapExpr(g.node.Value)
		site := g.site
		base := site.at
		site.at = func(o int) (int, int) { return base(o + off) }
		prog, deps := cp.compile(src, site, reflect.TypeOf(false))
		line, col := base(off)
		*g.target = &Expr{Source: src, Field: g.path, Pos: Pos{File: p.c.file, Line: line, Col: col}, Program: prog, Steps: deps.steps, deps: deps}
	}
	for _, w := range p.withs {
		*w.dst = p.with(cp, w)
	}
}

// forEach reads a step's forEach: a YAML list, or an expression (bare or in ${{ }})
// that gives one. Its items decide the ids of the step's instances, so they must be
// known before the run: the expression reads params and env only.
func (p *parser) forEach(cp *compiler, f pendingForEach) {
	n := resolve(f.node)
	path := f.dst.Path
	switch {
	case n.Kind == yaml.SequenceNode:
		raw, ok := p.c.anyValue(n, path)
		if !ok {
			return
		}
		list, _ := raw.([]any)
		if list == nil {
			list = []any{}
		}
		if hasTemplate(n) {
			p.c.add(n.Line, n.Column, path, "${{ }} inside a forEach list is not supported: write the whole list as one expression, forEach: ${{ … }}")
			return
		}
		f.dst.Literal = list
		return
	case n.Kind != yaml.ScalarNode || n.Tag != "!!str":
		p.c.add(n.Line, n.Column, path, "forEach must be a list or an expression giving one (e.g. ${{ params.zones }}), got %s", kindName(n))
		return
	}
	src, off := unwrapExpr(n.Value)
	base := scalarAt(n, p.lines)
	site := exprSite{path: path, stepIndex: f.stepIndex, forEach: true, at: func(o int) (int, int) { return base(o + off) }}
	prog, deps := cp.compile(src, site, nil)
	line, col := base(off)
	f.dst.Expr = &Expr{Source: src, Field: path, Pos: Pos{File: p.c.file, Line: line, Col: col}, Program: prog, deps: deps}
	if prog == nil {
		return
	}
	switch {
	case len(deps.steps) > 0 || deps.late:
		p.c.add(line, col, path, "forEach is decided before the run (its items name the steps): it may read params and env, not steps, run, now() or the cluster")
	case prog.Node().Type() != nil && !typeOK(prog.Node().Type(), reflect.TypeOf([]any{})):
		p.c.add(line, col, path, "forEach expression has type %s; it must give a list", describeType(prog.Node().Type()))
	}
}

// unwrapExpr strips one ${{ }} around a whole expression (guards and forEach accept
// both forms, as GitHub Actions' `if:` does) and returns the expression and its offset.
func unwrapExpr(src string) (string, int) {
	if t := strings.TrimSpace(src); strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		off := strings.Index(src, "${{") + 3
		return src[off:strings.LastIndex(src, "}}")], off
	}
	return src, 0
}

func (p *parser) with(cp *compiler, w pendingWith) *With {
	out := &With{Fields: map[string]*Field{}, Decl: w.decl}
	if w.node != nil {
		kvs, _ := p.c.mapping(w.node, w.path)
		for _, kv := range kvs {
			fpath := join(w.path, kv.key.Value)
			decl, ok := w.decl.Param(kv.key.Value)
			if !ok {
				p.c.add(kv.key.Line, kv.key.Column, fpath, "action %s has no parameter %q%s (it takes: %s)",
					w.decl.Name, kv.key.Value, suggest.Hint(kv.key.Value, w.decl.ParamNames()), strings.Join(w.decl.ParamNames(), ", "))
				continue
			}
			f := &Field{Name: decl.Name, Path: fpath, Present: true, Pos: Pos{File: p.c.file, Line: kv.value.Line, Col: kv.value.Column}}
			p.fieldValue(cp, w, f, decl, kv.value, fpath)
			out.Fields[decl.Name] = f
		}
	}
	for _, d := range w.decl.Params {
		if d.Required && out.Fields[d.Name] == nil {
			p.c.add(w.at.Line, w.at.Col, w.path, "action %s requires parameter %q", w.decl.Name, d.Name)
		}
	}
	return out
}

// fieldValue checks one with: value: a literal is coerced to the declared type now; a
// template is compiled, and a whole-expression template must have a compatible type.
func (p *parser) fieldValue(cp *compiler, w pendingWith, f *Field, decl decl.Param, n *yaml.Node, path string) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		parts, isTmpl, errOff, err := splitTemplate(n.Value)
		at := scalarAt(n, p.lines)
		if err != nil {
			line, col := at(errOff)
			p.c.add(line, col, path, "%v", err)
			return
		}
		if isTmpl {
			t := &Template{Source: n.Value}
			site := w.site
			site.path = path
			for _, rp := range parts {
				if !rp.isExpr {
					t.parts = append(t.parts, tmplPart{lit: rp.lit})
					continue
				}
				off := rp.offset
				site.at = func(o int) (int, int) { return at(off + o) }
				prog, deps := cp.compile(rp.expr, site, nil)
				line, col := at(off)
				t.parts = append(t.parts, tmplPart{expr: &Expr{Source: rp.expr, Field: path, Pos: Pos{File: p.c.file, Line: line, Col: col}, Program: prog, Steps: deps.steps, deps: deps}})
			}
			f.Tmpl = t
			if t.Whole() {
				if prog := t.parts[0].expr.Program; prog != nil {
					got := prog.Node().Type()
					if !typeOK(got, decl.Type.GoType()) && !(got != nil && got.Kind() == reflect.String && stringCoercible(decl.Type)) {
						p.c.add(n.Line, n.Column, path, "expression has type %s, but %s is a %s", describeType(got), decl.Name, decl.Type)
					}
				}
			} else if !stringCoercible(decl.Type) {
				p.c.add(n.Line, n.Column, path, "%s is a %s: interpolate the whole value as \"${{ expr }}\" instead of inside a string", decl.Name, decl.Type)
			}
			return
		}
	}
	if hasTemplate(n) {
		p.c.add(n.Line, n.Column, path, "${{ }} is only supported in scalar values; build the %s in the expression instead", decl.Type)
		return
	}
	raw, ok := p.c.anyValue(n, path)
	if !ok {
		return
	}
	v, err := decl.Resolve(raw, true)
	if err != nil {
		p.c.add(n.Line, n.Column, path, "%v", err)
		return
	}
	f.Literal = v
}

// stringCoercible types accept a rendered string, converted when the step runs.
func stringCoercible(t value.Type) bool {
	switch t {
	case value.String, value.CIDR, value.Duration, value.Int, value.Bool, value.Any:
		return true
	}
	return false
}

func hasTemplate(n *yaml.Node) bool {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "${{")
	}
	for _, c := range n.Content {
		if hasTemplate(c) {
			return true
		}
	}
	return false
}
