// Package actions holds what a runbook step can do. Each action declares itself once
// (parameters, outputs, whether it is a point of no return, what its inverse does) and
// that declaration is the single source of truth for validation, the JSON Schema,
// `runbook actions` and `runbook explain`. Behaviour lives beside the declaration, one
// file per action.
package actions

import (
	"sort"

	"github.com/runbookdev/runbook/internal/value"
)

// Param declares one key of an action's `with:` block.
type Param struct {
	Name string
	value.Spec
}

// Output declares one value an action publishes as steps.<id>.outputs.<name>.
type Output struct {
	Name        string
	Type        value.Type
	Description string
}

// Decl is an action's declaration.
type Decl struct {
	Name    string
	Summary string // one line, shown by `runbook actions`
	// Description explains behaviour, idempotency (when the action is satisfied,
	// including for absent objects) and safety checks; shown by `runbook explain`.
	Description string
	Params      []Param
	Outputs     []Output
	// PointOfNoReturn marks destructive actions: rollback never crosses them and a TTY
	// run asks for confirmation first.
	PointOfNoReturn bool
	// Inverse describes what `rollback: auto` does; empty means the action has none.
	Inverse string
}

// Param returns the declared parameter called name.
func (d *Decl) Param(name string) (Param, bool) {
	for _, p := range d.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamNames lists the parameter names in declaration order.
func (d *Decl) ParamNames() []string {
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return names
}

// Registry is the set of known actions and guard functions.
type Registry struct {
	decls map[string]*Decl
	funcs map[string]*Func
}

// NewRegistry returns an empty registry; tests build their own, the CLI uses Default.
func NewRegistry() *Registry {
	return &Registry{decls: map[string]*Decl{}, funcs: map[string]*Func{}}
}

// Add registers an action declaration; a duplicate name is a programming error.
func (r *Registry) Add(d *Decl) {
	if _, dup := r.decls[d.Name]; dup {
		panic("actions: duplicate action " + d.Name)
	}
	r.decls[d.Name] = d
}

// AddFunc registers a guard function.
func (r *Registry) AddFunc(f *Func) {
	if _, dup := r.funcs[f.Name]; dup {
		panic("actions: duplicate function " + f.Name)
	}
	r.funcs[f.Name] = f
}

// Action returns the declaration of the action called name.
func (r *Registry) Action(name string) (*Decl, bool) {
	d, ok := r.decls[name]
	return d, ok
}

// Actions lists all declarations sorted by name.
func (r *Registry) Actions() []*Decl {
	out := make([]*Decl, 0, len(r.decls))
	for _, d := range r.decls {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Funcs lists all guard functions sorted by name.
func (r *Registry) Funcs() []*Func {
	out := make([]*Func, 0, len(r.funcs))
	for _, f := range r.funcs {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Default is the registry of the built-in actions and functions.
var Default = func() *Registry {
	r := NewRegistry()
	for _, d := range builtinDecls() {
		r.Add(d)
	}
	for _, f := range builtinFuncs() {
		r.AddFunc(f)
	}
	return r
}()

func builtinDecls() []*Decl {
	return []*Decl{ensurePoolDecl, disablePoolDecl, deletePodsInPoolDecl, assertNewAllocationsDecl, deletePoolDecl, pauseDecl}
}

// p is shorthand for declaring parameters compactly in the action files.
func p(name string, t value.Type, required bool, def any, desc string, enum ...any) Param {
	return Param{Name: name, Spec: value.Spec{Type: t, Required: required, Default: def, Enum: enum, Description: desc}}
}
