// Package runbooks is the runbook language: it parses a runbook file (yaml.v3 nodes, so
// every error names file:line:col and the field path), merges params from defaults,
// values files and --set, and validates everything that can be checked before a cluster
// is touched — fields, types, actions and their parameters, step references, and every
// expression compiled against its typed environment. The result is a *Runbook the
// planner and engine execute; nothing here talks to a cluster.
package runbooks

import (
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
)

// APIVersion and Kind identify a runbook file.
const (
	APIVersion = "runbook/v1alpha1"
	Kind       = "Runbook"
)

// FailurePolicy says what happens when a step fails.
type FailurePolicy string

const (
	// Rollback runs the rollback hooks of completed steps in reverse order, never
	// across a point of no return.
	Rollback FailurePolicy = "rollback"
	// Stop leaves everything as it is for a human (and `runbook rollback` later).
	Stop FailurePolicy = "stop"
)

// RollbackMode is a step's rollback setting.
type RollbackMode string

const (
	RollbackNone     RollbackMode = "none"     // nothing to undo (the default)
	RollbackAuto     RollbackMode = "auto"     // the action's declared inverse
	RollbackExplicit RollbackMode = "explicit" // the hooks listed under rollback:
)

// Runbook is a parsed and validated runbook file.
type Runbook struct {
	File        string
	Source      []byte // the file as read, for the digest
	Name        string
	Description string
	Labels      map[string]string
	OnFailure   FailurePolicy
	Params      []*Param
	// Steps are the steps in order. A step with forEach stands for its items: Expand
	// replaces it with one instance per item (ids derived from it), so the engine,
	// the journal and the plan only ever see plain steps.
	Steps []*Step
	Pos   Pos
	scope *Scope
	// groups maps the id of a forEach step to its instances' ids, once expanded:
	// expressions name the group (steps.<id>), never an instance.
	groups map[string][]string
}

// Env builds the expression environment of this runbook for one evaluation.
func (rb *Runbook) Env(b Bindings) (map[string]any, error) {
	env, err := rb.scope.Env(rb.groupBindings(b))
	if err == nil && b.Step != nil && b.Step.Group != "" {
		env[itemHolder] = forEachItem{Item: b.Step.Item}
	}
	return env, err
}

// Param is a declared runbook parameter.
type Param struct {
	Name string
	value.Spec
	Pos Pos
}

// Step is one step of a runbook.
type Step struct {
	Index     int
	ID        string
	Name      string
	Action    string
	Decl      *decl.Action
	With      *With
	When      *Expr // skip the step when false
	Require   *Expr // precondition: fail with nothing changed when false
	Until     *Expr // after apply, wait until true (re-evaluated on cache changes)
	Assert    *Expr // postcondition
	Timeout   time.Duration
	OnFailure FailurePolicy // empty: the runbook's
	Rollback  RollbackMode
	// RollbackHooks and CleanupHooks are explicit hooks; cleanup hooks run on success,
	// failure and interrupt alike.
	RollbackHooks []*Hook
	CleanupHooks  []*Hook
	Pos           Pos

	// ForEach repeats the step once per item of a list (Argo's withItems, Ansible's
	// loop); its guards, with: values and hooks read the item as `item`.
	ForEach *ForEach
	// Group and Item are set on an instance of a forEach step (Expand): the step's id
	// as written, and the item this instance runs for.
	Group string
	Item  any
}

// ForEach is a step's forEach: a literal list or a ${{ }} expression over params and
// env (the items must be known before the run: they decide the steps' ids).
type ForEach struct {
	Literal []any
	Expr    *Expr
	Path    string
	Pos     Pos
}

// EffectiveOnFailure resolves the step's failure policy against the runbook's.
func (s *Step) EffectiveOnFailure(rb *Runbook) FailurePolicy {
	if s.OnFailure != "" {
		return s.OnFailure
	}
	return rb.OnFailure
}

// Hook is an action run as a rollback or cleanup hook of a step.
type Hook struct {
	Action string
	Decl   *decl.Action
	With   *With
	Pos    Pos
}

// With is a validated `with:` block: each declared parameter either holds a canonical
// literal or a template rendered when the step runs (it may depend on earlier steps).
type With struct {
	Fields map[string]*Field
	Decl   *decl.Action
}

// Field is one `with:` entry.
type Field struct {
	Name    string
	Literal any       // canonical literal when Tmpl is nil and Present
	Tmpl    *Template // interpolated value, rendered at run time
	Present bool      // given in the file (else the declared default applies)
	Path    string    // field path for errors, e.g. steps[2].with.blockSize
	Pos     Pos
}

// Expr is a compiled guard expression.
type Expr struct {
	Source  string
	Field   string // when, require, until, assert, or the with: path of a template
	Pos     Pos
	Program *vm.Program
	Steps   []string // ids of the steps the expression reads
	deps    exprDeps // all it reads: when its value is known
}

// StepByID returns the step with the given id.
func (rb *Runbook) StepByID(id string) *Step {
	for _, s := range rb.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// Param returns the declared param called name.
func (rb *Runbook) Param(name string) *Param {
	for _, p := range rb.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (rb *Runbook) paramNames() []string {
	out := make([]string, len(rb.Params))
	for i, p := range rb.Params {
		out[i] = p.Name
	}
	return out
}
