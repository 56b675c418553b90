package actions

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/podmove"
	"github.com/runbookdev/runbook/internal/textlist"
)

// deletePodsInPoolImpl moves every pod off a pool (internal/podmove does the work).
type deletePodsInPoolImpl struct {
	env  *poolEnv
	kube kubernetes.Interface
	dyn  dynamic.Interface
	// life bounds the pod cache: the lifetime Bind was given.
	life context.Context

	mu    sync.Mutex
	cache *podmove.Cache
}

func newDeletePodsInPool(ctx context.Context, env *poolEnv, c *Cluster) *deletePodsInPoolImpl {
	a := &deletePodsInPoolImpl{env: env, life: ctx}
	if c != nil {
		a.kube, a.dyn = c.Kube, c.Dynamic
	}
	return a
}

// podCache starts the watches of pods, budgets and workloads on first use (a
// runbook without this step pays nothing) and keeps them for later steps and runs
// of the same process.
func (a *deletePodsInPoolImpl) podCache() (*podmove.Cache, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache != nil {
		return a.cache, nil
	}
	if a.kube == nil {
		return nil, ErrNoCluster
	}
	c, err := podmove.NewCache(a.life, a.kube)
	if err != nil {
		return nil, err
	}
	a.cache = c
	return c, nil
}

// close stops the pod cache, if it was started.
func (a *deletePodsInPoolImpl) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache != nil {
		a.cache.Close()
		a.cache = nil
	}
}

// prepare reads the parameters and the pools. pools.old nil means the pool does
// not exist (nothing to move).
func (a *deletePodsInPoolImpl) prepare(ctx context.Context, c *Call) (podMoveInput, podMovePools, error) {
	in, err := podMoveParams(c)
	if err != nil {
		return in, podMovePools{}, fmt.Errorf("deletePodsInPool: %w", err)
	}
	cal, err := a.env.client()
	if err != nil {
		return in, podMovePools{}, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	// c.Ahead (plan only): judged against the pools the earlier steps leave.
	pools, err := resolvePools(ctx, c.Ahead.Client(cal), in)
	if err != nil {
		return in, pools, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	return in, pools, nil
}

func (a *deletePodsInPoolImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, pools, err := a.prepare(ctx, c)
	if err != nil {
		return Outcome{}, err
	}
	if pools.old == nil {
		return Outcome{Outputs: map[string]any{"moved": 0, "skipped": []any{}}, Message: "pool " + in.pool + " does not exist: nothing to move"}, nil
	}
	if len(pools.problems) > 0 {
		return Outcome{}, refuse("deletePodsInPool", in.pool, pools.problems)
	}
	cache, err := a.podCache()
	if err != nil {
		return Outcome{}, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	cfg := pools.config(in.cfg)
	if cfg.Since, err = podMoveStart(ctx, c, cache); err != nil {
		return Outcome{}, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	cfg.Dynamic = a.dyn
	cfg.Events = podMoveEvents(ctx, c.StepID)
	res, err := podmove.Run(ctx, a.kube, cache, cfg)
	out := Outcome{Changed: res.Changed(), Outputs: map[string]any{"moved": res.Moved, "skipped": anyList(res.Skipped)}}
	var refused *podmove.RefusedError
	switch {
	case errors.As(err, &refused):
		return out, refuse("deletePodsInPool", in.pool, refused.Problems)
	case errors.Is(err, podmove.ErrDeadline):
		return out, fmt.Errorf("deletePodsInPool %q: %w: %v", in.pool, ErrDeadline, err)
	case err != nil:
		return out, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	out.Message = podMoveMessage(in.pool, cfg, res)
	return out, nil
}

func podMoveMessage(pool string, cfg podmove.Config, res podmove.Result) string {
	if !res.Changed() {
		msg := "no pod in pool " + pool
		if len(res.Skipped) > 0 {
			msg += fmt.Sprintf(" but %d skipped: %s", len(res.Skipped), textlist.Capped(res.Skipped, maxListed))
		}
		return msg
	}
	msg := fmt.Sprintf("moved %d pod(s) out of pool %s (%s) by %s", res.Moved, pool, cfg.Pool.CIDR, cfg.Strategy)
	if n := len(res.Restarted); n > 0 {
		msg += fmt.Sprintf("; restarted %d owner(s)", n)
	}
	if res.Refused > 0 {
		msg += fmt.Sprintf("; %d eviction(s) refused by a budget and retried after its status changed", res.Refused)
	}
	if len(res.Skipped) > 0 {
		msg += fmt.Sprintf("; skipped %d: %s", len(res.Skipped), textlist.Capped(res.Skipped, maxListed))
	}
	return msg
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Plan says, read-only, which pods would move per namespace and owner, which wait
// on a budget that has no room now, and what would be refused.
func (a *deletePodsInPoolImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, pools, err := a.prepare(ctx, c)
	if err != nil {
		return Planned{}, err
	}
	if pools.old == nil {
		return Planned{Change: plans.None, Details: []string{"pool " + in.pool + " does not exist: nothing to move"}, Facts: pools.facts}, nil
	}
	cache, err := a.podCache()
	if err != nil {
		return Planned{}, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	cfg := pools.config(in.cfg)
	cfg.Dynamic = a.dyn
	p, err := podmove.MakePlan(ctx, a.kube, cache, cfg)
	if err != nil {
		return Planned{}, fmt.Errorf("deletePodsInPool %q: %w", in.pool, err)
	}
	if len(p.Refused) > 0 {
		return Planned{}, refuse("deletePodsInPool", in.pool, append(pools.problems, p.Refused...))
	}
	// Pool problems are warnings here, not refusals: earlier steps of the runbook
	// (ensurePool, disablePool) usually fix them, and apply checks them again.
	out := Planned{Change: plans.None, Facts: pools.facts}
	for _, pr := range pools.problems {
		out.Warnings = append(out.Warnings, "now: "+pr+" (apply refuses unless an earlier step changes this)")
	}
	out.Warnings = append(out.Warnings, p.Warns...)
	fut, _ := c.Ahead.Touched(in.pool)
	switch {
	case p.Total == 0 && len(p.Waiting) == 0 && fut.MayHoldPods():
		// Empty now, but an earlier step creates the pool or moves pods into it.
		out.Change = plans.Update
		out.Details = append(out.Details, fmt.Sprintf("the pods in pool %s (%s) by then (pool %s) move to %s: how many is known after apply",
			in.pool, cfg.Pool.CIDR, fut.Why(), plannedTargets(in.targetPool, cfg)))
	case p.Total == 0 && len(p.Waiting) == 0:
		out.Details = append(out.Details, "no pod in pool "+in.pool)
	default:
		out.Change = plans.Update
		out.Details = append(out.Details, fmt.Sprintf("%d pod(s) in pool %s (%s) move to %s", p.Total, in.pool, cfg.Pool.CIDR, plannedTargets(in.targetPool, cfg)))
	}
	const maxGroups = 25
	for i, g := range p.Groups {
		if i == maxGroups {
			out.Details = append(out.Details, fmt.Sprintf("... and %d more owner(s)", len(p.Groups)-maxGroups))
			break
		}
		out.Details = append(out.Details, g.String())
	}
	for _, b := range p.Blocked {
		out.Details = append(out.Details, "blocked now: "+b)
	}
	out.Details = append(out.Details, p.Flags...)
	for _, w := range textlist.CappedLines(p.Waiting, maxListed) {
		out.Details = append(out.Details, "waits for "+w)
	}
	if len(p.Skipped) > 0 {
		out.Details = append(out.Details, fmt.Sprintf("skipped: %s", textlist.Capped(p.Skipped, maxListed)))
	}
	return out, nil
}

// plannedTargets names where pods go in a plan, where the target pool may be one an
// earlier step of the runbook is still to create.
func plannedTargets(requested string, cfg podmove.Config) string {
	switch {
	case len(cfg.Targets) > 0:
		return podMoveTargets(cfg)
	case requested != "":
		return requested + " (once it exists and is enabled)"
	}
	return "another enabled pool of the same family (none yet)"
}

func podMoveTargets(cfg podmove.Config) string {
	s := ""
	for i, t := range cfg.Targets {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (%s)", t.Name, t.CIDR)
	}
	return s
}
