package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// Issue #15 item 4: a step the journal shows started has acted (or may have); a
// resume must not decide its `when` again. If it did, a `when` that has turned
// false (here: because of what the step itself did) would mark it skipped, and a
// later failure's rollback would leave the object it created.
func TestResumeDoesNotRedecideAStartedStep(t *testing.T) {
	const src = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: resume-guard}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, rollback: auto, when: 'pool("p") == nil'}
  - {id: b, action: putConfigMap, with: {name: b}, rollback: auto}
`
	for writes := 1; writes < 8; writes++ {
		f := newFixture(t)
		poolExists := false
		funcs := func(o *engine.Options) {
			o.Funcs = map[string]any{"pool": func(string) *actions.Pool {
				if poolExists {
					return &actions.Pool{Name: "p"}
				}
				return nil
			}}
		}
		dead := false
		_, _ = f.run(src, func(o *engine.Options, a *enginetest.ConfigMapAction) {
			funcs(o)
			o.Store = &enginetest.DyingStore{Store: f.store, WritesLeft: writes, Dead: &dead}
			a.Dead = &dead
		})
		j, _, err := f.store.Load(context.Background())
		if err != nil || j == nil {
			continue
		}
		a := j.Steps["a"]
		if a == nil || a.Status != engine.StatusRunning || len(a.Created) == 0 {
			continue // not the crash this test is about
		}
		// Resumed: a's when is false now, and b fails.
		poolExists = true
		f.applies = nil
		rep, err := f.run(src, func(o *engine.Options, act *enginetest.ConfigMapAction) { funcs(o); act.FailOn = "b" })
		if exitcode.Of(err) != exitcode.RolledBack {
			t.Fatalf("crash after %d writes: resume = %v, want rolled back", writes, err)
		}
		if got := strings.Join(f.configMaps(), ","); got != "" {
			t.Errorf("crash after %d writes: after the rollback the cluster still has %q (a was re-decided as skipped: %s)", writes, got, statuses(rep))
		}
		return
	}
	t.Fatal("no crash left step a running with its object created")
}
