package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/poolsahead"
	"github.com/runbookdev/runbook/internal/preflight"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/runbooks"
)

// PlanFormat versions the saved plan.
const PlanFormat = 1

// Plan is what apply would do, computed read-only. Saved with `plan --out`, it is the
// reviewed artefact `apply --plan` executes: apply refuses when the runbook, params
// or any fact the plan relied on has changed since.
type Plan struct {
	Format        int            `json:"format"`
	Runbook       string         `json:"runbook"`
	RunbookDigest string         `json:"runbookDigest"`
	ParamsDigest  string         `json:"paramsDigest"`
	Params        map[string]any `json:"params"`
	Env           string         `json:"env,omitempty"`
	Source        *Source        `json:"source,omitempty"`
	CreatedAt     time.Time      `json:"createdAt"`
	Steps         []PlannedStep  `json:"steps"`
	// Resumes names the unfinished run apply would continue, if any.
	Resumes string `json:"resumes,omitempty"`
	// Lock is the Lease apply will hold (namespace/name): one per cluster.
	Lock string `json:"lock,omitempty"`
	// Cluster is the cluster the plan was made on; apply --plan refuses another.
	Cluster ClusterIdentity `json:"cluster"`
	// Preflight are the findings of the preflight checks (Options.Preflight) and of
	// the actions' planners over the steps still to run; a blocking one refuses
	// the plan.
	Preflight []preflight.Finding `json:"preflight,omitempty"`
}

// PlannedStep is one step of a plan.
type PlannedStep struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	// Change is the planner's, or the engine's own: plans.Skip (when is false),
	// Done (already done in the run being resumed), Unknown (known after apply) or
	// Refused.
	Change          plans.Change   `json:"change"`
	With            map[string]any `json:"with,omitempty"`
	Details         []string       `json:"details,omitempty"`
	Warnings        []string       `json:"warnings,omitempty"`
	Facts           []string       `json:"facts,omitempty"`
	Refusal         string         `json:"refusal,omitempty"`
	KnownAfterApply bool           `json:"knownAfterApply,omitempty"`
	PointOfNoReturn bool           `json:"pointOfNoReturn,omitempty"`
}

// Changes counts the steps that would change the cluster.
func (p *Plan) Changes() int {
	n := 0
	for _, s := range p.Steps {
		if s.Change.Mutates() {
			n++
		}
	}
	return n
}

// Refusals lists the blocking findings.
func (p *Plan) Refusals() []string {
	var out []string
	for _, s := range p.Steps {
		if s.Refusal != "" {
			out = append(out, fmt.Sprintf("step %s: %s", s.ID, s.Refusal))
		}
	}
	for _, f := range preflight.Blocking(p.Preflight) {
		out = append(out, "preflight "+f.String())
	}
	return out
}

// MakePlan observes the cluster read-only and says what each step would do. A step
// whose inputs depend on an earlier step that will change something is planned
// against the current state and marked; its precondition is checked at apply time.
func MakePlan(ctx context.Context, o Options) (*Plan, error) {
	pl, err := startPlan(ctx, o)
	if err != nil {
		return nil, err
	}
	for _, st := range o.Runbook.Steps {
		ps, err := pl.planStep(ctx, st)
		if err != nil {
			return nil, err
		}
		pl.p.Steps = append(pl.p.Steps, ps)
	}
	if o.Preflight != nil {
		// Steps the plan skips (their when is false now) do not run: not checked.
		settled := maps.Clone(pl.known)
		for _, ps := range pl.p.Steps {
			if ps.Change == plans.Skip {
				settled[ps.ID] = runbooks.StepResult{Status: StatusSkipped}
			}
		}
		pl.p.Preflight = append(pl.p.Preflight, o.Preflight(ctx, preflightSteps(ctx, o, settled))...)
		preflight.Sort(pl.p.Preflight)
	}
	return pl.p, nil
}

// planning is MakePlan's state as it walks the steps in order.
type planning struct {
	o Options
	p *Plan
	// known are the steps done or skipped in the run apply resumes: not planned again.
	known map[string]runbooks.StepResult
	// started are in flight in the run apply resumes: their guards are not decided again.
	started map[string]bool
	// changing holds the steps planned to change the cluster (or not known yet):
	// anything that reads them, or runs after them, is known only after apply.
	changing []string
	// ahead is the pools as the steps planned so far leave them: each planner
	// judges its step against that, not against the cluster as it is now.
	ahead *poolsahead.Model
}

// startPlan heads the plan and reads the run apply would resume, so the plan
// shows what that run still has to do rather than a fresh run.
func startPlan(ctx context.Context, o Options) (*planning, error) {
	rb := o.Runbook
	p := &Plan{Format: PlanFormat, Runbook: rb.Name, RunbookDigest: rb.Digest(), ParamsDigest: o.Params.Digest(),
		Params: value.JSONMap(o.Params.Values), Env: o.Env, Source: o.Source, CreatedAt: time.Now().UTC(), Cluster: o.Cluster}
	j, _, err := o.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	pl := &planning{o: o, p: p, known: map[string]runbooks.StepResult{}, started: map[string]bool{}, ahead: poolsahead.New()}
	if j != nil && !j.Finished() && j.ParamsDigest == p.ParamsDigest && j.Runbook == rb.Name {
		p.Resumes = j.RunID
		for id, rec := range j.Steps {
			if rec.Status == StatusDone || rec.Status == StatusSkipped {
				pl.known[id] = runbooks.StepResult{Status: rec.Status, Changed: rec.Changed, Outputs: typedOutputs(rb.StepByID(id), rec.Outputs)}
			} else if rec.StartedAt != nil {
				pl.started[id] = true
			}
		}
	}
	return pl, nil
}

// planStep says what one step would do: its guards first, as apply decides
// them, then its action's planner. Only an environment that cannot be built
// fails the whole plan; anything else the step refuses is shown on the step.
func (pl *planning) planStep(ctx context.Context, st *runbooks.Step) (PlannedStep, error) {
	ps := PlannedStep{ID: st.ID, Action: st.Action, PointOfNoReturn: st.Decl != nil && st.Decl.PointOfNoReturn}
	if r, ok := pl.known[st.ID]; ok {
		ps.Change = plans.Done
		if r.Status == StatusSkipped {
			ps.Change = plans.Skip
		}
		return ps, nil
	}
	g := planGuards(pl.o, pl.known, st, pl.started[st.ID], pl.changing)
	env, err := g.env()
	if err != nil {
		return ps, err
	}
	if decided := pl.decideGuards(ctx, g, env, &ps); decided {
		return ps, nil
	}
	with := pl.planAction(ctx, g, env, &ps)
	if ps.Change != plans.Refused && st.Decl != nil {
		// What this step does to its pools is what the next steps are planned on.
		if err := pl.ahead.Step(st.ID, st.Decl.PoolParams(), with); err != nil {
			ps.Change, ps.Refusal = plans.Refused, err.Error()
		}
	}
	// A step that may change the cluster makes what comes after it known only
	// after apply; one that changes nothing, or is refused, does not.
	if ps.Change != plans.None && ps.Change != plans.Check && ps.Change != plans.Refused {
		pl.changing = append(pl.changing, st.ID)
		if st.Group != "" {
			// Expressions read a forEach step by its group's id.
			pl.changing = append(pl.changing, st.Group)
		}
	}
	return ps, nil
}

// decideGuards decides when and require as far as they are known now. decided
// reports that they settled the step (skipped or refused): its action is not
// planned.
func (pl *planning) decideGuards(ctx context.Context, g *guards, env map[string]any, ps *PlannedStep) (decided bool) {
	if g.started {
		ps.Details = append(ps.Details, "resumes: started in run "+pl.p.Resumes+", so its when/require are not decided again")
	}
	d, err := g.decide(ctx, guardWhen, env)
	switch {
	case err != nil:
		ps.Change, ps.Refusal = plans.Refused, err.Error()
		return true
	case d.outcome == guardFalse:
		ps.Change = plans.Skip
		ps.Details = append(ps.Details, d.why)
		return true
	case d.outcome == guardDeferred:
		ps.KnownAfterApply = true
		ps.Details = append(ps.Details, d.why)
	}
	d, err = g.decide(ctx, guardRequire, env)
	switch {
	case err != nil:
		ps.Change, ps.Refusal = plans.Refused, err.Error()
		return true
	case d.outcome == guardFalse:
		ps.Change, ps.Refusal = plans.Refused, d.why
		return true
	case d.outcome == guardDeferred:
		ps.Details = append(ps.Details, d.why)
	}
	return false
}

// planAction renders the step's parameters and asks its action's planner.
// Parameters that read a changing step, an action that cannot plan, and a
// planner's refusal after a change are known only after apply, not refused: the
// earlier steps may make them good. It returns the rendered parameters (nil
// when they are known only after apply).
func (pl *planning) planAction(ctx context.Context, g *guards, env map[string]any, ps *PlannedStep) map[string]any {
	st := g.step
	if g.readsUnknown(st.With.StepRefs()) {
		ps.Change, ps.KnownAfterApply = plans.Unknown, true
		ps.Details = append(ps.Details, "parameters depend on earlier steps' outputs: known after apply")
		return nil
	}
	with, err := st.With.Render(ctx, env)
	if err != nil {
		ps.Change, ps.Refusal = plans.Refused, err.Error()
		return nil
	}
	ps.With = value.JSONMap(with)
	planner, ok := pl.o.Impls[st.Action].(actions.Planner)
	if !ok {
		ps.Change = plans.Unknown
		ps.Details = append(ps.Details, "action "+st.Action+" cannot plan: known after apply")
		return with
	}
	res, err := planner.Plan(ctx, &actions.Call{StepID: st.ID, With: with, Given: st.With.Given(), Ahead: pl.ahead})
	switch {
	case err != nil && len(pl.changing) > 0:
		// Planned against a state earlier steps will change: not a finding yet.
		ps.Change = plans.Unknown
		ps.Details = append(ps.Details, "checked at apply, after the earlier steps (now: "+err.Error()+")")
	case err != nil:
		ps.Change, ps.Refusal = plans.Refused, err.Error()
	default:
		ps.Change, ps.Details, ps.Warnings, ps.Facts = res.Change, append(ps.Details, res.Details...), res.Warnings, res.Facts
		for _, f := range res.Findings {
			f.Step = nonEmpty(f.Step, st.ID)
			pl.p.Preflight = append(pl.p.Preflight, f)
		}
	}
	return with
}

// preflightSteps are the steps still to run (those not done or skipped in the run
// being resumed), with their parameters rendered where they do not read the
// outputs of a step that has not run yet.
func preflightSteps(ctx context.Context, o Options, done map[string]runbooks.StepResult) []preflight.Step {
	rb := o.Runbook
	var out []preflight.Step
	for _, st := range rb.Steps {
		if _, ok := done[st.ID]; ok {
			continue
		}
		ps := preflight.Step{ID: st.ID, Pools: st.Decl.PoolParams()}
		known := true
		for _, ref := range st.With.StepRefs() {
			ids, group := rb.Instances(ref) // a forEach step is known once every item is
			if !group {
				ids = []string{ref}
			}
			for _, id := range ids {
				_, ok := done[id]
				known = known && ok
			}
		}
		if known {
			env, err := rb.Env(runbooks.Bindings{Params: o.Params.Values, Env: o.Env, Steps: planBindings(rb, done, st), Funcs: o.Funcs, Step: st})
			if err == nil {
				if with, err := st.With.Render(ctx, env); err == nil {
					ps.With = with
				}
			}
		}
		out = append(out, ps)
	}
	return out
}

// runPreflight runs the preflight checks over the steps a fresh or resumed run
// still has to run (a resumed run re-checks only what its remaining steps need).
func runPreflight(ctx context.Context, o Options) ([]preflight.Finding, error) {
	j, _, err := o.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	done := map[string]runbooks.StepResult{}
	if j != nil && !j.Finished() && j.ParamsDigest == o.Params.Digest() && j.Runbook == o.Runbook.Name {
		for id, rec := range j.Steps {
			if rec.Status == StatusDone || rec.Status == StatusSkipped {
				done[id] = runbooks.StepResult{Status: rec.Status, Changed: rec.Changed, Outputs: typedOutputs(o.Runbook.StepByID(id), rec.Outputs)}
			}
		}
	}
	return o.Preflight(ctx, preflightSteps(ctx, o, done)), nil
}

// planBindings presents earlier steps as done, so guards like
// `steps.verify.status == "done"` plan the success path.
func planBindings(rb *runbooks.Runbook, known map[string]runbooks.StepResult, upTo *runbooks.Step) map[string]runbooks.StepResult {
	out := map[string]runbooks.StepResult{}
	for _, s := range rb.Steps {
		if s == upTo {
			break
		}
		if r, ok := known[s.ID]; ok {
			out[s.ID] = r
			continue
		}
		out[s.ID] = runbooks.StepResult{Status: StatusDone}
	}
	return out
}

// SavePlan writes a plan for apply --plan.
func SavePlan(path string, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return WritePrivateFile(path, append(b, '\n'))
}

// LoadPlan reads a saved plan.
func LoadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "read plan: %v", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "plan %s: %v", path, err)
	}
	if p.Format != PlanFormat {
		return nil, exitcode.Newf(exitcode.Invalid, "plan %s has format %d, this runbook reads %d", path, p.Format, PlanFormat)
	}
	return &p, nil
}

// CheckDrift compares a saved plan with a fresh one: the runbook, the params and
// every fact the saved plan relied on must be unchanged (pod lists are not facts).
func CheckDrift(saved, fresh *Plan) error {
	var drift []string
	if saved.RunbookDigest != fresh.RunbookDigest {
		drift = append(drift, fmt.Sprintf("the runbook changed (%s → %s)", short(saved.RunbookDigest), short(fresh.RunbookDigest)))
	}
	if saved.ParamsDigest != fresh.ParamsDigest {
		drift = append(drift, fmt.Sprintf("the params changed (%s → %s)", short(saved.ParamsDigest), short(fresh.ParamsDigest)))
	}
	if saved.Env != fresh.Env {
		// Same params, another environment: the plan was reviewed for other clusters.
		drift = append(drift, fmt.Sprintf("the environment changed (%q → %q)", saved.Env, fresh.Env))
	}
	if len(drift) == 0 {
		for i, s := range saved.Steps {
			if i >= len(fresh.Steps) {
				break
			}
			f := fresh.Steps[i]
			if s.Change != f.Change && !(s.Change == plans.Done || f.Change == plans.Done) {
				drift = append(drift, fmt.Sprintf("step %s: planned %s, now %s", s.ID, s.Change, f.Change))
			}
			if strings.Join(s.Facts, "\n") != strings.Join(f.Facts, "\n") && f.Change != plans.Done {
				drift = append(drift, fmt.Sprintf("step %s: facts changed: %s", s.ID, diffFacts(s.Facts, f.Facts)))
			}
		}
	}
	if len(drift) > 0 {
		return exitcode.Newf(exitcode.PlanDrift, "the saved plan no longer matches; plan again and review:\n  %s", strings.Join(drift, "\n  "))
	}
	return nil
}

func diffFacts(a, b []string) string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, "was "+x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, "now "+x)
		}
	}
	return strings.Join(out, "; ")
}

func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
