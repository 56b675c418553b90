package runbooks

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// What one guard or template expression may cost (issue #15 item 3: a 60-byte
// guard exhausted memory, three nested all() over 2,000 items spun for minutes
// while the lock renewed). A runbook is reviewed code, but it is also a file a
// pipeline runs as a privileged identity: its expressions get a budget.
const (
	// MaxExprNodes bounds an expression's size after parsing.
	MaxExprNodes = 2000
	// MaxClosureDepth bounds nested closures (all, any, map, filter, ...): their
	// cost is the list size to the power of the depth, so two (a pair of lists
	// compared) is the most a guard needs.
	MaxClosureDepth = 2
	// EvalBudget bounds one evaluation's wall time. Exceeding it is an error
	// naming the step and field; the run's context ends an evaluation sooner.
	EvalBudget = 10 * time.Second
)

// MaxEvalBytes bounds the strings one evaluation builds with repeat() and +.
const MaxEvalBytes = 1 << 20

// meterVar is the env entry through which repeat() and string + charge the
// evaluation's meter (set by runBudgeted; the patch below passes it).
const meterVar = "__runbook_meter"

// evalMeter counts the bytes one evaluation has built.
type evalMeter struct{ used int }

func (m *evalMeter) charge(what string, n int) error {
	if m == nil {
		return nil
	}
	if m.used += n; m.used > MaxEvalBytes {
		return fmt.Errorf("%s: the expression built %d bytes of strings, over its budget of %d", what, m.used, MaxEvalBytes)
	}
	return nil
}

// budgetOptions keep an expression's allocations bounded. expr's vm counts
// ranges and arrays against its own memory budget, but its repeat() counts a
// string only after allocating it (a nested repeat exhausts the process first)
// and + not at all: both are replaced by versions that charge the evaluation's
// meter before they allocate. reduce() is not offered: its accumulator can
// double an item per element, which nothing counts.
func budgetOptions() []expr.Option {
	return []expr.Option{
		expr.MaxNodes(MaxExprNodes),
		expr.DisableBuiltin("repeat"),
		expr.DisableBuiltin("reduce"),
		expr.Function("repeat", meteredRepeat, new(func(*evalMeter, string, int) string)),
		expr.Function(concatFunc, meteredConcat, new(func(*evalMeter, string, string) string)),
		expr.Patch(&meterPatch{}),
		expr.Patch(itemPatch{}),
	}
}

// concatFunc is what string + string compiles to.
const concatFunc = "__runbook_concat"

func meteredRepeat(args ...any) (any, error) {
	m, _ := args[0].(*evalMeter)
	s, _ := args[1].(string)
	n, _ := args[2].(int)
	if n < 0 {
		return nil, fmt.Errorf("repeat: negative count %d", n)
	}
	if n > 0 && len(s) > MaxEvalBytes/n {
		return nil, fmt.Errorf("repeat: %d times a string of %d bytes is over the expression's budget of %d bytes", n, len(s), MaxEvalBytes)
	}
	if err := m.charge("repeat", len(s)*n); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

func meteredConcat(args ...any) (any, error) {
	m, _ := args[0].(*evalMeter)
	a, _ := args[1].(string)
	b, _ := args[2].(string)
	if err := m.charge("+", len(a)+len(b)); err != nil {
		return nil, err
	}
	return a + b, nil
}

// meterPatch passes the meter to repeat() and turns string + string into the
// metered concatenation. Type information is there (expr type-checks before each
// pass), but a + of repeat() results is typed only once repeat is patched: the
// patch repeats until a pass changes nothing.
type meterPatch struct{ changed bool }

func (p *meterPatch) Reset()             { p.changed = false }
func (p *meterPatch) ShouldRepeat() bool { return p.changed }

func (p *meterPatch) Visit(node *ast.Node) {
	meter := func() ast.Node { return &ast.IdentifierNode{Value: meterVar} }
	switch n := (*node).(type) {
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "repeat" {
			return
		}
		if len(n.Arguments) > 0 {
			if a, ok := n.Arguments[0].(*ast.IdentifierNode); ok && a.Value == meterVar {
				return // patched already
			}
		}
		n.Arguments = append([]ast.Node{meter()}, n.Arguments...)
		p.changed = true
	case *ast.BinaryNode:
		if n.Operator == "+" && isString(n.Left) && isString(n.Right) {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: concatFunc}, Arguments: []ast.Node{meter(), n.Left, n.Right}})
			p.changed = true
		}
	}
}

func isString(n ast.Node) bool { t := n.Type(); return t != nil && t.Kind() == reflect.String }

// closureDepth is how deeply closures nest in tree, and the offset of the
// deepest one; reduceAt is the offset of a reduce() call, or -1.
func closureDepth(tree ast.Node) (depth, at, reduceAt int) {
	d := &depthVisitor{depth: map[*ast.PredicateNode]int{}, reduceAt: -1}
	ast.Walk(&tree, d)
	return d.max, d.at, d.reduceAt
}

type depthVisitor struct {
	depth    map[*ast.PredicateNode]int
	max, at  int
	reduceAt int
}

// Visit sees children before parents (ast.Walk is post-order), so a closure's
// nested closures have their depth when it is visited.
func (d *depthVisitor) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BuiltinNode); ok && b.Name == "reduce" {
		d.reduceAt = b.Location().From
	}
	p, ok := (*node).(*ast.PredicateNode)
	if !ok {
		return
	}
	inner := &innerVisitor{depth: d.depth}
	ast.Walk(&p.Node, inner)
	d.depth[p] = inner.max + 1
	if d.depth[p] > d.max {
		d.max, d.at = d.depth[p], p.Location().From
	}
}

type innerVisitor struct {
	depth map[*ast.PredicateNode]int
	max   int
}

func (v *innerVisitor) Visit(node *ast.Node) {
	if p, ok := (*node).(*ast.PredicateNode); ok && v.depth[p] > v.max {
		v.max = v.depth[p]
	}
}

// runBudgeted runs the compiled expression within EvalBudget and ctx. An
// evaluation past its budget cannot be stopped inside expr's vm; it is abandoned
// (the closure-depth and size limits bound how long it can go on) and the caller
// gets an error at once.
func runBudgeted(ctx context.Context, e *Expr, env map[string]any) (any, error) {
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	metered := make(map[string]any, len(env)+1)
	for k, v := range env {
		metered[k] = v
	}
	metered[meterVar] = &evalMeter{}
	go func() {
		v, err := expr.Run(e.Program, metered)
		done <- result{v, err}
	}()
	t := time.NewTimer(EvalBudget)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		return nil, fmt.Errorf("evaluation took longer than its budget of %v: simplify the expression", EvalBudget)
	case <-ctx.Done():
		return nil, fmt.Errorf("evaluation stopped: %w", context.Cause(ctx))
	}
}
