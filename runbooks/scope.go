package runbooks

import (
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr/ast"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
)

// StepResult is what expressions see of a step as steps.<id>.
type StepResult struct {
	Status  string         // pending, running, done, skipped, failed, rolledBack
	Changed bool           // whether the step changed the cluster
	Outputs map[string]any // declared outputs, canonical values
}

// RunInfo is what expressions see as run.
type RunInfo struct {
	ID        string    `expr:"id"`
	StartedAt time.Time `expr:"startedAt"`
}

// Scope is the typed environment of a runbook's expressions. Params, steps and their
// outputs become Go struct types built with reflection, so the expression checker
// rejects `params.replicas + "x"` or `steps.verify.outputs.nope` at validate time, and
// the engine binds values of exactly those types at run time (compile once, run many).
type Scope struct {
	params     reflect.Type
	paramField map[string]int
	paramTypes map[string]value.Type
	steps      reflect.Type
	stepField  map[string]int
	funcs      []*decl.Func
}

func newScope(rb *Runbook, reg *decl.Registry) *Scope {
	s := &Scope{paramField: map[string]int{}, paramTypes: map[string]value.Type{}, stepField: map[string]int{}, funcs: reg.Funcs()}
	var pf []reflect.StructField
	for _, p := range rb.Params {
		if _, dup := s.paramField[p.Name]; dup || !identRe.MatchString(p.Name) {
			continue // reported by the parser
		}
		s.paramField[p.Name] = len(pf)
		s.paramTypes[p.Name] = p.Type
		pf = append(pf, field(len(pf), p.Type.GoType(), p.Name))
	}
	s.params = reflect.StructOf(pf)
	var sf []reflect.StructField
	for _, st := range rb.Steps {
		if _, dup := s.stepField[st.ID]; dup || st.ID == "" {
			continue
		}
		var of []reflect.StructField
		if st.Decl != nil {
			for _, o := range st.Decl.Outputs {
				of = append(of, field(len(of), o.Type.GoType(), o.Name))
			}
		}
		view := reflect.StructOf([]reflect.StructField{
			field(0, reflect.TypeOf(""), "status"),
			field(1, reflect.TypeOf(false), "changed"),
			field(2, reflect.StructOf(of), "outputs"),
		})
		s.stepField[st.ID] = len(sf)
		sf = append(sf, field(len(sf), view, st.ID))
	}
	s.steps = reflect.StructOf(sf)
	return s
}

func field(i int, t reflect.Type, name string) reflect.StructField {
	return reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: t, Tag: reflect.StructTag(fmt.Sprintf("expr:%q", name))}
}

// typeEnv is the environment expressions are compiled against: zero values of the
// right types, and each function's prototype (or its pure implementation).
func (s *Scope) typeEnv() map[string]any {
	env := map[string]any{
		"params":   reflect.New(s.params).Elem().Interface(),
		"env":      "",
		"steps":    reflect.New(s.steps).Elem().Interface(),
		"run":      RunInfo{},
		itemHolder: forEachItem{},
	}
	for _, f := range s.funcs {
		if f.Impl != nil {
			env[f.Name] = f.Impl
		} else {
			env[f.Name] = f.Proto
		}
	}
	return env
}

// itemVar is the name a forEach step's expressions read their item by.
const itemVar = "item"

// itemHolder holds the item: an entry of expr's map environment has the type of
// its value, so a nil or boxed item would type as nil or as one concrete type. A
// struct field of type any is what expr checks as "any type" (as it does an
// element of a list param): itemPatch compiles item as itemHolder.item, and an
// item's use (item.name, item == "a") is checked at run time.
const itemHolder = "__runbook_foreach"

type forEachItem struct {
	Item any `expr:"item"`
}

// itemPatch rewrites the identifier item to itemHolder.item (refVisitor has checked
// that the step has forEach).
type itemPatch struct{}

func (itemPatch) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == itemVar {
		ast.Patch(node, &ast.MemberNode{Node: &ast.IdentifierNode{Value: itemHolder}, Property: &ast.StringNode{Value: itemVar}})
	}
}

// Bindings are the run-time values of an expression environment.
type Bindings struct {
	// Step is the step whose expressions are evaluated (nil outside a step): an
	// instance of a forEach step binds its item, and reads its group as itself.
	Step   *Step
	Params map[string]any // canonical, as returned by ResolveParams
	Env    string         // the environment's name (never the process environment)
	Run    RunInfo
	Steps  map[string]StepResult
	// Funcs are implementations of the cluster functions, by name; a missing one
	// fails the expression that calls it with a clear error.
	Funcs map[string]any
}

// Env builds the environment to run compiled expressions with.
func (s *Scope) Env(b Bindings) (map[string]any, error) {
	pv := reflect.New(s.params).Elem()
	for name, i := range s.paramField {
		v, ok := b.Params[name]
		if !ok || v == nil {
			continue
		}
		rv := reflect.ValueOf(v)
		if !rv.Type().AssignableTo(pv.Field(i).Type()) {
			return nil, fmt.Errorf("param %s: value of type %T does not fit %s", name, v, s.paramTypes[name])
		}
		pv.Field(i).Set(rv)
	}
	sv := reflect.New(s.steps).Elem()
	for id, i := range s.stepField {
		r, ok := b.Steps[id]
		if !ok {
			r = StepResult{Status: "pending"}
		}
		view := sv.Field(i)
		view.Field(0).SetString(r.Status)
		view.Field(1).SetBool(r.Changed)
		outs := view.Field(2)
		for j := 0; j < outs.NumField(); j++ {
			name := outs.Type().Field(j).Tag.Get("expr")
			v, ok := r.Outputs[name]
			if !ok || v == nil {
				continue
			}
			rv := reflect.ValueOf(v)
			if !rv.Type().AssignableTo(outs.Field(j).Type()) {
				return nil, fmt.Errorf("steps.%s.outputs.%s: value of type %T does not fit", id, name, v)
			}
			outs.Field(j).Set(rv)
		}
	}
	env := map[string]any{"params": pv.Interface(), "env": b.Env, "steps": sv.Interface(), "run": b.Run, itemHolder: forEachItem{}}
	for _, f := range s.funcs {
		switch impl := b.Funcs[f.Name]; {
		case f.Impl != nil:
			env[f.Name] = f.Impl
		case impl != nil:
			if reflect.TypeOf(impl) != f.Type() {
				return nil, fmt.Errorf("function %s: implementation has type %T, want %s", f.Name, impl, f.Type())
			}
			env[f.Name] = impl
		default:
			env[f.Name] = unavailable(f)
		}
	}
	return env, nil
}

// unavailable returns a function of f's type that fails, so an expression calling a
// cluster function where no cluster is bound (validate) says so instead of panicking.
func unavailable(f *decl.Func) any {
	t := f.Type()
	return reflect.MakeFunc(t, func([]reflect.Value) []reflect.Value {
		panic(fmt.Errorf("%s needs a cluster connection", f.Name))
	}).Interface()
}
