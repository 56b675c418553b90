package actions

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions/decl"
)

// TestBuiltinsAreComplete: an action is its file plus one line in builtins.
// What a developer can forget fails here: the line in builtins (a Definition
// declared in the package but not listed), the constructor, the declaration's
// texts, its Needs, an inverse described but not implemented (or the reverse),
// a pool parameter without its role.
func TestBuiltinsAreComplete(t *testing.T) {
	listed := map[string]bool{}
	for _, d := range builtins {
		if d.Decl == nil {
			t.Fatalf("builtins: a Definition without Decl")
		}
		name := d.Decl.Name
		listed[name] = true
		switch {
		case d.New == nil:
			t.Errorf("action %s: no constructor (New)", name)
		case d.Decl.Summary == "" || d.Decl.Description == "":
			t.Errorf("action %s: no Summary or Description", name)
		case d.Decl.Needs == nil:
			t.Errorf("action %s: no Needs (declare an empty list when it calls no API)", name)
		}
		if d.New != nil {
			impl := d.New(&binding{env: &poolEnv{}})
			if _, ok := impl.(Inverter); ok != (d.Decl.Inverse != "") {
				t.Errorf("action %s: Inverse %q but implements Inverter = %v", name, d.Decl.Inverse, ok)
			}
			if _, ok := impl.(Planner); !ok {
				t.Errorf("action %s: implements no Plan (plan could not say what it would do)", name)
			}
			if c, ok := impl.(interface{ close() }); ok {
				c.close()
			}
		}
		for _, p := range d.Decl.Params {
			if p.Description == "" {
				t.Errorf("action %s: parameter %s has no description", name, p.Name)
			}
			if p.Pool != "" && !slices.Contains(decl.PoolRoles, p.Pool) {
				t.Errorf("action %s: parameter %s: unknown pool role %q", name, p.Name, p.Pool)
			}
			// A parameter naming a pool is checked as a pool name; one so
			// described must say what the step does to that pool.
			if strings.Contains(strings.ToLower(p.Description), "pool") && p.Type == "string" && p.Check != nil && p.Pool == "" && isPoolName(p.Name) {
				t.Errorf("action %s: parameter %s names a pool but declares no role", name, p.Name)
			}
		}
	}
	for _, v := range definitionVars(t) {
		if _, ok := Default.Action(v.action); !ok || !listed[v.action] {
			t.Errorf("%s: Definition %s (action %q) is not listed in builtins (actions/registry.go)", v.pos, v.ident, v.action)
		}
	}
}

func isPoolName(param string) bool {
	return param == "name" || strings.HasSuffix(strings.ToLower(param), "pool")
}

type definitionVar struct {
	pos, ident, action string
}

// definitionVars finds the package's `var x = Definition{Decl: &decl.Action{Name: "…"}}`
// declarations in its source, so one left out of builtins is named.
func definitionVars(t *testing.T) []definitionVar {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []definitionVar
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					cl, ok := v.(*ast.CompositeLit)
					if !ok {
						continue
					}
					if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "Definition" {
						continue
					}
					out = append(out, definitionVar{pos: fset.Position(cl.Pos()).String(), ident: vs.Names[i].Name, action: actionName(cl)})
				}
			}
		}
	}
	if len(out) < len(builtins) {
		t.Fatalf("found %d Definition declarations in the source, fewer than the %d builtins: the scan is broken", len(out), len(builtins))
	}
	return out
}

// actionName is the Name field of the literal's Decl, "" when not a literal.
func actionName(cl *ast.CompositeLit) string {
	for _, el := range cl.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok || kv.Key.(*ast.Ident).Name != "Decl" {
			continue
		}
		u, ok := kv.Value.(*ast.UnaryExpr)
		if !ok {
			return ""
		}
		inner, ok := u.X.(*ast.CompositeLit)
		if !ok {
			return ""
		}
		for _, f := range inner.Elts {
			if kv, ok := f.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Name" {
				if lit, ok := kv.Value.(*ast.BasicLit); ok {
					return strings.Trim(lit.Value, `"`)
				}
			}
		}
	}
	return ""
}
