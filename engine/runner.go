package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/preflight"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
)

// Options configure a run.
type Options struct {
	Runbook *runbooks.Runbook
	Params  *runbooks.Params
	Impls   map[string]actions.Impl // behaviour by action name
	Store   Store
	Env     string // the environment's name, visible to expressions as env
	// Source is the runbook's provenance (file, git commit), recorded in the journal
	// and the report. May be nil.
	Source *Source
	Holder string // identity written into the journal
	// Cluster is the cluster connected to (zero: not known): recorded in a new
	// run's journal, and a journal of another cluster is refused.
	Cluster ClusterIdentity
	// Funcs are the cluster functions guards call (reading a shared informer cache).
	Funcs map[string]any
	// Changes signals that the cache changed, so `until` re-evaluates at once instead
	// of waiting for its fallback interval. May be nil.
	Changes      <-chan struct{}
	StopBefore   string
	AllowChanged bool
	Events       func(Event)
	// Fence is called before every journal write and must fail once the run's lock
	// may no longer be held (see Lock.Fence). Nil means no lock (tests).
	Fence func() error
	// Deadline, when set, stops the run cleanly between steps once passed.
	Deadline time.Time
	// Confirm asks a human (TTY runs): before a point of no return, and at pause
	// steps. Nil means non-interactive: points of no return proceed (the operator
	// passed --yes or runs from a pipeline) and pauses end the invocation.
	Confirm func(step *runbooks.Step, question string) (bool, error)
	// Preflight runs the cluster-level preflight checks over the steps still to
	// run. Plan shows its findings; apply runs it before anything is written (also
	// on resume, over the remaining steps) and refuses on a blocking finding. Nil:
	// no preflight (tests of the engine alone).
	Preflight func(ctx context.Context, steps []preflight.Step) []preflight.Finding
}

type runner struct {
	Options
	findings []preflight.Finding
	j        *Journal
	rev      string
}

// Run executes (or resumes) the runbook and returns the report. The returned error
// carries the exit code of the outcome.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	if _, group := o.Runbook.Instances(o.StopBefore); o.StopBefore != "" && o.Runbook.StepByID(o.StopBefore) == nil && !group {
		return nil, exitcode.Newf(exitcode.Invalid, "--stop-before %q: no such step", o.StopBefore)
	}
	for _, st := range o.Runbook.Steps {
		if o.Impls[st.Action] == nil {
			return nil, exitcode.Newf(exitcode.Invalid, "step %s: action %s is not implemented in this build", st.ID, st.Action)
		}
	}
	r := &runner{Options: o}
	if o.Preflight != nil {
		// Before the journal is opened: a refused run writes nothing at all.
		fs, err := runPreflight(ctx, o)
		if err != nil {
			return nil, err
		}
		if block := preflight.Blocking(fs); len(block) > 0 {
			lines := make([]string, len(block))
			for i, f := range block {
				lines[i] = f.String()
			}
			return nil, exitcode.Newf(exitcode.Refused, "preflight refused the run, nothing was changed:\n  %s", strings.Join(lines, "\n  "))
		}
		r.findings = fs
	}
	resumed, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range r.findings {
		if f.Severity == preflight.Warn {
			r.emit(Event{Type: "preflight", Step: f.Step, Status: string(f.Severity), Message: f.String()})
		}
	}
	rep := r.execute(ctx)
	rep.Resumed = resumed
	return rep, exitcode.New(codeFor(rep.Status), reportErr(rep))
}

func reportErr(rep *Report) error {
	switch rep.Status {
	case StatusDone:
		return nil
	case StatusStopped:
		return fmt.Errorf("run %s stopped before step %s as asked; apply again to continue", rep.RunID, rep.Error)
	}
	if rep.Error != "" {
		return fmt.Errorf("run %s %s: %s", rep.RunID, rep.Status, rep.Error)
	}
	return fmt.Errorf("run %s %s", rep.RunID, rep.Status)
}

func codeFor(status string) exitcode.Code {
	switch status {
	case StatusDone:
		return exitcode.OK
	case StatusFailed:
		return exitcode.StepFailed
	case StatusRolledBack:
		return exitcode.RolledBack
	case StatusRollbackFailed:
		return exitcode.RollbackFailed
	case StatusInterrupted, StatusStopped:
		return exitcode.Interrupted
	case StatusAwaitingApproval:
		return exitcode.AwaitApproval
	}
	return exitcode.Internal
}

// open loads the journal and decides between resuming and starting a new run.
func (r *runner) open(ctx context.Context) (bool, error) {
	j, rev, err := r.Store.Load(ctx)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return false, exitcode.Newf(exitcode.Invalid, "%v; inspect it, then delete it to start over (progress is re-observed from the cluster)", err)
		}
		return false, err
	}
	rbDigest, pDigest := r.Runbook.Digest(), r.Params.Digest()
	resume := j != nil && !j.Finished() && j.ParamsDigest == pDigest && j.Runbook == r.Runbook.Name
	if resume && j.RunbookDigest != rbDigest && !r.AllowChanged {
		return false, exitcode.Newf(exitcode.Invalid,
			"the runbook changed since run %s started (%s, now %s): resume with --allow-changed if the change is intended", j.RunID, j.RunbookDigest, rbDigest)
	}
	if j != nil && !j.Finished() && !resume {
		return false, exitcode.Newf(exitcode.Invalid,
			"run %s of %s is unfinished (%s) with other params or another runbook: finish it (apply with the same params) or roll it back first",
			j.RunID, j.Runbook, j.Status)
	}
	if j != nil && !j.Finished() && j.Cluster != nil {
		if err := sameCluster("run "+j.RunID+" in "+r.Store.Describe(), *j.Cluster, r.Cluster); err != nil {
			return false, err
		}
	}
	if resume {
		r.j, r.rev = j, rev
		r.j.RunbookDigest = rbDigest
		r.j.Source = r.Source
		r.j.Status, r.j.Error, r.j.Holder = StatusRunning, "", r.Holder
		r.emit(Event{Type: "run.resume", Message: fmt.Sprintf("resuming run %s from %s", j.RunID, r.Store.Describe())})
	} else {
		if j != nil && j.Finished() {
			// Archived again before the journal is replaced: a run killed between
			// its last journal write and its archive would vanish from history.
			// Archiving is idempotent.
			if err := r.Store.Archive(ctx, j); err != nil {
				return false, fmt.Errorf("archive finished run %s before starting a new one: %w", j.RunID, err)
			}
		}
		now := time.Now().UTC()
		r.rev = rev
		r.j = &Journal{RunID: newRunID(now), Runbook: r.Runbook.Name, RunbookDigest: rbDigest, ParamsDigest: pDigest,
			Env: r.Env, Source: r.Source, Status: StatusRunning, Holder: r.Holder, StartedAt: now, Steps: map[string]*StepRecord{}}
		if r.Cluster.Known() {
			c := r.Cluster
			r.j.Cluster = &c
		}
		r.emit(Event{Type: "run.start", Message: fmt.Sprintf("run %s of %s", r.j.RunID, r.Runbook.Name)})
	}
	return resume, r.save(ctx)
}

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

func (r *runner) emit(e Event) {
	e.Time, e.RunID = time.Now().UTC(), r.j.RunID
	r.Events(e)
}

// save writes the journal with a compare-and-swap. After an interrupt the run's
// context is cancelled, but the journal must still be written: saves use a context
// detached from cancellation, bounded by its own timeout.
func (r *runner) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if r.Fence != nil {
		if err := r.Fence(); err != nil {
			return fmt.Errorf("save journal: %w", err)
		}
	}
	r.j.UpdatedAt = time.Now().UTC()
	rev, err := r.Store.Save(ctx, r.j, r.rev)
	if err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	r.rev = rev
	return nil
}

// bindings are the values the expressions of step st see now.
func (r *runner) bindings(st *runbooks.Step) runbooks.Bindings {
	steps := map[string]runbooks.StepResult{}
	for id, rec := range r.j.Steps {
		steps[id] = runbooks.StepResult{Status: rec.Status, Changed: rec.Changed, Outputs: typedOutputs(r.Runbook.StepByID(id), rec.Outputs)}
	}
	return runbooks.Bindings{Params: r.Params.Values, Env: r.Env, Run: runbooks.RunInfo{ID: r.j.RunID, StartedAt: r.j.StartedAt},
		Steps: steps, Funcs: r.Funcs, Step: st}
}

// typedOutputs converts outputs read back from the JSON journal (numbers as float64,
// durations as strings) to their declared types, so guards of a resumed run see an
// int as an int.
func typedOutputs(st *runbooks.Step, outs map[string]any) map[string]any {
	if st == nil || st.Decl == nil || len(outs) == 0 {
		return outs
	}
	typed := make(map[string]any, len(outs))
	for _, o := range st.Decl.Outputs {
		v, ok := outs[o.Name]
		if !ok || v == nil {
			continue
		}
		if c, err := value.Coerce(o.Type, v); err == nil {
			v = c
		}
		typed[o.Name] = v
	}
	return typed
}

func (r *runner) env(st *runbooks.Step) (map[string]any, error) { return r.Runbook.Env(r.bindings(st)) }

// execute runs the steps in order, then rollback (on failure) and cleanup.
func (r *runner) execute(ctx context.Context) *Report {
	failedAt := -1
	var failErr error
	for i, st := range r.Runbook.Steps {
		rec := r.j.step(st.ID)
		if rec.Status == StatusDone || rec.Status == StatusSkipped {
			continue // finished in an earlier invocation of this run
		}
		if r.holdBefore(ctx, st) {
			break
		}
		if err := r.settle(ctx, st, rec, r.step(ctx, st, rec)); err != nil {
			failedAt, failErr = i, err
			break
		}
		if r.j.Status != StatusRunning {
			break
		}
	}
	return r.finish(ctx, failedAt, failErr)
}

// holdBefore reports whether the run must stop before st starts, and
// records why in the journal: --stop-before, a signal, --deadline, or an
// operator who declined a point of no return.
func (r *runner) holdBefore(ctx context.Context, st *runbooks.Step) bool {
	switch {
	case st.ID == r.StopBefore, st.Group != "" && st.Group == r.StopBefore:
		r.j.Status, r.j.Error = StatusStopped, st.ID
	case ctx.Err() != nil:
		r.j.Status, r.j.Error = StatusInterrupted, "interrupted before step "+st.ID
	case !r.Deadline.IsZero() && time.Now().After(r.Deadline):
		r.j.Status, r.j.Error = StatusInterrupted, "--deadline reached before step "+st.ID
	case st.Decl != nil && st.Decl.PointOfNoReturn && r.Confirm != nil:
		ok, err := r.Confirm(st, fmt.Sprintf("Step %s (%s) is a point of no return: rollback cannot undo it. Continue?", st.ID, st.Action))
		if err == nil && ok {
			return false
		}
		r.j.Status, r.j.Error = StatusStopped, st.ID
	default:
		return false
	}
	return true
}

// settle records how a step ended. A safe-point stop (--deadline), a wait
// for approval and a signal leave the run resumable and return nil with the
// run's status changed; only a real failure is returned, for rollback.
func (r *runner) settle(ctx context.Context, st *runbooks.Step, rec *StepRecord, err error) error {
	stop := func(step, run, runMsg, eventType, eventMsg string) {
		rec.Status = step
		r.j.Status, r.j.Error = run, runMsg
		r.emit(Event{Type: eventType, Step: st.ID, Status: run, Message: eventMsg})
		_ = r.save(ctx)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, actions.ErrDeadline):
		msg := fmt.Sprintf("--deadline reached during step %s (stopped at a safe point)", st.ID)
		stop(StatusInterrupted, StatusInterrupted, msg, "step.fail", msg)
		return nil
	case errors.Is(err, actions.ErrAwaitApproval):
		msg := fmt.Sprintf("step %s waits for approval: runbook approve %s", st.ID, r.j.RunID)
		stop(StatusAwaitingApproval, StatusAwaitingApproval, msg, "step.wait", msg)
		return nil
	case ctx.Err() != nil:
		// A signal is not a failure: stop cleanly, keep everything for resume.
		rec.Error = err.Error()
		stop(StatusInterrupted, StatusInterrupted, fmt.Sprintf("interrupted during step %s", st.ID), "step.fail", err.Error())
		return nil
	}
	rec.Status, rec.Error = StatusFailed, err.Error()
	r.j.Status, r.j.Error = StatusFailed, fmt.Sprintf("step %s: %v", st.ID, err)
	r.emit(Event{Type: "step.fail", Step: st.ID, Status: StatusFailed, Message: err.Error()})
	if serr := r.save(ctx); serr != nil {
		r.j.Error += "; " + serr.Error()
	}
	return err
}

// finish closes the run: roll back after a failure if the step asks for it,
// run cleanups, save, archive a finished journal, and build the report.
func (r *runner) finish(ctx context.Context, failedAt int, failErr error) *Report {
	if r.j.Status == StatusRunning {
		r.j.Status = StatusDone
	}
	var leftToDo []string
	if failedAt >= 0 && r.Runbook.Steps[failedAt].EffectiveOnFailure(r.Runbook) == runbooks.Rollback {
		leftToDo = r.rollback(ctx, failedAt, failErr)
	}
	r.cleanup(ctx)
	if err := r.save(ctx); err != nil && r.j.Error == "" {
		r.j.Error = err.Error()
	}
	if r.j.Finished() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := r.Store.Archive(actx, r.j); err != nil {
			r.emit(Event{Type: "run.archive", Message: err.Error()})
		}
		cancel()
	}
	r.emit(Event{Type: "run.end", Status: r.j.Status, Message: r.j.Error})
	return r.report(leftToDo)
}

// step runs one step's lifecycle: when → require → apply → until → assert.
func (r *runner) step(ctx context.Context, st *runbooks.Step, rec *StepRecord) error {
	g := applyGuards(r, st, rec)
	env, err := g.env()
	if err != nil {
		return err
	}
	if skipped, err := r.preconditions(ctx, g, env, rec); skipped || err != nil {
		return err
	}
	with, err := st.With.Render(ctx, env)
	if err != nil {
		return err
	}
	if err := r.markStarted(ctx, st, rec); err != nil {
		return err
	}
	stepCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	out, err := r.act(ctx, stepCtx, st, rec, with)
	if err != nil {
		// As is: actions name themselves in their errors, and execute tells a
		// wait for approval or the deadline from a failure with errors.Is.
		return err
	}
	rec.Changed = rec.Changed || out.Changed
	// Stored in their JSON form (durations as "5m0s"), typed again on every read.
	rec.Outputs, rec.Message = value.JSONMap(out.Outputs), out.Message
	if err := r.postconditions(ctx, stepCtx, g); err != nil {
		return err
	}
	fin := time.Now().UTC()
	rec.Status, rec.FinishedAt, rec.Error = StatusDone, &fin, ""
	r.emit(Event{Type: "step.done", Step: st.ID, Status: StatusDone, Changed: out.Changed, Message: out.Message})
	return r.save(ctx)
}

// preconditions decide when and require before the step acts. A false when
// skips the step, journalled as decided (skipped reports it, err the save); a
// false require fails it with nothing changed.
func (r *runner) preconditions(ctx context.Context, g *guards, env map[string]any, rec *StepRecord) (skipped bool, err error) {
	d, err := g.decide(ctx, guardWhen, env)
	if err != nil {
		return false, err
	}
	if d.outcome == guardFalse {
		rec.Status, rec.Message = StatusSkipped, d.why
		r.emit(Event{Type: "step.skip", Step: g.step.ID, Status: StatusSkipped, Message: rec.Message})
		return true, r.save(ctx)
	}
	d, err = g.decide(ctx, guardRequire, env)
	if err != nil {
		return false, err
	}
	if d.outcome == guardFalse {
		return false, errors.New(d.why)
	}
	return false, nil
}

// markStarted journals the step in flight before it acts: a crash from here on
// resumes this step, whose action re-observes the cluster and converges.
func (r *runner) markStarted(ctx context.Context, st *runbooks.Step, rec *StepRecord) error {
	now := time.Now().UTC()
	if rec.StartedAt == nil {
		rec.StartedAt = &now
	}
	rec.Status = StatusRunning
	rec.Attempts++
	if err := r.save(ctx); err != nil {
		return err
	}
	r.emit(Event{Type: "step.start", Step: st.ID, Status: StatusRunning, Message: st.Name})
	return nil
}

// act applies the step's action within stepCtx (the step's timeout). A pause in
// an interactive run asks at once, and on yes journals who approved (with ctx,
// like every journal write) before applying again; otherwise ErrAwaitApproval
// ends the invocation until `runbook approve`.
func (r *runner) act(ctx, stepCtx context.Context, st *runbooks.Step, rec *StepRecord, with map[string]any) (actions.Outcome, error) {
	call := &actions.Call{RunID: r.j.RunID, StepID: st.ID, With: with, Given: st.With.Given(), Prior: rec.Record, Recorder: &recorder{r: r, rec: rec}, Deadline: r.Deadline}
	out, err := r.Impls[st.Action].Apply(stepCtx, call)
	if errors.Is(err, actions.ErrAwaitApproval) && r.Confirm != nil {
		msg, _ := with["message"].(string)
		ok, cerr := r.Confirm(st, nonEmpty(msg, "Continue?"))
		if cerr != nil || !ok {
			return actions.Outcome{}, actions.ErrAwaitApproval
		}
		if err := call.Recorder.Intent(ctx, "approvedBy", r.Holder+" (interactive)"); err != nil {
			return actions.Outcome{}, err
		}
		call.Prior = rec.Record
		out, err = r.Impls[st.Action].Apply(stepCtx, call)
	}
	return out, err
}

// postconditions judge what the step did: until waits for it within stepCtx
// (the step's timeout), then assert decides, against the journal as the step
// left it, once the guard functions' cache has caught up (settleAssert).
func (r *runner) postconditions(ctx, stepCtx context.Context, g *guards) error {
	if _, err := g.waitUntil(stepCtx, r.Changes); err != nil {
		return err
	}
	d, err := g.settleAssert(ctx, r.Changes)
	if err != nil {
		return err
	}
	if d.outcome == guardFalse {
		return errors.New(d.why)
	}
	return nil
}

// rollback undoes completed steps in reverse order, from the failed step down, never
// across a point of no return. It returns what a human must still do.
func (r *runner) rollback(ctx context.Context, failedAt int, cause error) []string {
	if ctx.Err() != nil {
		return nil // never on interrupt
	}
	if err := r.fenced(); err != nil {
		r.emit(Event{Type: "rollback", Message: "not rolled back: " + err.Error()})
		return nil
	}
	var left []string
	ran := false
	for i := failedAt; i >= 0; i-- {
		st := r.Runbook.Steps[i]
		rec := r.j.step(st.ID)
		if st.Decl != nil && st.Decl.PointOfNoReturn && rec.Status == StatusDone {
			r.emit(Event{Type: "rollback", Step: st.ID, Message: "point of no return: rollback stops here"})
			break
		}
		switch rec.Status {
		case StatusDone, StatusFailed, StatusRunning, StatusInterrupted:
		default:
			continue
		}
		if rec.StartedAt == nil {
			continue // failed its guards before acting: nothing to undo
		}
		if st.Rollback == runbooks.RollbackNone {
			continue
		}
		ran = true
		msg, err := r.rollbackStep(ctx, st, rec)
		if err != nil {
			rec.Rollback = "failed: " + err.Error()
			left = append(left, fmt.Sprintf("step %s: rollback failed: %v", st.ID, err))
		} else {
			rec.Rollback = msg
		}
		r.emit(Event{Type: "rollback", Step: st.ID, Message: rec.Rollback})
		_ = r.save(ctx)
	}
	switch {
	case len(left) > 0:
		r.j.Status = StatusRollbackFailed
	case ran:
		r.j.Status = StatusRolledBack
	}
	if cause != nil && !ran {
		r.emit(Event{Type: "rollback", Message: "nothing to roll back"})
	}
	return left
}

func (r *runner) rollbackStep(ctx context.Context, st *runbooks.Step, rec *StepRecord) (string, error) {
	env, err := r.env(st)
	if err != nil {
		return "", err
	}
	if st.Rollback == runbooks.RollbackAuto {
		inv, ok := r.Impls[st.Action].(actions.Inverter)
		if !ok {
			return "", fmt.Errorf("action %s has no inverse in this build", st.Action)
		}
		with, err := st.With.Render(ctx, env)
		if err != nil {
			return "", err
		}
		out, err := inv.Invert(ctx, &actions.Call{RunID: r.j.RunID, StepID: st.ID, With: with, Given: st.With.Given(), Prior: rec.Record, Recorder: &recorder{r: r, rec: rec}})
		if err != nil {
			return "", err
		}
		if out.Kept != "" {
			return "kept: " + out.Kept, nil
		}
		return nonEmpty(out.Message, "undone"), nil
	}
	var msgs []string
	for i, h := range st.RollbackHooks {
		if err := r.runHook(ctx, env, st, rec, h); err != nil {
			return "", fmt.Errorf("rollback hook %d (%s): %w", i, h.Action, err)
		}
		msgs = append(msgs, h.Action)
	}
	return "ran " + strings.Join(msgs, ", "), nil
}

func (r *runner) runHook(ctx context.Context, env map[string]any, st *runbooks.Step, rec *StepRecord, h *runbooks.Hook) error {
	with, err := h.With.Render(ctx, env)
	if err != nil {
		return err
	}
	impl := r.Impls[h.Action]
	if impl == nil {
		return fmt.Errorf("action %s is not implemented in this build", h.Action)
	}
	_, err = impl.Apply(ctx, &actions.Call{RunID: r.j.RunID, StepID: st.ID, With: with, Given: h.With.Given(), Prior: rec.Record, Recorder: &recorder{r: r, rec: rec}})
	return err
}

// cleanup runs the cleanup hooks of every step that started, in reverse order,
// whatever the outcome — also after an interrupt, with a fresh bounded context.
// fenced is the fence's verdict. A run that lost its lock must not act any more,
// not even to roll back or clean up: another holder may be running this very run
// (a holder paused past its lease wakes up while its successor verifies in the
// same namespace), and the journal that holder resumes from keeps what is left to
// undo or clean up.
func (r *runner) fenced() error {
	if r.Fence == nil {
		return nil
	}
	return r.Fence()
}

func (r *runner) cleanup(ctx context.Context) {
	if err := r.fenced(); err != nil {
		r.emit(Event{Type: "cleanup", Message: "skipped: " + err.Error()})
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for i := len(r.Runbook.Steps) - 1; i >= 0; i-- {
		st := r.Runbook.Steps[i]
		rec := r.j.Steps[st.ID]
		if rec == nil || rec.Status == StatusPending || rec.Status == StatusSkipped {
			continue
		}
		env, err := r.env(st)
		if err != nil {
			continue
		}
		if cl, ok := r.Impls[st.Action].(actions.Cleaner); ok {
			with, rerr := st.With.Render(ctx, env)
			if rerr == nil {
				rerr = cl.Cleanup(cctx, &actions.Call{RunID: r.j.RunID, StepID: st.ID, With: with, Given: st.With.Given(), Prior: rec.Record, Recorder: &recorder{r: r, rec: rec}})
			}
			r.cleanupResult(st, rerr)
		}
		for _, h := range st.CleanupHooks {
			r.cleanupResult(st, r.runHook(cctx, env, st, rec, h))
		}
	}
}

func (r *runner) cleanupResult(st *runbooks.Step, err error) {
	if err != nil {
		msg := fmt.Sprintf("step %s: cleanup failed: %v", st.ID, err)
		if r.j.Error == "" {
			r.j.Error = msg
		} else {
			r.j.Error += "; " + msg
		}
		r.emit(Event{Type: "cleanup", Step: st.ID, Message: msg})
		return
	}
	r.emit(Event{Type: "cleanup", Step: st.ID, Message: "cleaned up"})
}

func (r *runner) report(left []string) *Report {
	rep := &Report{RunID: r.j.RunID, Runbook: r.j.Runbook, RunbookDigest: r.j.RunbookDigest, ParamsDigest: r.j.ParamsDigest,
		Env: r.j.Env, Source: r.j.Source, StartedAt: r.j.StartedAt, Status: r.j.Status, Error: r.j.Error, LeftToDo: left, Preflight: r.findings}
	for _, st := range r.Runbook.Steps {
		rec := r.j.step(st.ID)
		sr := StepReport{ID: st.ID, Action: st.Action, Status: rec.Status, Changed: rec.Changed, Message: rec.Message, Error: rec.Error, Rollback: rec.Rollback}
		if rec.StartedAt != nil && rec.FinishedAt != nil {
			sr.Duration = rec.FinishedAt.Sub(*rec.StartedAt)
		}
		rep.Steps = append(rep.Steps, sr)
	}
	return rep
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// recorder persists an action's intents and created objects before it acts.
type recorder struct {
	r   *runner
	rec *StepRecord
}

func (w *recorder) Intent(ctx context.Context, key, value string) error {
	if w.rec.Intent == nil {
		w.rec.Intent = map[string]string{}
	}
	w.rec.Intent[key] = value
	return w.r.save(ctx)
}

func (w *recorder) Created(ctx context.Context, ref actions.ObjectRef) error {
	for _, c := range w.rec.Created {
		if c == ref {
			return nil
		}
	}
	w.rec.Created = append(w.rec.Created, ref)
	return w.r.save(ctx)
}

// RollbackRun runs the rollback hooks of an unfinished run (stopped, failed with
// onFailure: stop, or interrupted) in reverse order, then its cleanup hooks.
func RollbackRun(ctx context.Context, o Options) (*Report, error) {
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	j, rev, err := o.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if j == nil || j.Finished() {
		return nil, exitcode.Newf(exitcode.Invalid, "no unfinished run of %s in %s to roll back", o.Runbook.Name, o.Store.Describe())
	}
	if j.ParamsDigest != o.Params.Digest() || j.Runbook != o.Runbook.Name {
		return nil, exitcode.Newf(exitcode.Invalid, "run %s was started with other params or another runbook: pass the same -f/--set", j.RunID)
	}
	if j.RunbookDigest != o.Runbook.Digest() && !o.AllowChanged {
		return nil, exitcode.Newf(exitcode.Invalid, "the runbook changed since run %s started: pass --allow-changed to roll back with this version", j.RunID)
	}
	r := &runner{Options: o, j: j, rev: rev}
	last := -1
	for i, st := range o.Runbook.Steps {
		if rec := j.Steps[st.ID]; rec != nil && rec.Status != StatusPending && rec.Status != StatusSkipped {
			last = i
		}
	}
	r.j.Holder = o.Holder
	r.emit(Event{Type: "rollback", Message: fmt.Sprintf("rolling back run %s", j.RunID)})
	var left []string
	if last >= 0 {
		left = r.rollback(ctx, last, nil)
	}
	if r.j.Status != StatusRollbackFailed {
		r.j.Status = StatusRolledBack
	}
	r.cleanup(ctx)
	if err := r.save(ctx); err != nil {
		return nil, err
	}
	if r.j.Finished() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = o.Store.Archive(actx, r.j)
		cancel()
	}
	rep := r.report(left)
	return rep, exitcode.New(codeFor(rep.Status), reportErr(rep))
}
