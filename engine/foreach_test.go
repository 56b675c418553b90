package engine_test

import (
	"strings"
	"testing"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// A forEach step runs as one step per item: skipped, resumed and rolled back
// item by item, and later steps read the group.
const forEachSteps = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: each}
params:
  names: {type: list, default: [x, y, z]}
steps:
  - id: each
    action: putConfigMap
    forEach: ${{ params.names }}
    when: item != "y"
    with: {name: "cm-${{ item }}"}
    rollback: auto
  - id: after
    action: putConfigMap
    when: steps.each.status == "done" && steps.each.changed
    with: {name: after}
    rollback: auto
`

func TestForEachRunsPerItem(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(forEachSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(rep), "each-x=done/true each-y=skipped/false each-z=done/true after=done/true"; got != want {
		t.Fatalf("first run: %s, want %s", got, want)
	}
	if got := strings.Join(f.configMaps(), ","); got != "after,cm-x,cm-z" {
		t.Fatalf("configmaps %s", got)
	}
	// Applied again: nothing changes; the group reads unchanged, so after's when is false.
	rep, err = f.run(forEachSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(rep), "each-x=done/false each-y=skipped/false each-z=done/false after=skipped/false"; got != want {
		t.Fatalf("re-run: %s, want %s", got, want)
	}
}

func TestForEachResumesAndRollsBackPerItem(t *testing.T) {
	f := newFixture(t)
	// Killed in the last item: the first is done, the second skipped.
	rep, err := f.run(forEachSteps, func(_ *engine.Options, a *enginetest.ConfigMapAction) { a.StopOn = "cm-z" })
	if exitcode.Of(err) != exitcode.Interrupted {
		t.Fatalf("want interrupted, got %v (%s)", err, statuses(rep))
	}
	f.applies = nil
	// Resumed: only the item in flight runs again, then after fails: every
	// instance is undone, latest first (after, which failed, too).
	rep, err = f.run(forEachSteps, func(_ *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "after" })
	if exitcode.Of(err) != exitcode.RolledBack || !rep.Resumed {
		t.Fatalf("want a resumed run rolled back, got %v resumed=%t (%s)", err, rep.Resumed, statuses(rep))
	}
	if got, want := strings.Join(f.applies, ","), "apply cm-z,create cm-z,apply after,invert after,invert cm-z,invert cm-x"; got != want {
		t.Fatalf("order: %s, want %s", got, want)
	}
	if got := f.configMaps(); len(got) != 0 {
		t.Fatalf("left %v after rollback", got)
	}
}
