package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/plans"
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
	rb := o.Runbook
	p := &Plan{Format: PlanFormat, Runbook: rb.Name, RunbookDigest: rb.Digest(), ParamsDigest: o.Params.Digest(),
		Params: value.JSONMap(o.Params.Values), Env: o.Env, Source: o.Source, CreatedAt: time.Now().UTC(), Cluster: o.Cluster}
	j, _, err := o.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	steps := map[string]runbooks.StepResult{}
	started := map[string]bool{} // in flight in the run apply resumes: its guards are not decided again
	if j != nil && !j.Finished() && j.ParamsDigest == p.ParamsDigest && j.Runbook == rb.Name {
		p.Resumes = j.RunID
		for id, rec := range j.Steps {
			if rec.Status == StatusDone || rec.Status == StatusSkipped {
				steps[id] = runbooks.StepResult{Status: rec.Status, Changed: rec.Changed, Outputs: typedOutputs(rb.StepByID(id), rec.Outputs)}
			} else if rec.StartedAt != nil {
				started[id] = true
			}
		}
	}
	// changing holds the steps planned to change the cluster (or not known yet):
	// anything that reads them, or runs after them, is known only after apply.
	var changing []string
	for _, st := range rb.Steps {
		ps := PlannedStep{ID: st.ID, Action: st.Action, PointOfNoReturn: st.Decl != nil && st.Decl.PointOfNoReturn}
		if r, ok := steps[st.ID]; ok {
			ps.Change = plans.Done
			if r.Status == StatusSkipped {
				ps.Change = plans.Skip
			}
			p.Steps = append(p.Steps, ps)
			continue
		}
		after := len(changing) > 0
		env, err := rb.Env(runbooks.Bindings{Params: o.Params.Values, Env: o.Env, Steps: planBindings(rb, steps, st), Funcs: o.Funcs})
		if err != nil {
			return nil, err
		}
		dependsOnApply := func(e *runbooks.Expr) bool {
			for _, id := range e.Steps {
				if slices.Contains(changing, id) {
					return true
				}
			}
			return false
		}
		if started[st.ID] {
			ps.Details = append(ps.Details, "resumes: started in run "+j.RunID+", so its when/require are not decided again")
		}
		if st.When != nil && !started[st.ID] {
			if dependsOnApply(st.When) {
				ps.KnownAfterApply = true
				ps.Details = append(ps.Details, "runs if, after the earlier steps: "+st.When.Source)
			} else if ok, err := st.When.Eval(ctx, env); err != nil {
				ps.Change, ps.Refusal = plans.Refused, err.Error()
				p.Steps = append(p.Steps, ps)
				continue
			} else if !ok {
				ps.Change = plans.Skip
				ps.Details = append(ps.Details, "when is false: "+st.When.Source)
				p.Steps = append(p.Steps, ps)
				continue
			}
		}
		if st.Require != nil && !started[st.ID] {
			if after || dependsOnApply(st.Require) {
				ps.Details = append(ps.Details, "precondition checked at apply, after the earlier steps: "+st.Require.Source)
			} else if ok, err := st.Require.Eval(ctx, env); err != nil || !ok {
				ps.Change, ps.Refusal = plans.Refused, fmt.Sprintf("precondition is false now: require: %s", st.Require.Source)
				if err != nil {
					ps.Refusal = err.Error()
				}
				p.Steps = append(p.Steps, ps)
				continue
			}
		}
		withDepends := false
		for _, id := range st.With.StepRefs() {
			withDepends = withDepends || slices.Contains(changing, id)
		}
		if withDepends {
			ps.Change, ps.KnownAfterApply = plans.Unknown, true
			ps.Details = append(ps.Details, "parameters depend on earlier steps' outputs: known after apply")
			changing = append(changing, st.ID)
			p.Steps = append(p.Steps, ps)
			continue
		}
		with, err := st.With.Render(ctx, env)
		if err != nil {
			ps.Change, ps.Refusal = plans.Refused, err.Error()
			p.Steps = append(p.Steps, ps)
			continue
		}
		ps.With = value.JSONMap(with)
		planner, ok := o.Impls[st.Action].(actions.Planner)
		if !ok {
			ps.Change = plans.Unknown
			ps.Details = append(ps.Details, "action "+st.Action+" cannot plan: known after apply")
			changing = append(changing, st.ID)
			p.Steps = append(p.Steps, ps)
			continue
		}
		pl, err := planner.Plan(ctx, &actions.Call{StepID: st.ID, With: with, Given: st.With.Given()})
		switch {
		case err != nil && after:
			// Planned against a state earlier steps will change: not a finding yet.
			ps.Change = plans.Unknown
			ps.Details = append(ps.Details, "checked at apply, after the earlier steps (now: "+err.Error()+")")
		case err != nil:
			ps.Change, ps.Refusal = plans.Refused, err.Error()
		default:
			ps.Change, ps.Details, ps.Warnings, ps.Facts = pl.Change, append(ps.Details, pl.Details...), pl.Warnings, pl.Facts
			for _, f := range pl.Findings {
				f.Step = nonEmpty(f.Step, st.ID)
				p.Preflight = append(p.Preflight, f)
			}
		}
		if ps.Change != plans.None && ps.Change != plans.Check && ps.Change != plans.Refused {
			changing = append(changing, st.ID)
		}
		p.Steps = append(p.Steps, ps)
	}
	if o.Preflight != nil {
		p.Preflight = append(p.Preflight, o.Preflight(ctx, preflightSteps(ctx, o, steps))...)
		preflight.Sort(p.Preflight)
	}
	return p, nil
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
		for _, id := range st.With.StepRefs() {
			_, ok := done[id]
			known = known && ok
		}
		if known {
			env, err := rb.Env(runbooks.Bindings{Params: o.Params.Values, Env: o.Env, Steps: planBindings(rb, done, st), Funcs: o.Funcs})
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
