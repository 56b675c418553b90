package runbooks

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Template is a string holding ${{ expr }} interpolations. A scalar that is exactly one
// ${{ }} keeps the expression's type (replicas: "${{ params.n }}" is an int); inside a
// longer string each expression is stringified. "$${{" writes a literal "${{".
type Template struct {
	Source string
	parts  []tmplPart
}

type tmplPart struct {
	lit  string
	expr *Expr
}

// Whole reports whether the template is a single expression that keeps its type.
func (t *Template) Whole() bool { return len(t.parts) == 1 && t.parts[0].expr != nil }

// Exprs returns the template's expressions.
func (t *Template) Exprs() []*Expr {
	var out []*Expr
	for _, p := range t.parts {
		if p.expr != nil {
			out = append(out, p.expr)
		}
	}
	return out
}

// Render evaluates the template in env.
func (t *Template) Render(ctx context.Context, env map[string]any) (any, error) {
	if t.Whole() {
		return run(ctx, t.parts[0].expr, env)
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := run(ctx, p.expr, env)
		if err != nil {
			return nil, err
		}
		b.WriteString(stringify(v))
	}
	return b.String(), nil
}

func run(ctx context.Context, e *Expr, env map[string]any) (any, error) {
	if e.Program == nil {
		return nil, fmt.Errorf("%s: expression %q was not compiled", e.Pos, e.Source)
	}
	v, err := runBudgeted(ctx, e, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", e.Pos, e.Field, err)
	}
	return v, nil
}

// Eval runs a guard expression and returns its boolean result.
func (e *Expr) Eval(ctx context.Context, env map[string]any) (bool, error) {
	v, err := run(ctx, e, env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: %s: expression returned %T, want bool", e.Pos, e.Field, v)
	}
	return b, nil
}

func stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Duration:
		return x.String()
	case nil:
		return ""
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map || rv.Kind() == reflect.Struct || rv.Kind() == reflect.Pointer {
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// splitTemplate finds the ${{ }} segments of s. It returns the literal and expression
// pieces with each expression's byte offset in s, or an error with the offset of an
// unterminated "${{". ok is false when s holds no interpolation at all.
type rawPart struct {
	lit    string
	expr   string
	offset int // of the expression text inside s
	isExpr bool
}

func splitTemplate(s string) (parts []rawPart, ok bool, errOff int, err error) {
	var lit strings.Builder
	i := 0
	for i < len(s) {
		if strings.HasPrefix(s[i:], "$${{") {
			lit.WriteString("${{")
			i += 4
			ok = true // an escape still makes this a template (the escape is removed)
			continue
		}
		if strings.HasPrefix(s[i:], "${{") {
			end := strings.Index(s[i+3:], "}}")
			if end < 0 {
				return nil, true, i, fmt.Errorf(`unterminated "${{": missing "}}"`)
			}
			if lit.Len() > 0 {
				parts = append(parts, rawPart{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, rawPart{expr: s[i+3 : i+3+end], offset: i + 3, isExpr: true})
			i += 3 + end + 2
			ok = true
			continue
		}
		lit.WriteByte(s[i])
		i++
	}
	if lit.Len() > 0 {
		parts = append(parts, rawPart{lit: lit.String()})
	}
	return parts, ok, 0, nil
}
