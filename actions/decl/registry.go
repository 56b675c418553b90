package decl

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Registry is the set of known actions and guard functions.
type Registry struct {
	decls map[string]*Action
	funcs map[string]*Func
}

// NewRegistry returns an empty registry; tests build their own, the CLI uses
// actions.Default.
func NewRegistry() *Registry {
	return &Registry{decls: map[string]*Action{}, funcs: map[string]*Func{}}
}

// Add registers an action declaration; a duplicate name is a programming error.
func (r *Registry) Add(d *Action) {
	if _, dup := r.decls[d.Name]; dup {
		panic("decl: duplicate action " + d.Name)
	}
	r.decls[d.Name] = d
}

// AddFunc registers a guard function.
func (r *Registry) AddFunc(f *Func) {
	if _, dup := r.funcs[f.Name]; dup {
		panic("decl: duplicate function " + f.Name)
	}
	r.funcs[f.Name] = f
}

// Action returns the declaration of the action called name.
func (r *Registry) Action(name string) (*Action, bool) {
	d, ok := r.decls[name]
	return d, ok
}

// Actions lists all declarations sorted by name.
func (r *Registry) Actions() []*Action {
	return slices.SortedFunc(maps.Values(r.decls), func(a, b *Action) int { return strings.Compare(a.Name, b.Name) })
}

// Funcs lists all guard functions sorted by name.
func (r *Registry) Funcs() []*Func {
	return slices.SortedFunc(maps.Values(r.funcs), func(a, b *Func) int { return strings.Compare(a.Name, b.Name) })
}

// Func declares a function guards may call. Proto is a (typically nil) value of the
// function's Go type: expressions are type-checked against it at validate time, and the
// engine binds an implementation of the same type at run time. Cluster functions read
// the engine's shared informer cache, so re-evaluating a guard costs no API calls.
type Func struct {
	Name        string
	Signature   string // as documented, e.g. "pool(name string) Pool"
	Description string
	Proto       any
	// Pure functions need no cluster; Impl is then used everywhere, including validate.
	Impl any
}

// Type is the Go type of the function.
func (f *Func) Type() reflect.Type { return reflect.TypeOf(f.Proto) }
