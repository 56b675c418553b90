package engine_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// TestAuditTrail: the report and the journal carry the digests, the environment and
// the runbook's source; a resumed run records the source of the invocation that
// resumed it.
func TestAuditTrail(t *testing.T) {
	f := newFixture(t)
	src := &engine.Source{File: "runbooks/three.yaml", Commit: "0123456789abcdef0123456789abcdef01234567", Dirty: true}
	rep, err := f.run(threeSteps, func(o *engine.Options, a *enginetest.ConfigMapAction) {
		o.Env, o.Source = "staging", src
		a.StopOn = "b" // interrupted: the run is resumed below
	})
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Fatalf("want an interrupted run, got %v", err)
	}
	if rep.Env != "staging" || !reflect.DeepEqual(rep.Source, src) || !strings.HasPrefix(rep.RunbookDigest, "sha256:") ||
		!strings.HasPrefix(rep.ParamsDigest, "sha256:") || rep.StartedAt.IsZero() {
		t.Fatalf("report lacks the audit fields: %+v", rep)
	}
	j, _, err := f.store.Load(context.Background())
	if err != nil || j.Env != "staging" || !reflect.DeepEqual(j.Source, src) {
		t.Fatalf("journal: %+v, %v", j, err)
	}
	resumedFrom := &engine.Source{File: "runbooks/three.yaml", Commit: "fedcba9876543210fedcba9876543210fedcba98"}
	rep2, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Env, o.Source = "staging", resumedFrom })
	if err != nil || !rep2.Resumed || rep2.RunID != rep.RunID || !reflect.DeepEqual(rep2.Source, resumedFrom) {
		t.Fatalf("resumed report: %+v, %v", rep2, err)
	}
	if j, _, _ := f.store.Load(context.Background()); !reflect.DeepEqual(j.Source, resumedFrom) {
		t.Fatalf("journal source after resume: %+v", j.Source)
	}
}

// TestPlanForAnotherEnvironmentDrifts: a plan reviewed for staging is not applied to
// prod, even with the same params.
func TestPlanForAnotherEnvironmentDrifts(t *testing.T) {
	f := newFixture(t)
	src := &engine.Source{Commit: "abc"}
	staging := f.plan(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Env, o.Source = "staging", src })
	if !reflect.DeepEqual(staging.Source, src) {
		t.Fatalf("plan source: %+v", staging.Source)
	}
	prod := f.plan(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Env = "prod" })
	err := engine.CheckDrift(staging, prod)
	if exitcode.Of(err) != exitcode.PlanDrift || !strings.Contains(err.Error(), `the environment changed ("staging" → "prod")`) {
		t.Fatalf("drift: %v", err)
	}
}
