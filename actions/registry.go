package actions

import (
	"context"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
)

// Definition is one action: its declaration and the constructor of its
// behaviour, written together in the action's file.
type Definition struct {
	Decl *decl.Action
	// New builds the action's behaviour for one cluster connection (Bind).
	New func(*binding) Impl
}

// builtins are the actions runbooks can use. Adding an action is its file and
// one line here; TestBuiltinsAreComplete fails for a Definition in the package
// that is not listed, or one whose declaration or behaviour is incomplete.
var builtins = []Definition{
	pause,
	ensurePool,
	disablePool,
	deletePodsInPool,
	moveTunnelAddresses,
	assertNewAllocations,
	releaseLeakedAddresses,
	deletePool,
	waitForPods,
}

// binding is what an action's constructor gets from Bind.
type binding struct {
	ctx     context.Context // bounds informers the action starts
	env     *poolEnv
	cluster *Cluster // nil without a cluster connection
}

// Default is the registry of the built-in actions and functions.
var Default = func() *decl.Registry {
	r := decl.NewRegistry()
	for _, d := range builtins {
		r.Add(d.Decl)
	}
	for _, f := range builtinFuncs() {
		r.AddFunc(f)
	}
	return r
}()

// checked gives a declared parameter a value rule beyond its type
// (internal/value/check): value.Spec.Resolve then refuses a value that breaks it
// wherever the value becomes known (a literal at validate, a param bound from
// -f/--set before plan or apply touch the cluster, a template when its step runs).
func checked(pr decl.Param, rule value.Check) decl.Param {
	pr.Check = rule
	return pr
}

// p is shorthand for declaring parameters compactly in the action files.
func p(name string, t value.Type, required bool, def any, desc string, enum ...any) decl.Param {
	return decl.Param{Name: name, Spec: value.Spec{Type: t, Required: required, Default: def, Enum: enum, Description: desc}}
}

// poolRole marks a parameter as naming a pool the step acts on as role says.
func poolRole(pr decl.Param, role decl.PoolRole) decl.Param {
	pr.Pool = role
	return pr
}
