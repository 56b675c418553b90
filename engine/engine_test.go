package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/engine/enginetest"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/runbooks"
)

type fixture struct {
	t       *testing.T
	cs      *fake.Clientset
	applies []string
	store   *engine.FileStore
	events  []engine.Event
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, cs: fake.NewClientset(), store: &engine.FileStore{Path: filepath.Join(t.TempDir(), "journal.json")}}
}

func (f *fixture) run(src string, mod func(*engine.Options, *enginetest.ConfigMapAction)) (*engine.Report, error) {
	f.t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(src), enginetest.Registry())
	if err != nil {
		f.t.Fatal(err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		f.t.Fatal(err)
	}
	if rb, err = rb.Expand(params, ""); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	act := &enginetest.ConfigMapAction{Client: f.cs, Namespace: "default", Log: &f.applies, Cancel: cancel}
	bound, err := actions.Bind(ctx, &actions.Cluster{})
	if err != nil {
		f.t.Fatal(err)
	}
	o := engine.Options{Runbook: rb, Params: params, Impls: map[string]actions.Impl{"putConfigMap": act, "pause": bound.Impls["pause"]}, Store: f.store,
		Holder: "test", Events: func(e engine.Event) { f.events = append(f.events, e) }}
	if mod != nil {
		mod(&o, act)
	}
	return engine.Run(ctx, o)
}

func (f *fixture) configMaps() []string {
	l, _ := f.cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	var out []string
	for _, cm := range l.Items {
		out = append(out, cm.Name)
	}
	return out
}

const threeSteps = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: three}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, rollback: auto}
  - {id: b, action: putConfigMap, with: {name: b}, rollback: auto, assert: steps.b.outputs.created || steps.b.status == "running"}
  - {id: c, action: putConfigMap, with: {name: c}, rollback: auto}
`

func statuses(rep *engine.Report) string {
	var s []string
	for _, st := range rep.Steps {
		s = append(s, fmt.Sprintf("%s=%s/%v", st.ID, st.Status, st.Changed))
	}
	return strings.Join(s, " ")
}

func TestRunAndIdempotentRerun(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(threeSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rep); got != "a=done/true b=done/true c=done/true" {
		t.Fatalf("first run: %s", got)
	}
	f.applies = nil
	rep2, err := f.run(threeSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.RunID == rep.RunID || rep2.Resumed {
		t.Error("a finished run is not resumed: re-running starts a new run")
	}
	if got := statuses(rep2); got != "a=done/false b=done/false c=done/false" {
		t.Fatalf("re-run must change nothing: %s", got)
	}
}

func TestResumeAfterCrash(t *testing.T) {
	f := newFixture(t)
	// A kill in the middle of step c: a and b are done, c is in flight.
	rep, err := f.run(threeSteps, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.StopOn = "c" })
	if exitcode.Of(err) != exitcode.Interrupted || rep.Status != engine.StatusInterrupted {
		t.Fatalf("want interrupted, got %v %v", rep.Status, err)
	}
	if got := f.configMaps(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("configmaps %v; an interrupt must not roll back", got)
	}
	f.applies = nil
	rep2, err := f.run(threeSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.Resumed || rep2.RunID != rep.RunID {
		t.Fatalf("want the same run resumed, got %+v", rep2)
	}
	if strings.Join(f.applies, ",") != "apply c,create c" {
		t.Fatalf("resume re-applied finished steps: %v", f.applies)
	}
}

func TestRollbackInReverseOrder(t *testing.T) {
	f := newFixture(t)
	// "b" existed before the run: its inverse must keep it.
	f.cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}}, metav1.CreateOptions{})
	rep, err := f.run(threeSteps+`  - {id: d, action: putConfigMap, with: {name: d}}
`, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "d" })
	if exitcode.Of(err) != exitcode.RolledBack {
		t.Fatalf("want rolled back, got %v", err)
	}
	if got := strings.Join(f.applies, ","); got != "apply a,create a,apply b,apply c,create c,apply d,invert c,invert b,invert a" {
		t.Fatalf("order: %s", got)
	}
	if got := strings.Join(f.configMaps(), ","); got != "b" {
		t.Fatalf("left %s, want only the pre-existing b", got)
	}
	if rep.Steps[1].Rollback != "kept: b existed before this run" {
		t.Errorf("b rollback = %q", rep.Steps[1].Rollback)
	}
}

func TestRollbackFailedAndStopPolicy(t *testing.T) {
	f := newFixture(t)
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: rf}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, rollback: auto}
  - {id: u, action: putConfigMap, with: {name: undeletable}, rollback: auto}
  - {id: x, action: putConfigMap, with: {name: boom}}
`
	rep, err := f.run(src, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "boom" })
	if exitcode.Of(err) != exitcode.RollbackFailed || len(rep.LeftToDo) != 1 || !strings.Contains(rep.LeftToDo[0], "step u: rollback failed") {
		t.Fatalf("want rollbackFailed naming the step, got %v %+v", err, rep.LeftToDo)
	}
	// The other inverse still ran.
	if !strings.Contains(strings.Join(f.applies, ","), "invert a") {
		t.Fatal("one failing inverse must not stop the others")
	}

	g := newFixture(t)
	_, err = g.run(strings.Replace(src, "name: rf}", "name: rf}\nonFailure: stop", 1), func(o *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "boom" })
	if exitcode.Of(err) != exitcode.StepFailed || strings.Contains(strings.Join(g.applies, ","), "invert") {
		t.Fatalf("onFailure: stop must not roll back: %v %v", err, g.applies)
	}
}

func TestCleanupAlwaysRuns(t *testing.T) {
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: cl}
steps:
  - {id: tmp, action: putConfigMap, with: {name: tmp, temporary: true}}
  - {id: last, action: putConfigMap, with: {name: last}}
`
	for _, tc := range []struct{ name, failOn, stopOn string }{{"success", "", ""}, {"failure", "last", ""}, {"interrupt", "", "last"}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.run(src, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn, a.StopOn = tc.failOn, tc.stopOn })
			if !strings.Contains(strings.Join(f.applies, ","), "cleanup tmp") {
				t.Fatalf("cleanup did not run: %v", f.applies)
			}
			for _, n := range f.configMaps() {
				if n == "tmp" {
					t.Fatal("temporary object left behind")
				}
			}
		})
	}
}

func TestGuards(t *testing.T) {
	f := newFixture(t)
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: g}
params: {skip: {type: bool, default: true}}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, when: "!params.skip"}
  - {id: b, action: putConfigMap, with: {name: b}, require: 'steps.a.status == "skipped"'}
  - {id: c, action: putConfigMap, with: {name: c}, require: 'cidrContains("10.0.0.0/8", "192.168.0.0/16")'}
`
	rep, err := f.run(src, nil)
	if exitcode.Of(err) != exitcode.StepFailed && exitcode.Of(err) != exitcode.RolledBack {
		t.Fatalf("require false must fail the step: %v", err)
	}
	if got := statuses(rep); got != "a=skipped/false b=done/true c=failed/false" {
		t.Fatalf("%s", got)
	}
	if !strings.Contains(rep.Steps[2].Error, "precondition failed, nothing was changed") {
		t.Errorf("error %q", rep.Steps[2].Error)
	}
}

func TestStopBeforeAndChangedRunbook(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.StopBefore = "c" })
	if exitcode.Of(err) != exitcode.Interrupted || statuses(rep) != "a=done/true b=done/true c=pending/false" {
		t.Fatalf("stop-before: %v %s", err, statuses(rep))
	}
	changed := strings.Replace(threeSteps, "name: c}", "name: c, value: w}", 1)
	if _, err := f.run(changed, nil); exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "--allow-changed") {
		t.Fatalf("a changed runbook must not resume silently: %v", err)
	}
	rep, err = f.run(changed, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.AllowChanged = true })
	if err != nil || !rep.Resumed {
		t.Fatalf("--allow-changed resumes: %v", err)
	}
}

func TestCorruptJournalDetected(t *testing.T) {
	f := newFixture(t)
	if _, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.StopBefore = "b" }); exitcode.Of(err) != exitcode.Interrupted {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.store.Path)
	for name, mutate := range map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"hand-edited": func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"status":"done"`, `"status":"skipped"`, 1))
		},
	} {
		os.WriteFile(f.store.Path, mutate(b), 0o600)
		_, err := f.run(threeSteps, nil)
		if exitcode.Of(err) != exitcode.Invalid || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s journal: got %v", name, err)
		}
	}
}

func TestFileStoreCompareAndSwap(t *testing.T) {
	s := &engine.FileStore{Path: filepath.Join(t.TempDir(), "j.json")}
	ctx := context.Background()
	rev, err := s.Save(ctx, &engine.Journal{RunID: "1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, &engine.Journal{RunID: "2"}, ""); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("create over an existing journal: %v", err)
	}
	if _, err := s.Save(ctx, &engine.Journal{RunID: "2"}, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, &engine.Journal{RunID: "3"}, rev); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("stale revision: %v", err)
	}
}

const pauseRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: phased}
steps:
  - {id: a, action: putConfigMap, with: {name: a}}
  - {id: gate, action: pause, with: {message: "Delete next?"}}
  - {id: b, action: putConfigMap, with: {name: b}}
`

func TestPauseApproveResume(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(pauseRunbook, nil)
	if exitcode.Of(err) != exitcode.AwaitApproval || statuses(rep) != "a=done/true gate=awaitingApproval/false b=pending/false" {
		t.Fatalf("want a wait at the gate: %v %s", err, statuses(rep))
	}
	if _, err := engine.Approve(context.Background(), f.store, "not-this-run", "alice"); exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("approving another run: %v", err)
	}
	step, err := engine.Approve(context.Background(), f.store, rep.RunID, "alice")
	if err != nil || step != "gate" {
		t.Fatalf("approve: %v %q", err, step)
	}
	rep, err = f.run(pauseRunbook, nil)
	if err != nil || statuses(rep) != "a=done/true gate=done/false b=done/true" {
		t.Fatalf("after approval: %v %s", err, statuses(rep))
	}
	hist, err := f.store.History(context.Background())
	if err != nil || len(hist) != 1 || hist[0].RunID != rep.RunID || hist[0].Steps["gate"].Outputs["approvedBy"] != "alice" {
		t.Fatalf("history: %v %+v", err, hist)
	}
}

func TestInteractiveConfirm(t *testing.T) {
	f := newFixture(t)
	var asked []string
	rep, err := f.run(pauseRunbook, func(o *engine.Options, _ *enginetest.ConfigMapAction) {
		o.Confirm = func(st *runbooks.Step, q string) (bool, error) { asked = append(asked, st.ID+": "+q); return true, nil }
	})
	if err != nil || statuses(rep) != "a=done/true gate=done/false b=done/true" || strings.Join(asked, "|") != "gate: Delete next?" {
		t.Fatalf("%v %s %v", err, statuses(rep), asked)
	}
}

func TestDeadlineAndFence(t *testing.T) {
	f := newFixture(t)
	rep, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Deadline = time.Now().Add(-time.Second) })
	if exitcode.Of(err) != exitcode.Interrupted || !strings.Contains(rep.Error, "--deadline") {
		t.Fatalf("deadline: %v %+v", err, rep)
	}
	g := newFixture(t)
	_, err = g.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) {
		o.Fence = func() error { return engine.ErrFenced }
	})
	if !errors.Is(err, engine.ErrFenced) || len(g.applies) != 0 {
		t.Fatalf("a fenced run must not write or act: %v %v", err, g.applies)
	}
}

// TestLostLockStopsRollbackAndCleanup: a run whose lock is lost mid-run (the fence
// fails from the moment its temporary object exists) neither rolls back nor cleans
// up: the run's next holder, resuming from the journal, does both. Before, the
// stale holder deleted the verification namespace under its successor.
func TestLostLockStopsRollbackAndCleanup(t *testing.T) {
	f := newFixture(t)
	_, err := f.run(enginetest.CrashRunbook, func(o *engine.Options, _ *enginetest.ConfigMapAction) {
		o.Fence = func() error {
			if slices.Contains(f.applies, "create tmp") {
				return engine.ErrFenced
			}
			return nil
		}
	})
	if err == nil || !strings.Contains(err.Error(), engine.ErrFenced.Error()) {
		t.Fatalf("want a run stopped by the fence, got %v", err)
	}
	for _, l := range f.applies {
		if strings.HasPrefix(l, "invert ") || strings.HasPrefix(l, "cleanup ") {
			t.Errorf("a run without its lock acted: %v", f.applies)
			break
		}
	}
	if got := strings.Join(f.configMaps(), ","); got != "a,tmp" {
		t.Errorf("objects after the fenced run: %s, want a,tmp (left to the next holder)", got)
	}
}

// archiveLost is a store whose process dies between the run's last journal write
// and the archive (SIGKILL there: the journal says done, history does not have it).
type archiveLost struct{ engine.Store }

func (archiveLost) Archive(context.Context, *engine.Journal) error {
	return errors.New("process is dead")
}

// TestFinishedRunArchivedBeforeTheNextRun: a run killed after its final journal
// write but before its archive is archived by the next apply before that one
// replaces the journal; before, the finished run vanished from history.
func TestFinishedRunArchivedBeforeTheNextRun(t *testing.T) {
	f := newFixture(t)
	first, err := f.run(threeSteps, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.Store = archiveLost{f.store} })
	if err != nil || first.Status != engine.StatusDone {
		t.Fatalf("first run: %v %+v", err, first)
	}
	if hist, _ := f.store.History(context.Background()); len(hist) != 0 {
		t.Fatalf("the archive was not lost: %+v", hist)
	}
	second, err := f.run(threeSteps, nil)
	if err != nil || second.RunID == first.RunID {
		t.Fatalf("second run: %v %+v", err, second)
	}
	hist, err := f.store.History(context.Background())
	var ids []string
	for _, j := range hist {
		ids = append(ids, j.RunID)
	}
	if err != nil || !slices.Contains(ids, first.RunID) || !slices.Contains(ids, second.RunID) {
		t.Fatalf("history %v (%v), want runs %s and %s", ids, err, first.RunID, second.RunID)
	}
}

func (f *fixture) plan(src string, mod func(*engine.Options, *enginetest.ConfigMapAction)) *engine.Plan {
	f.t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(src), enginetest.Registry())
	if err != nil {
		f.t.Fatal(err)
	}
	params, _ := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	act := &enginetest.ConfigMapAction{Client: f.cs, Namespace: "default", Log: &f.applies}
	o := engine.Options{Runbook: rb, Params: params, Impls: map[string]actions.Impl{"putConfigMap": act}, Store: f.store}
	if mod != nil {
		mod(&o, act)
	}
	p, err := engine.MakePlan(context.Background(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func planChanges(p *engine.Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.ID+"="+string(st.Change))
	}
	return strings.Join(s, " ")
}

func TestPlanIsReadOnlyAndDetectsDrift(t *testing.T) {
	f := newFixture(t)
	p := f.plan(threeSteps, nil)
	if got := planChanges(p); got != "a=create b=create c=create" || p.Changes() != 3 {
		t.Fatalf("plan: %s", got)
	}
	if len(f.configMaps()) != 0 || len(f.applies) != 0 {
		t.Fatal("plan changed the cluster")
	}
	if err := engine.CheckDrift(p, f.plan(threeSteps, nil)); err != nil {
		t.Fatalf("no drift expected: %v", err)
	}
	// Someone creates "b" behind our back: the saved plan's facts no longer hold.
	f.cs.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}, Data: map[string]string{"v": "x"}}, metav1.CreateOptions{})
	err := engine.CheckDrift(p, f.plan(threeSteps, nil))
	if exitcode.Of(err) != exitcode.PlanDrift || !strings.Contains(err.Error(), "step b: planned create, now update") {
		t.Fatalf("drift: %v", err)
	}
	// A changed runbook is drift too.
	if err := engine.CheckDrift(p, f.plan(strings.Replace(threeSteps, "name: c}", "name: c, value: z}", 1), nil)); exitcode.Of(err) != exitcode.PlanDrift {
		t.Fatalf("runbook drift: %v", err)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := engine.SavePlan(path, p); err != nil {
		t.Fatal(err)
	}
	if back, err := engine.LoadPlan(path); err != nil || back.RunbookDigest != p.RunbookDigest || len(back.Steps) != 3 {
		t.Fatalf("round trip: %v", err)
	}
}

func TestPlanAfterApplyAndRefusals(t *testing.T) {
	f := newFixture(t)
	if _, err := f.run(threeSteps, nil); err != nil {
		t.Fatal(err)
	}
	p := f.plan(threeSteps, nil)
	if got := planChanges(p); got != "a=none b=none c=none" || p.Changes() != 0 {
		t.Fatalf("plan after apply: %s", got)
	}
	g := newFixture(t)
	// A refusal on the first step is a finding; on a step after a change it is
	// only checked at apply (the earlier step may fix it).
	p = g.plan(threeSteps, func(_ *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "a" })
	if len(p.Refusals()) != 1 || !strings.Contains(p.Refusals()[0], "injected plan refusal on a") {
		t.Fatalf("refusals %v", p.Refusals())
	}
	p = g.plan(threeSteps, func(_ *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "b" })
	if len(p.Refusals()) != 0 || p.Steps[1].Change != plans.Unknown {
		t.Fatalf("later refusal must be deferred: %v %s", p.Refusals(), planChanges(p))
	}
}

func TestRollbackCommandOnStoppedRun(t *testing.T) {
	f := newFixture(t)
	src := strings.Replace(threeSteps, "name: three}", "name: three}\nonFailure: stop", 1)
	_, err := f.run(src, func(o *engine.Options, a *enginetest.ConfigMapAction) { a.FailOn = "c" })
	if exitcode.Of(err) != exitcode.StepFailed {
		t.Fatalf("want stopped on failure: %v", err)
	}
	f.applies = nil
	rb, _ := runbooks.Parse("test.yaml", []byte(src), enginetest.Registry())
	params, _ := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	act := &enginetest.ConfigMapAction{Client: f.cs, Namespace: "default", Log: &f.applies}
	rep, err := engine.RollbackRun(context.Background(), engine.Options{Runbook: rb, Params: params, Store: f.store, Impls: map[string]actions.Impl{"putConfigMap": act}})
	if exitcode.Of(err) != exitcode.RolledBack || rep.Status != engine.StatusRolledBack {
		t.Fatalf("rollback: %v", err)
	}
	if got := strings.Join(f.applies, ","); got != "invert c,invert b,invert a" {
		t.Fatalf("order %s", got)
	}
	if len(f.configMaps()) != 0 {
		t.Fatalf("left %v", f.configMaps())
	}
	if _, err := engine.RollbackRun(context.Background(), engine.Options{Runbook: rb, Params: params, Store: f.store, Impls: map[string]actions.Impl{"putConfigMap": act}}); exitcode.Of(err) != exitcode.Invalid {
		t.Fatalf("a finished run cannot be rolled back again: %v", err)
	}
}

// TestCrashAtEveryJournalWrite kills the run at every journal write, resumes it,
// and checks the end state is an uninterrupted run's with nothing created twice.
func TestCrashAtEveryJournalWrite(t *testing.T) {
	injected, survived := enginetest.CrashAtEveryWrite(context.Background(), t, enginetest.CrashRunbook, 3, func(t testing.TB) enginetest.Env {
		return enginetest.Env{Client: fake.NewClientset(), Namespace: "default", Store: &engine.FileStore{Path: filepath.Join(t.TempDir(), "j.json")}}
	})
	if injected < 8 || survived != injected {
		t.Fatalf("crashes injected %d, survived %d", injected, survived)
	}
}

func TestJournalIsBounded(t *testing.T) {
	j := &engine.Journal{RunID: "big", Steps: map[string]*engine.StepRecord{"a": {Outputs: map[string]any{"blob": strings.Repeat("x", engine.MaxJournalBytes)}}}}
	if _, err := engine.Encode(j); err == nil || !strings.Contains(err.Error(), "bound") {
		t.Fatalf("an oversized journal must be refused: %v", err)
	}
}

func TestStepFailingItsGuardIsNotUndone(t *testing.T) {
	f := newFixture(t)
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: guard}
steps:
  - {id: a, action: putConfigMap, with: {name: a}, rollback: auto}
  - {id: b, action: putConfigMap, with: {name: b}, rollback: auto, require: "false"}
`
	if _, err := f.run(src, nil); exitcode.Of(err) != exitcode.RolledBack {
		t.Fatalf("want rolled back: %v", err)
	}
	if got := strings.Join(f.applies, ","); got != "apply a,create a,invert a" {
		t.Fatalf("a step that never acted must not be inverted: %s", got)
	}
}

// TestResumedGuardsSeeTypedOutputs: outputs come back from the JSON journal as
// float64 and strings; guards of a resumed run must still see ints and durations.
func TestResumedGuardsSeeTypedOutputs(t *testing.T) {
	f := newFixture(t)
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: typed}
steps:
  - {id: a, action: putConfigMap, with: {name: a}}
  - {id: b, action: putConfigMap, with: {name: b}, when: 'steps.a.outputs.length == 1 && steps.a.outputs.age == duration("1m")'}
`
	if _, err := f.run(src, func(o *engine.Options, _ *enginetest.ConfigMapAction) { o.StopBefore = "b" }); exitcode.Of(err) != exitcode.Interrupted {
		t.Fatal(err)
	}
	rep, err := f.run(src, nil)
	if err != nil || statuses(rep) != "a=done/true b=done/true" {
		t.Fatalf("resumed guard: %v %s", err, statuses(rep))
	}
}
