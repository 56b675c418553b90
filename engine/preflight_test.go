package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/preflight"
)

// preflightRecorder is an Options.Preflight that records the steps it was given
// and returns fixed findings.
type preflightRecorder struct {
	calls    [][]preflight.Step
	findings []preflight.Finding
}

func (p *preflightRecorder) check(_ context.Context, steps []preflight.Step) []preflight.Finding {
	p.calls = append(p.calls, steps)
	return p.findings
}

func (p *preflightRecorder) lastIDs() string {
	if len(p.calls) == 0 {
		return "<not called>"
	}
	var ids []string
	for _, s := range p.calls[len(p.calls)-1] {
		ids = append(ids, s.ID+":"+toString(s.With["name"]))
	}
	return strings.Join(ids, " ")
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

var blockFinding = preflight.Finding{ID: "coverage", Severity: preflight.Block, Subject: "IPPool new", Message: "node w1 is not selected", Fix: "widen the selector"}

func TestPreflightInPlan(t *testing.T) {
	f := newFixture(t)
	rec := &preflightRecorder{findings: []preflight.Finding{{ID: "info", Severity: preflight.Info, Message: "fine"}, blockFinding}}
	p := f.plan(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Preflight = rec.check })
	if got := rec.lastIDs(); got != "a:a b:b c:c" {
		t.Fatalf("preflight saw %s", got)
	}
	if len(p.Preflight) != 2 || p.Preflight[0].Severity != preflight.Block {
		t.Fatalf("plan findings %+v (blocking first)", p.Preflight)
	}
	refusals := p.Refusals()
	if len(refusals) != 1 || !strings.Contains(refusals[0], "preflight coverage (IPPool new): node w1 is not selected; fix: widen the selector") {
		t.Fatalf("refusals %v", refusals)
	}
}

func TestPreflightBlocksApplyBeforeAnyWrite(t *testing.T) {
	f := newFixture(t)
	rec := &preflightRecorder{findings: []preflight.Finding{blockFinding}}
	rep, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Preflight = rec.check })
	if exitcode.Of(err) != exitcode.Refused || rep != nil {
		t.Fatalf("want refused without a report, got %v %v", rep, err)
	}
	if !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "widen the selector") {
		t.Fatalf("error must name the finding and its fix: %v", err)
	}
	if len(f.configMaps()) != 0 || len(f.applies) != 0 {
		t.Fatalf("a refused run changed the cluster: %v %v", f.configMaps(), f.applies)
	}
	if _, err := os.Stat(f.store.Path); !os.IsNotExist(err) {
		t.Fatalf("a refused run wrote a journal: %v", err)
	}
}

func TestPreflightOnResumeChecksRemainingSteps(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(threeSteps, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.StopOn = "c" })
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Fatalf("want interrupted, got %v %v", rep, err)
	}
	warn := preflight.Finding{ID: "references", Severity: preflight.Warn, Message: "policy names the old CIDR"}
	rec := &preflightRecorder{findings: []preflight.Finding{warn}}
	rep, err = f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Preflight = rec.check })
	if err != nil || !rep.Resumed {
		t.Fatalf("resume: %v %+v", err, rep)
	}
	if got := rec.lastIDs(); got != "c:c" {
		t.Fatalf("a resumed run checks only its remaining steps, got %s", got)
	}
	if len(rep.Preflight) != 1 || rep.Preflight[0].ID != "references" {
		t.Fatalf("report findings %+v", rep.Preflight)
	}
	found := false
	for _, e := range f.events {
		found = found || (e.Type == "preflight" && strings.Contains(e.Message, "policy names the old CIDR"))
	}
	if !found {
		t.Fatal("a warning was not reported as an event")
	}
}
