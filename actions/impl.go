package actions

import (
	"context"
	"errors"
	"time"

	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/poolsahead"
	"github.com/runbookdev/runbook/internal/preflight"
)

// Call is one execution of an action by the engine.
type Call struct {
	RunID  string
	StepID string
	With   map[string]any // rendered and typed parameters, defaults applied
	// Given is the set of parameters the step writes; the others in With are
	// declared defaults. nil means unknown: every parameter counts as given.
	Given map[string]bool
	// Prior is what earlier attempts of this step recorded (a resumed run): intents
	// written before creating things, and the objects created.
	Prior Record
	// Recorder persists intents and created objects in the run journal before the
	// action acts on them, so a crash between "decide" and "do" is recoverable.
	// Every write is fenced by the run's lock.
	Recorder Recorder
	// Deadline, when not zero, is --deadline: long actions stop cleanly at the next
	// safe point (between batches) once it has passed and return ErrDeadline; the run
	// then ends resumable.
	Deadline time.Time
	// Ahead, set by plan only, is the pools as the earlier steps leave them: a
	// planner judges its step against that (Ahead.Client overlays it on what it
	// reads), and says which earlier step made a pool what it is. nil at apply,
	// which always acts on the live cluster.
	Ahead *poolsahead.Model
}

// IsGiven reports whether the step wrote parameter name (not its default).
func (c *Call) IsGiven(name string) bool { return c.Given == nil || c.Given[name] }

// Record is what the journal remembers of a step for its action.
type Record struct {
	Intent  map[string]string `json:"intent,omitempty"`
	Created []ObjectRef       `json:"created,omitempty"`
}

// ObjectRef names an object an action created.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// Recorder writes to the run journal; every write is fenced by the run's lock.
type Recorder interface {
	Intent(ctx context.Context, key, value string) error
	Created(ctx context.Context, ref ObjectRef) error
}

// Outcome is what an action did.
type Outcome struct {
	Changed bool
	Outputs map[string]any
	Message string // one line for the report, e.g. "created pool new-pool"
}

// Impl is an action's behaviour. Apply observes the cluster and converges it:
// when the desired state already holds it changes nothing and says so (Changed
// false), which is what makes re-running a finished runbook a no-op.
type Impl interface {
	Apply(ctx context.Context, c *Call) (Outcome, error)
}

// Inverter is implemented by actions with an inverse (rollback: auto). An inverse
// that finds its object in use keeps it and says so in Kept: that is not a failure.
type Inverter interface {
	Invert(ctx context.Context, c *Call) (InverseOutcome, error)
}

// InverseOutcome is what an inverse did.
type InverseOutcome struct {
	Changed bool
	Kept    string // why the object was kept, when it was
	Message string
}

// Cleaner is implemented by actions whose temporary objects must go whatever
// happens (success, failure, interrupt, or on resume after a crash).
type Cleaner interface {
	Cleanup(ctx context.Context, c *Call) error
}

// Planner is implemented by actions that can tell, read-only, what Apply would do.
// Plan runs the action's own validation too (server-side dry-run alone proves little
// for Calico pools), so a plan that passes has already checked what Apply checks.
type Planner interface {
	Plan(ctx context.Context, c *Call) (Planned, error)
}

// Planned is an action's read-only verdict.
type Planned struct {
	// Change is plans.None (already satisfied), Create, Update, Delete, Unknown
	// (decided at apply time) or Check (a verification that changes nothing lasting).
	Change  plans.Change
	Details []string // human lines: what would change and why
	// Warnings are findings that do not block (e.g. tunnel addresses will move).
	Warnings []string
	// Facts are the observations the plan depends on (e.g. "pool new-pool: absent");
	// apply --plan refuses when they changed since.
	Facts []string
	// Findings are preflight findings only this action can make; the plan lists
	// them with the cluster-level ones (internal/preflight), and a blocking one
	// refuses the plan.
	Findings []preflight.Finding
}

// ErrDeadline is returned by an action that stopped at a safe point because the
// run's --deadline passed.
var ErrDeadline = errors.New("stopped at the deadline")

// ErrNoCluster is every cluster action's reason when the command runs without
// a cluster connection (validate, or a kubeconfig that did not load): one
// sentence everywhere, so a reader sees one cause, not several.
var ErrNoCluster = errors.New("no cluster connection")

// ErrAwaitApproval is returned by an action that waits for a human approval; the
// engine ends the invocation with a resumable state instead of failing.
var ErrAwaitApproval = errors.New("waiting for approval")
