package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
)

// guardDecl is the guard tests' action: one earlier step's output n for guards
// to read. (enginetest's action cannot be used here: it imports this package.)
var guardDecl = &decl.Action{Name: "put",
	Params:  []decl.Param{{Name: "name", Spec: value.Spec{Type: value.String, Required: true}}},
	Outputs: []decl.Output{{Name: "n", Type: value.Int}}}

// guardRunbook has step a, then step s with the one guard under test.
func guardRunbook(t *testing.T, field, src string) (*runbooks.Runbook, *runbooks.Params) {
	t.Helper()
	reg := decl.NewRegistry()
	reg.Add(guardDecl)
	for _, f := range actions.Default.Funcs() {
		reg.AddFunc(f)
	}
	doc := "apiVersion: runbook/v1alpha1\nkind: Runbook\nmetadata: {name: guards}\n" +
		"params: {flag: {type: bool, default: true}}\nsteps:\n" +
		"  - {id: a, action: put, with: {name: a}}\n" +
		"  - {id: s, action: put, with: {name: s}}\n"
	if src != "" {
		doc = strings.Replace(doc, "with: {name: s}}", fmt.Sprintf("with: {name: s}, %s: '%s'}", field, src), 1)
	}
	rb, err := runbooks.Parse("guards.yaml", []byte(doc), reg)
	if err != nil {
		t.Fatal(err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	return rb, params
}

var guardFields = map[guardKind]string{guardWhen: "when", guardRequire: "require", guardUntil: "until", guardAssert: "assert"}

// guardsFor builds step s's evaluator the way MakePlan (plan mode) or the
// runner (apply mode) does, with step a done and its output n = 1.
func guardsFor(t *testing.T, mode guardMode, k guardKind, src string, started bool, changing []string) *guards {
	t.Helper()
	rb, params := guardRunbook(t, guardFields[k], src)
	st := rb.StepByID("s")
	if mode == planMode {
		known := map[string]runbooks.StepResult{"a": {Status: StatusDone, Changed: true, Outputs: map[string]any{"n": 1}}}
		return planGuards(Options{Runbook: rb, Params: params}, known, st, started, changing)
	}
	// As read back from the JSON journal: the guard must still see n as an int.
	r := &runner{Options: Options{Runbook: rb, Params: params}, j: &Journal{RunID: "r1",
		Steps: map[string]*StepRecord{"a": {Status: StatusDone, Changed: true, Outputs: map[string]any{"n": float64(1)}}}}}
	rec := &StepRecord{Status: StatusPending}
	if started {
		now := time.Now()
		rec.StartedAt, rec.Status = &now, StatusRunning
	}
	return applyGuards(r, st, rec)
}

func TestGuardDecide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mode     guardMode
		kind     guardKind
		src      string // "" for no such guard
		started  bool
		changing []string // plan mode: steps planned to change
		want     guardOutcome
		why      string // the decision's line; with an error, part of the error
		err      bool
	}{
		// Plan mode: decided now where every value is known, deferred otherwise.
		{name: "plan/absent", mode: planMode, kind: guardWhen, want: guardPass},
		{name: "plan/when true", mode: planMode, kind: guardWhen, src: "params.flag", want: guardPass},
		{name: "plan/when false", mode: planMode, kind: guardWhen, src: "!params.flag", want: guardFalse, why: "when is false: !params.flag"},
		{name: "plan/when reads a known step", mode: planMode, kind: guardWhen, src: "steps.a.outputs.n == 1", want: guardPass},
		{name: "plan/when reads a changing step", mode: planMode, kind: guardWhen, src: "steps.a.outputs.n == 1", changing: []string{"a"},
			want: guardDeferred, why: "runs if, after the earlier steps: steps.a.outputs.n == 1"},
		{name: "plan/when after a change it does not read", mode: planMode, kind: guardWhen, src: "!params.flag", changing: []string{"a"},
			want: guardFalse, why: "when is false: !params.flag"},
		{name: "plan/when fails to evaluate", mode: planMode, kind: guardWhen, src: `pool("p") == nil`, err: true, why: "steps[1].when: pool needs a cluster connection"},
		{name: "plan/require false", mode: planMode, kind: guardRequire, src: "!params.flag", want: guardFalse, why: "precondition is false now: require: !params.flag"},
		{name: "plan/require after any change", mode: planMode, kind: guardRequire, src: "!params.flag", changing: []string{"a"},
			want: guardDeferred, why: "precondition checked at apply, after the earlier steps: !params.flag"},
		{name: "plan/require fails to evaluate", mode: planMode, kind: guardRequire, src: `pool("p") == nil`, err: true, why: "steps[1].require: pool needs a cluster connection"},
		{name: "plan/started: when not decided again", mode: planMode, kind: guardWhen, src: "!params.flag", started: true, want: guardPass},
		{name: "plan/started: require not decided again", mode: planMode, kind: guardRequire, src: `pool("p") == nil`, started: true, want: guardPass},
		{name: "plan/until judges the step's own effect", mode: planMode, kind: guardUntil, src: "params.flag", want: guardDeferred, why: "checked at apply, after the step acts: params.flag"},
		{name: "plan/assert judges the step's own effect", mode: planMode, kind: guardAssert, src: "!params.flag", want: guardDeferred, why: "checked at apply, after the step acts: !params.flag"},

		// Apply mode: every value is known, nothing is deferred.
		{name: "apply/absent", mode: applyMode, kind: guardAssert, want: guardPass},
		{name: "apply/when false", mode: applyMode, kind: guardWhen, src: "!params.flag", want: guardFalse, why: "when was false: !params.flag"},
		{name: "apply/when reads typed journal outputs", mode: applyMode, kind: guardWhen, src: "steps.a.outputs.n == 1", want: guardPass},
		{name: "apply/when fails to evaluate", mode: applyMode, kind: guardWhen, src: `pool("p") == nil`, err: true, why: "steps[1].when: pool needs a cluster connection"},
		{name: "apply/require false", mode: applyMode, kind: guardRequire, src: "!params.flag", want: guardFalse, why: "precondition failed, nothing was changed: require: !params.flag"},
		{name: "apply/require fails to evaluate", mode: applyMode, kind: guardRequire, src: `pool("p") == nil`, err: true, why: "steps[1].require: pool needs a cluster connection"},
		{name: "apply/started: when not decided again", mode: applyMode, kind: guardWhen, src: "!params.flag", started: true, want: guardPass},
		{name: "apply/started: require not decided again", mode: applyMode, kind: guardRequire, src: "!params.flag", started: true, want: guardPass},
		{name: "apply/started: assert still decided", mode: applyMode, kind: guardAssert, src: "!params.flag", started: true, want: guardFalse, why: "postcondition failed: assert: !params.flag"},
		{name: "apply/until false", mode: applyMode, kind: guardUntil, src: "!params.flag", want: guardFalse,
			why: "until still false after the step's timeout 10m0s: !params.flag"},
		{name: "apply/assert true", mode: applyMode, kind: guardAssert, src: "steps.a.outputs.n == 1", want: guardPass},
		{name: "apply/assert fails to evaluate", mode: applyMode, kind: guardAssert, src: `pool("p") == nil`, err: true, why: "steps[1].assert: pool needs a cluster connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := guardsFor(t, tc.mode, tc.kind, tc.src, tc.started, tc.changing)
			d, err := g.check(context.Background(), tc.kind)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("error %v, want one containing %q", err, tc.why)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.outcome != tc.want || d.why != tc.why {
				t.Fatalf("decision %d %q, want %d %q", d.outcome, d.why, tc.want, tc.why)
			}
		})
	}
}

// TestGuardPlanAgreesWithApply: where the plan knows every value, it decides a
// guard as the run will, only worded as a prediction.
func TestGuardPlanAgreesWithApply(t *testing.T) {
	for _, k := range []guardKind{guardWhen, guardRequire} {
		for _, src := range []string{"params.flag", "!params.flag", "steps.a.outputs.n == 1", "steps.a.outputs.n > 1", `steps.a.status == "done"`, "steps.a.changed"} {
			plan, perr := guardsFor(t, planMode, k, src, false, nil).check(context.Background(), k)
			apply, aerr := guardsFor(t, applyMode, k, src, false, nil).check(context.Background(), k)
			if perr != nil || aerr != nil || plan.outcome != apply.outcome {
				t.Errorf("%s %s: plan %d (%v), apply %d (%v)", guardFields[k], src, plan.outcome, perr, apply.outcome, aerr)
			}
		}
	}
}

// TestGuardEnvOnlyForAPresentGuard: an environment that cannot be built (a
// param that does not fit) fails a guard that reads it, and nothing when the
// step has no such guard.
func TestGuardEnvOnlyForAPresentGuard(t *testing.T) {
	for _, mode := range []guardMode{planMode, applyMode} {
		for _, src := range []string{"", "params.flag"} {
			g := guardsFor(t, mode, guardAssert, src, false, nil)
			bindings := g.bindings
			g.bindings = func() runbooks.Bindings {
				b := bindings()
				b.Params = map[string]any{"flag": "yes"}
				return b
			}
			_, err := g.check(context.Background(), guardAssert)
			if wantErr := src != ""; (err != nil) != wantErr || (wantErr && !strings.Contains(err.Error(), "param flag")) {
				t.Errorf("mode %d, assert %q: error %v", mode, src, err)
			}
		}
	}
}

func TestGuardWaitUntil(t *testing.T) {
	t.Run("apply/holds at once", func(t *testing.T) {
		g := guardsFor(t, applyMode, guardUntil, "params.flag", false, nil)
		if d, err := g.waitUntil(context.Background(), nil); err != nil || d.outcome != guardPass {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("apply/absent", func(t *testing.T) {
		g := guardsFor(t, applyMode, guardUntil, "", false, nil)
		if d, err := g.waitUntil(context.Background(), nil); err != nil || d.outcome != guardPass {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("apply/times out", func(t *testing.T) {
		g := guardsFor(t, applyMode, guardUntil, "!params.flag", false, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := g.waitUntil(ctx, nil)
		if err == nil || err.Error() != "until still false after the step's timeout 10m0s: !params.flag" {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("apply/interrupted", func(t *testing.T) {
		g := guardsFor(t, applyMode, guardUntil, "!params.flag", false, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := g.waitUntil(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the context's", err)
		}
	})
	t.Run("apply/fails to evaluate", func(t *testing.T) {
		g := guardsFor(t, applyMode, guardUntil, `pool("p") == nil`, false, nil)
		if _, err := g.waitUntil(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "steps[1].until:") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("plan/never waits", func(t *testing.T) {
		g := guardsFor(t, planMode, guardUntil, "!params.flag", false, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := g.waitUntil(ctx, nil)
		if err != nil || d.outcome != guardDeferred || ctx.Err() != nil {
			t.Fatalf("%+v %v (context: %v)", d, err, ctx.Err())
		}
	})
}

// TestAssertSettles: a false assert is re-evaluated on cache changes for a
// bounded time (the guard functions' informers may lag the action's view);
// one that holds passes at once, one that stays false fails after the bound
// with the guard's reason, and a signal ends the wait.
func TestAssertSettles(t *testing.T) {
	settled := func(t *testing.T) (*guards, *atomic.Bool) {
		g := guardsFor(t, applyMode, guardAssert, "params.flag", false, nil)
		var caughtUp atomic.Bool
		base := g.bindings
		g.bindings = func() runbooks.Bindings {
			b := base()
			b.Params = map[string]any{"flag": caughtUp.Load()}
			return b
		}
		return g, &caughtUp
	}
	t.Run("holds once the cache catches up", func(t *testing.T) {
		g, caughtUp := settled(t)
		changes := make(chan struct{}, 1)
		go func() {
			time.Sleep(50 * time.Millisecond)
			caughtUp.Store(true)
			changes <- struct{}{}
		}()
		d, err := g.settleAssert(context.Background(), changes)
		if err != nil || d.outcome != guardPass {
			t.Fatalf("%+v %v", d, err)
		}
	})
	t.Run("stays false: fails after the bound", func(t *testing.T) {
		defer func(old time.Duration) { assertSettle = old }(assertSettle)
		assertSettle = 100 * time.Millisecond
		g, _ := settled(t)
		start := time.Now()
		d, err := g.settleAssert(context.Background(), nil)
		if err != nil || d.outcome != guardFalse || d.why != "postcondition failed: assert: params.flag" {
			t.Fatalf("%+v %v", d, err)
		}
		if took := time.Since(start); took < assertSettle {
			t.Errorf("failed after %s, before the bound %s", took, assertSettle)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		g, _ := settled(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := g.settleAssert(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the context's", err)
		}
	})
}
