package actions

import (
	"context"
	"fmt"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/podmove"
)

// podMoveInput is deletePodsInPool's parameters, checked.
type podMoveInput struct {
	pool, targetPool string
	cfg              podmove.Config
}

// podMoveParams reads the step's parameters into a podmove.Config (pools are
// resolved separately, against the cluster).
func podMoveParams(c *Call) (podMoveInput, error) {
	var in podMoveInput
	var err error
	if in.pool, err = paramString(c, "pool"); err != nil {
		return in, err
	}
	if in.targetPool, err = paramString(c, "targetPool"); err != nil {
		return in, err
	}
	cfg := &in.cfg
	if cfg.Scope.Namespace, err = paramString(c, "namespace"); err != nil {
		return in, err
	}
	sel, err := paramString(c, "selector")
	if err != nil {
		return in, err
	}
	if sel != "" {
		if cfg.Scope.Selector, err = labels.Parse(sel); err != nil {
			return in, fmt.Errorf("parameter selector: %w", err)
		}
	}
	strategy, err := paramString(c, "strategy")
	if err != nil {
		return in, err
	}
	cfg.Strategy = podmove.Action(strategy)
	single, err := paramString(c, "singleReplica")
	if err != nil {
		return in, err
	}
	cfg.SingleReplicaRestart = single == string(podmove.ActRestart)
	for key, into := range map[string]*int{"maxUnavailable": &cfg.MaxUnavailable, "concurrency": &cfg.Concurrency, "perNodeConcurrency": &cfg.PerNodeConcurrency} {
		n, set, err := paramInt(c, key)
		if err != nil {
			return in, err
		}
		if set && n < 1 {
			return in, fmt.Errorf("parameter %s: must be at least 1, got %d", key, n)
		}
		*into = n
	}
	unmanaged, err := paramString(c, "unmanagedPods")
	if err != nil {
		return in, err
	}
	jobs, err := paramString(c, "jobs")
	if err != nil {
		return in, err
	}
	cfg.Filters = podmove.Filters{Unmanaged: podmove.UnmanagedPolicy(unmanaged), Jobs: podmove.JobPolicy(jobs)}
	if cfg.Filters.AllowLocalData, err = paramBool(c, "allowLocalData"); err != nil {
		return in, err
	}
	if cfg.Timeout, err = paramDuration(c, "timeout", podmove.DefaultTimeout); err != nil {
		return in, err
	}
	cfg.Deadline = c.Deadline
	cfg.RestartMark = c.RunID + "/" + c.StepID
	return in, nil
}

// podMovePools is what the pools say about the move.
type podMovePools struct {
	old      *calico.Pool // nil: absent
	targets  []*calico.Pool
	problems []string // refusals
	facts    []string
}

// resolvePools reads the pools straight from the API server (a decision must not
// act on a lagging cache) and checks them: the old pool must be disabled (or new
// pods would land in it again), and some enabled pool of its family must take the
// pods.
func resolvePools(ctx context.Context, cal calico.Client, in podMoveInput) (podMovePools, error) {
	var r podMovePools
	pools, err := cal.Live().Pools(ctx)
	if err != nil {
		return r, fmt.Errorf("read pools: %w", err)
	}
	r.old = calico.FindPool(pools, in.pool)
	r.facts = append(r.facts, poolFact(in.pool, r.old))
	if r.old == nil {
		return r, nil
	}
	if !r.old.CIDR.IsValid() {
		r.problems = append(r.problems, fmt.Sprintf("pool %s has an invalid CIDR %q", in.pool, r.old.Spec.CIDR))
		return r, nil
	}
	if r.old.Enabled() {
		r.problems = append(r.problems, fmt.Sprintf("pool %s is enabled: replacements could get addresses from it again (disable it first, e.g. with a disablePool step)", in.pool))
	}
	fam := r.old.Family()
	if in.targetPool != "" {
		t := calico.FindPool(pools, in.targetPool)
		r.facts = append(r.facts, poolFact(in.targetPool, t))
		switch {
		case t == nil:
			r.problems = append(r.problems, fmt.Sprintf("target pool %s does not exist", in.targetPool))
		case t.Name == in.pool:
			r.problems = append(r.problems, "targetPool is the pool being emptied")
		case !t.Enabled():
			r.problems = append(r.problems, fmt.Sprintf("target pool %s is disabled: pods could not get addresses from it", in.targetPool))
		case t.Family() != fam:
			r.problems = append(r.problems, fmt.Sprintf("target pool %s is IPv%d, pool %s is IPv%d", in.targetPool, t.Family(), in.pool, fam))
		case t.CIDR.IsValid() && t.CIDR.Overlaps(r.old.CIDR):
			// A replacement with an address in the overlap is "in" both: the step
			// could neither tell it moved nor ever see the old pool empty.
			r.problems = append(r.problems, fmt.Sprintf("target pool %s (%s) overlaps pool %s (%s): pods would not leave the old pool's CIDR", in.targetPool, t.CIDR, in.pool, r.old.CIDR))
		case !t.Allows(v3.IPPoolAllowedUseWorkload):
			r.problems = append(r.problems, fmt.Sprintf("target pool %s does not allow Workload addresses", in.targetPool))
		default:
			r.targets = append(r.targets, t)
		}
		return r, nil
	}
	for _, t := range calico.OtherEnabledPools(pools, in.pool, fam) {
		if t.CIDR.IsValid() && t.CIDR.Overlaps(r.old.CIDR) {
			r.problems = append(r.problems, fmt.Sprintf("enabled pool %s (%s) overlaps pool %s (%s): replacements could get addresses inside the old pool's CIDR", t.Name, t.CIDR, in.pool, r.old.CIDR))
			continue
		}
		r.targets = append(r.targets, t)
		r.facts = append(r.facts, poolFact(t.Name, t))
	}
	if len(r.targets) == 0 {
		r.problems = append(r.problems, fmt.Sprintf("no enabled IPv%d pool other than %s allows Workload addresses: moved pods would stay Pending (add one first, e.g. with an ensurePool step)", fam, in.pool))
	}
	return r, nil
}

func (r podMovePools) config(cfg podmove.Config) podmove.Config {
	cfg.Pool = podmove.Pool{Name: r.old.Name, CIDR: r.old.CIDR}
	cfg.Targets = nil
	for _, t := range r.targets {
		cfg.Targets = append(cfg.Targets, podmove.Pool{Name: t.Name, CIDR: t.CIDR})
	}
	return cfg
}

// podMoveStart is when the step first began: kept in the run journal (written
// before anything moves), so that a resumed step still tells replacements from
// pods that were in the pool all along.
func podMoveStart(ctx context.Context, c *Call, st podmove.Store) (time.Time, error) {
	if s := c.Prior.Intent["startedAt"]; s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("journal intent startedAt %q: %w", s, err)
		}
		return t, nil
	}
	t := podmove.StartTime(st, time.Now())
	if err := c.Recorder.Intent(ctx, "startedAt", t.UTC().Format(time.RFC3339Nano)); err != nil {
		return time.Time{}, err
	}
	return t, nil
}
