package runbooks

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/runbookdev/runbook/internal/suggest"
)

// exprSite says where an expression stands, for reference rules and error positions.
type exprSite struct {
	path      string
	stepIndex int  // index of the step the expression belongs to; -1 for none
	allowSelf bool // until/assert/hooks may read the step's own status and outputs
	// at maps an offset inside the expression text to a file position.
	at func(offset int) (line, col int)
}

// compiler compiles every expression of a runbook against its scope.
type compiler struct {
	c      *collector
	rb     *Runbook
	scope  *Scope
	env    map[string]any
	funcs  map[string]bool
	stepIx map[string]int
}

func newCompiler(c *collector, rb *Runbook, scope *Scope) *compiler {
	cp := &compiler{c: c, rb: rb, scope: scope, env: scope.typeEnv(), funcs: map[string]bool{}, stepIx: map[string]int{}}
	for _, f := range scope.funcs {
		cp.funcs[f.Name] = true
	}
	for _, s := range rb.Steps {
		if _, dup := cp.stepIx[s.ID]; !dup {
			cp.stepIx[s.ID] = s.Index
		}
	}
	return cp
}

// compile checks references with an AST pass, then type-checks and compiles. want, when
// non-nil, is the Go type the result must have (bool for guards). It returns nil when
// the expression has errors (already reported).
func (cp *compiler) compile(src string, site exprSite, want reflect.Type) (*vm.Program, []string) {
	if strings.TrimSpace(src) == "" {
		line, col := site.at(0)
		cp.c.add(line, col, site.path, "empty expression")
		return nil, nil
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		cp.reportExprErr(err, site)
		return nil, nil
	}
	refs, ok := cp.checkRefs(tree, site)
	if !ok {
		return nil, nil
	}
	opts := []expr.Option{expr.Env(cp.env)}
	if want == reflect.TypeOf(false) {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		cp.reportExprErr(err, site)
		return nil, nil
	}
	return prog, refs
}

func (cp *compiler) reportExprErr(err error, site exprSite) {
	var fe *file.Error
	msg := err.Error()
	off := 0
	if errors.As(err, &fe) {
		msg = strings.TrimSpace(fe.Message)
		off = fe.From
	}
	line, col := site.at(off)
	cp.c.add(line, col, site.path, "expression: %s", msg)
}

// checkRefs walks the AST for references the type checker cannot explain well:
// unknown params, unknown or later steps, unknown functions. It reports each with a
// position and a suggestion, and returns false when any was found.
// It also returns the ids of the steps the expression reads.
func (cp *compiler) checkRefs(tree *exprparser.Tree, site exprSite) ([]string, bool) {
	v := &refVisitor{cp: cp, site: site, ok: true}
	ast.Walk(&tree.Node, v)
	return v.steps, v.ok
}

type refVisitor struct {
	cp    *compiler
	site  exprSite
	ok    bool
	steps []string
}

func (v *refVisitor) fail(offset int, format string, args ...any) {
	line, col := v.site.at(offset)
	v.cp.c.add(line, col, v.site.path, format, args...)
	v.ok = false
}

func (v *refVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		prop, isStr := n.Property.(*ast.StringNode)
		if !isStr {
			return
		}
		v.checkStepMember(n, prop)
		root, ok := n.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		off := prop.Location().From
		switch root.Value {
		case "params":
			if _, known := v.cp.scope.paramField[prop.Value]; !known {
				v.fail(off, "unknown param %q%s", prop.Value, suggest.Hint(prop.Value, v.cp.rb.paramNames()))
			}
		case "steps":
			v.checkStep(prop.Value, off)
			if !slices.Contains(v.steps, prop.Value) {
				v.steps = append(v.steps, prop.Value)
			}
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || v.cp.funcs[id.Value] {
			return
		}
		names := make([]string, 0, len(v.cp.funcs))
		for f := range v.cp.funcs {
			names = append(names, f)
		}
		v.fail(id.Location().From, "unknown function %q%s", id.Value, suggest.Hint(id.Value, names))
	}
}

// checkStepMember checks steps.<id>.<field> and steps.<id>.outputs.<name> against
// the step view and the action's declared outputs.
func (v *refVisitor) checkStepMember(n *ast.MemberNode, prop *ast.StringNode) {
	inner, ok := n.Node.(*ast.MemberNode)
	if !ok {
		return
	}
	if idNode, ok := inner.Property.(*ast.StringNode); ok {
		if root, ok := inner.Node.(*ast.IdentifierNode); ok && root.Value == "steps" {
			if _, known := v.cp.stepIx[idNode.Value]; known {
				fields := []string{"status", "changed", "outputs"}
				if !slices.Contains(fields, prop.Value) {
					v.fail(prop.Location().From, "steps.%s has no field %q%s (it has: status, changed, outputs)", idNode.Value, prop.Value, suggest.Hint(prop.Value, fields))
				}
			}
			return
		}
	}
	// steps.<id>.outputs.<name>
	outputsProp, ok := inner.Property.(*ast.StringNode)
	if !ok || outputsProp.Value != "outputs" {
		return
	}
	stepMember, ok := inner.Node.(*ast.MemberNode)
	if !ok {
		return
	}
	root, ok := stepMember.Node.(*ast.IdentifierNode)
	idNode, isStr := stepMember.Property.(*ast.StringNode)
	if !ok || !isStr || root.Value != "steps" {
		return
	}
	st := v.cp.rb.StepByID(idNode.Value)
	if st == nil || st.Decl == nil {
		return
	}
	var names []string
	for _, o := range st.Decl.Outputs {
		if o.Name == prop.Value {
			return
		}
		names = append(names, o.Name)
	}
	v.fail(prop.Location().From, "action %s has no output %q%s (it has: %s)", st.Decl.Name, prop.Value, suggest.Hint(prop.Value, names), strings.Join(names, ", "))
}

func (v *refVisitor) checkStep(id string, off int) {
	ix, known := v.cp.stepIx[id]
	switch {
	case !known:
		ids := make([]string, 0, len(v.cp.stepIx))
		for s := range v.cp.stepIx {
			if strings.HasPrefix(s, id+"-") {
				// steps.add-new-pool parses as steps.add - new - pool.
				v.fail(off, "unknown step %q: a step id with dashes is written steps[%q]", id, s)
				return
			}
			ids = append(ids, s)
		}
		v.fail(off, "unknown step %q%s", id, suggest.Hint(id, ids))
	case v.site.stepIndex < 0:
		// Expressions outside steps may read any step.
	case ix == v.site.stepIndex && !v.site.allowSelf:
		v.fail(off, "step %q refers to itself; only until, assert and hooks may read the step's own status and outputs", id)
	case ix > v.site.stepIndex:
		v.fail(off, "step %q runs later (step %d); expressions may only refer to earlier steps", id, ix+1)
	}
}

// typeOK reports whether an expression result of type got can stand where a value of
// type want is expected. Interfaces are unknown until run time and accepted.
func typeOK(got, want reflect.Type) bool {
	if got == nil || want == nil || got.Kind() == reflect.Interface || want.Kind() == reflect.Interface {
		return true
	}
	if got.AssignableTo(want) {
		return true
	}
	// Lists and maps of any element type are lists and maps.
	return got.Kind() == want.Kind() && (got.Kind() == reflect.Slice || got.Kind() == reflect.Map)
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "unknown"
	}
	switch t.Kind() {
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	}
	return fmt.Sprint(t)
}
