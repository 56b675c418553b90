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
	forEach   bool // the step's forEach expression itself (it defines item)
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
	remote map[string]bool // functions that read the cluster (no pure Impl)
	stepIx map[string]int
}

// exprDeps is what an expression reads besides its constants. It decides when the
// expression's value is known: at validate (params with defaults), once params are
// bound (params and env), or only when its step runs (steps, run, the cluster).
type exprDeps struct {
	steps     []string // ids of the steps read
	params    []string // params.<name> read by name
	allParams bool     // params read whole or by a computed key
	env       bool
	item      bool // the item of a forEach step
	late      bool // run, now() or a cluster function
	// loops: closures (map, filter, all, ...) or ranges (1..n), whose cost has no
	// bound the file's size sets. Such an expression is evaluated only by its step,
	// never ahead by validate (a 100-byte file must not keep it busy).
	loops bool
}

func newCompiler(c *collector, rb *Runbook, scope *Scope) *compiler {
	cp := &compiler{c: c, rb: rb, scope: scope, env: scope.typeEnv(), funcs: map[string]bool{}, remote: map[string]bool{}, stepIx: map[string]int{}}
	cp.env[meterVar] = (*evalMeter)(nil) // typed for meterPatch's calls; runBudgeted sets it
	for _, f := range scope.funcs {
		cp.funcs[f.Name] = true
		cp.remote[f.Name] = f.Impl == nil
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
// the expression has errors (already reported), and what the expression reads.
func (cp *compiler) compile(src string, site exprSite, want reflect.Type) (*vm.Program, exprDeps) {
	if strings.TrimSpace(src) == "" {
		line, col := site.at(0)
		cp.c.add(line, col, site.path, "empty expression")
		return nil, exprDeps{}
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		cp.reportExprErr(err, site)
		return nil, exprDeps{}
	}
	deps, ok := cp.checkRefs(tree, site)
	if !ok {
		return nil, deps
	}
	depth, at, reduceAt := closureDepth(tree.Node)
	if reduceAt >= 0 {
		line, col := site.at(reduceAt)
		cp.c.add(line, col, site.path, "expression: reduce() is not available (its accumulator can grow without bound): use sum, count, all, any, filter or map")
		return nil, deps
	}
	if depth > MaxClosureDepth {
		line, col := site.at(at)
		cp.c.add(line, col, site.path, "expression: closures nested %d deep (at most %d): their cost is the list size to the power of the depth", depth, MaxClosureDepth)
		return nil, deps
	}
	opts := append([]expr.Option{expr.Env(cp.env)}, budgetOptions()...)
	if want == reflect.TypeOf(false) {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		cp.reportExprErr(err, site)
		return nil, deps
	}
	return prog, deps
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
// It also returns what the expression reads.
func (cp *compiler) checkRefs(tree *exprparser.Tree, site exprSite) (exprDeps, bool) {
	v := &refVisitor{cp: cp, site: site, ok: true}
	ast.Walk(&tree.Node, v)
	// Every params.<name> has a params identifier under it; one more means params
	// is read whole (or by a computed key), so every param counts.
	v.deps.allParams = v.paramIdents > v.paramMembers
	return v.deps, v.ok
}

type refVisitor struct {
	cp   *compiler
	site exprSite
	ok   bool
	deps exprDeps
	// params identifiers, and those read as params.<name>
	paramIdents, paramMembers int
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
			v.paramMembers++
			if !slices.Contains(v.deps.params, prop.Value) {
				v.deps.params = append(v.deps.params, prop.Value)
			}
		case "steps":
			v.checkStep(prop.Value, off)
			if !slices.Contains(v.deps.steps, prop.Value) {
				v.deps.steps = append(v.deps.steps, prop.Value)
			}
		}
	case *ast.IdentifierNode:
		// A let variable of the same name counts too: too late, never too early.
		switch {
		case n.Value == "params":
			v.paramIdents++
		case n.Value == "env":
			v.deps.env = true
		case n.Value == itemVar:
			v.checkItem(n.Location().From)
			v.deps.item = true
		case n.Value == "run" || v.cp.remote[n.Value]:
			v.deps.late = true
		}
	case *ast.BuiltinNode:
		if n.Name == "now" {
			v.deps.late = true
		}
	case *ast.PredicateNode:
		v.deps.loops = true
	case *ast.BinaryNode:
		if n.Operator == ".." {
			v.deps.loops = true
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

// checkItem refuses item outside a step with forEach, and in the forEach itself.
func (v *refVisitor) checkItem(off int) {
	switch ix := v.site.stepIndex; {
	case v.site.forEach:
		v.fail(off, "forEach cannot read item: it makes the items")
	case ix < 0 || ix >= len(v.cp.rb.Steps) || v.cp.rb.Steps[ix].ForEach == nil:
		v.fail(off, "item is only defined in a step with forEach (the step's guards, with: and hooks read it)")
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
	if st.ForEach != nil && !(v.site.allowSelf && st.Index == v.site.stepIndex) {
		v.fail(prop.Location().From, "step %q has forEach: it has outputs per item, which later steps cannot read; read steps[%q].status (done when every item is) or .changed", st.ID, st.ID)
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
