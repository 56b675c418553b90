package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/utils/clock"

	"github.com/runbookdev/runbook/runbooks"
)

// guardMode is when a guard is decided. Plan and apply share one evaluator so a
// guard cannot mean one thing in the reviewed plan and another in the run; the
// mode carries the only legitimate difference: what is known yet.
type guardMode int

const (
	// applyMode decides against the state the run has reached: every value is known.
	applyMode guardMode = iota
	// planMode decides ahead of apply, read-only: a guard whose value depends on
	// what earlier steps (or the step itself) will do is deferred, not guessed.
	planMode
)

// guardKind is one of a step's guards, in lifecycle order.
type guardKind int

const (
	guardWhen    guardKind = iota // before acting: skip the step when false
	guardRequire                  // before acting: refuse the step, nothing changed, when false
	guardUntil                    // after acting: wait until true, up to the step's timeout
	guardAssert                   // after acting: fail the step when false
)

// beforeAction: only these are decided when the step begins, so only these a
// resumed step has decided already.
func (k guardKind) beforeAction() bool { return k == guardWhen || k == guardRequire }

// guardOutcome is what a guard decided for its step.
type guardOutcome int

const (
	guardPass     guardOutcome = iota // true, absent, or not decided again: the step goes on
	guardFalse                        // when: skip the step; require, until, assert: it fails
	guardDeferred                     // plan mode only: known only after apply
)

// guardDecision is a guard's outcome with the line that explains it to the
// operator (empty for guardPass): the plan's detail or refusal, the journal's
// message, or the step's error.
type guardDecision struct {
	outcome guardOutcome
	why     string
}

// guards evaluates one step's guards for the plan or for the run: the one place
// that builds their environment, decides which of them are decided (again), and
// says what a false or deferred guard means.
type guards struct {
	mode guardMode
	rb   *runbooks.Runbook
	step *runbooks.Step
	// bindings are the values expressions see, read anew on every env: in apply
	// mode the journal changes while the step runs, and until and assert must
	// judge what the step did.
	bindings func() runbooks.Bindings
	// started: the journal shows the step started in the run being resumed, so it
	// has acted, or may have (its intents and created objects are journalled as it
	// goes): its when/require were decided when it began. Deciding them again
	// against today's cluster — which the step itself may have changed — could
	// skip it, and its rollback and cleanup with it, leaving what it created. It
	// resumes instead, and its action converges.
	started bool
	// changing (plan mode) are the earlier steps planned to change the cluster, or
	// not known yet: what reads them is known only after apply.
	changing []string
}

// planGuards are a step's guards as the plan decides them: earlier steps done in
// the run being resumed are what they were, the others are presented as done
// (planBindings), so guards plan the success path.
func planGuards(o Options, known map[string]runbooks.StepResult, st *runbooks.Step, started bool, changing []string) *guards {
	bindings := func() runbooks.Bindings {
		return runbooks.Bindings{Params: o.Params.Values, Env: o.Env, Steps: planBindings(o.Runbook, known, st), Funcs: o.Funcs, Step: st}
	}
	return &guards{mode: planMode, rb: o.Runbook, step: st, bindings: bindings, started: started, changing: changing}
}

// applyGuards are a step's guards as the run decides them, over its journal.
// started is read now, before the step marks itself started.
func applyGuards(r *runner, st *runbooks.Step, rec *StepRecord) *guards {
	bindings := func() runbooks.Bindings { return r.bindings(st) }
	return &guards{mode: applyMode, rb: r.Runbook, step: st, bindings: bindings, started: rec.StartedAt != nil}
}

// env builds the expression environment from the bindings as they are now. Its
// error is returned as is: it names the param or output that does not fit.
func (g *guards) env() (map[string]any, error) { return g.rb.Env(g.bindings()) }

func (g *guards) expr(k guardKind) *runbooks.Expr {
	switch k {
	case guardWhen:
		return g.step.When
	case guardRequire:
		return g.step.Require
	case guardUntil:
		return g.step.Until
	case guardAssert:
		return g.step.Assert
	}
	return nil
}

// decide evaluates one guard against env (the step's parameters are rendered
// with the same env, so both see the same state). An evaluation error is
// returned as the expression reports it — file:line, then the step and field
// (steps[2].when) — so callers add nothing: plan shows it as the refusal, apply
// as the step's error.
func (g *guards) decide(ctx context.Context, k guardKind, env map[string]any) (guardDecision, error) {
	e := g.expr(k)
	if e == nil || (g.started && k.beforeAction()) {
		return guardDecision{}, nil
	}
	if g.mode == planMode && g.deferred(k, e) {
		return guardDecision{outcome: guardDeferred, why: g.why(k, guardDeferred, e)}, nil
	}
	ok, err := e.Eval(ctx, env)
	if err != nil {
		return guardDecision{}, err
	}
	if !ok {
		return guardDecision{outcome: guardFalse, why: g.why(k, guardFalse, e)}, nil
	}
	return guardDecision{}, nil
}

// check decides one guard against a fresh environment. An absent guard builds
// none: an output of the step that would not fit the environment fails only a
// guard that is there to read it.
func (g *guards) check(ctx context.Context, k guardKind) (guardDecision, error) {
	if g.expr(k) == nil {
		return guardDecision{}, nil
	}
	env, err := g.env()
	if err != nil {
		return guardDecision{}, err
	}
	return g.decide(ctx, k, env)
}

// deferred (plan mode) says whether a guard's value is known only after apply.
func (g *guards) deferred(k guardKind, e *runbooks.Expr) bool {
	switch k {
	case guardWhen:
		// Only what it reads: a when over params or the cluster as it is now
		// decides now, and a false one is a skip the plan can show.
		return g.readsUnknown(e.Steps)
	case guardRequire:
		// Any earlier change, not only one it reads, may be what makes the
		// precondition true.
		return len(g.changing) > 0
	}
	// until and assert judge what the step itself did.
	return true
}

// readsUnknown (plan mode) says whether something reading these steps is known
// only after apply: one of them is planned to change the cluster.
func (g *guards) readsUnknown(stepIDs []string) bool {
	for _, id := range stepIDs {
		if slices.Contains(g.changing, id) {
			return true
		}
	}
	return false
}

// why is the line that explains a false or deferred guard. Plan and apply word
// them apart ("is false now" against "failed, nothing was changed"): a plan
// predicts, a run reports.
func (g *guards) why(k guardKind, o guardOutcome, e *runbooks.Expr) string {
	if o == guardDeferred {
		switch k {
		case guardWhen:
			return "runs if, after the earlier steps: " + e.Source
		case guardRequire:
			return "precondition checked at apply, after the earlier steps: " + e.Source
		}
		return "checked at apply, after the step acts: " + e.Source
	}
	switch k {
	case guardWhen:
		if g.mode == planMode {
			return "when is false: " + e.Source
		}
		return "when was false: " + e.Source
	case guardRequire:
		if g.mode == planMode {
			return "precondition is false now: require: " + e.Source
		}
		return "precondition failed, nothing was changed: require: " + e.Source
	case guardUntil:
		// Said once the wait has ended: until fails only at the step's timeout.
		return fmt.Sprintf("until still false after the step's timeout %s: %s", g.step.Timeout, e.Source)
	}
	return "postcondition failed: assert: " + e.Source
}

// untilFallback is how often an until guard is re-evaluated without a cache change
// (a guard may read something the cache does not signal, such as the time).
const untilFallback = 2 * time.Second

// untilDebounce is how long a change to the cache waits for the rest of its burst
// before the until guard is evaluated again.
const untilDebounce = 100 * time.Millisecond

// waitUntil re-evaluates the until guard whenever changes reports a change
// (debounced), with a fallback interval, until it holds or ctx (bounded by the
// step's timeout) ends. Only a false guard waits: in plan mode until is
// deferred, so the plan never waits.
func (g *guards) waitUntil(ctx context.Context, changes <-chan struct{}) (guardDecision, error) {
	return g.waitFor(ctx, guardUntil, changes)
}

// assertSettle bounds how long a false assert waits for the guard functions'
// cache to catch up before it fails the step. The action decided "done" on its
// own view (the pod mover's informer, the API server); the guard functions
// read the Calico client's informers, which may lag it by a few events on a
// loaded control plane (a move reported 10/10 back, then podsInPool still
// listed a deleted pod). A postcondition that holds is never delayed.
var assertSettle = 10 * time.Second

// settleAssert decides the assert guard: at once when it holds, else after
// re-evaluating it on each cache change for at most assertSettle.
func (g *guards) settleAssert(ctx context.Context, changes <-chan struct{}) (guardDecision, error) {
	d, err := g.check(ctx, guardAssert)
	if err != nil || d.outcome != guardFalse {
		return d, err
	}
	sctx, cancel := context.WithTimeout(ctx, assertSettle)
	defer cancel()
	d, err = g.waitFor(sctx, guardAssert, changes)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return d, nil // still false once the cache had time to catch up: d says so
	}
	return d, err
}

// waitFor re-evaluates guard k until it holds or ctx ends: the until wait, and
// an assert's settle.
func (g *guards) waitFor(ctx context.Context, k guardKind, changes <-chan struct{}) (guardDecision, error) {
	tick := time.NewTicker(untilFallback)
	defer tick.Stop()
	for {
		d, err := g.check(ctx, k)
		if err != nil || d.outcome != guardFalse {
			return d, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return d, errors.New(d.why)
			}
			return d, ctx.Err()
		case <-changes:
			// Debounce: a burst of cache events costs one evaluation. The pause
			// watches the context like every other wait: a signal or a lost lock
			// ends the step now, not after it.
			if sleepOn(ctx, clock.RealClock{}, untilDebounce) != nil {
				continue // the select above reports the context's end
			}
			for len(changes) > 0 {
				<-changes
			}
		case <-tick.C:
		}
	}
}
