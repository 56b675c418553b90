package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/poolsahead"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var deletePool = Definition{
	Decl: &decl.Action{
		Name:    "deletePool",
		Summary: "Delete a Calico IP pool once nothing is left allocated in it (point of no return).",
		Description: `Refuses while any pod, IPAM allocation or node tunnel address is in the pool (listing them),
or while no other enabled pool serves the pool's address family. Calico's own delete path does
not check for addresses in use, so these checks are the only safety; used addresses are never
force-released. Satisfied when the pool does not exist.`,
		Params: []decl.Param{
			poolRole(checked(p("name", value.String, true, nil, "Name of the IPPool to delete."), check.PoolName), decl.PoolDeletes),
			p("timeout", value.Duration, false, 2*time.Minute, "How long to wait for Calico to release the pool's blocks."),
		},
		Outputs: []decl.Output{
			{Name: "deleted", Type: value.Bool, Description: "Whether this step deleted the pool (false when it was already gone)."},
		},
		PointOfNoReturn: true,
		Needs: slices.Concat(
			// patch: DeletePool disables a pool that is still enabled before it
			// releases the blocks (a runbook need not run disablePool first).
			poolPerms([]string{"get", "patch", "delete"}, "disable and delete the pool (internal/calico/crd_delete.go)"),
			[]decl.Permission{
				{Group: "crd.projectcalico.org", Resource: "ipamblocks", Verbs: []string{"get", "patch", "delete"}, Why: "release the pool's empty blocks as calicoctl does (internal/calico/crd_delete.go)"},
				{Group: "crd.projectcalico.org", Resource: "blockaffinities", Verbs: []string{"get", "patch", "delete"}, Why: "release the empty blocks' affinities (internal/calico/crd_delete.go)"},
			},
			operatorNeeds),
	},
	New: func(b *binding) Impl { return &deletePoolImpl{env: b.env} },
}

// deletePoolImpl deletes an empty pool (a point of no return).
type deletePoolImpl struct{ env *poolEnv }

// deleteVerdict is what deletePool found.
type deleteVerdict struct {
	pool     *calico.Pool // nil: absent
	problems []string
	facts    []string
	op       opView // op.inst set: the operator's pool, deleted by removing its Installation entry
	// later (plan only) names the holders an earlier step removes: apply checks them.
	later string
}

// decide checks, from the API server (never the cache: this is a point of no
// return), that nothing holds an address in the pool and that another enabled pool
// of the family keeps new pods schedulable.
//
// fut is what the earlier steps of a plan do to the pool (nil at apply): the
// pods and tunnel addresses they move out are not refused now.
func (a *deletePoolImpl) decide(ctx context.Context, cal calico.Client, name string, fut *poolsahead.Pool) (deleteVerdict, error) {
	var v deleteVerdict
	p, pools, err := livePool(ctx, cal, name)
	if err != nil {
		return v, err
	}
	v.pool = p
	v.facts = append(v.facts, apiFact(cal), poolFact(name, p))
	if p == nil {
		return v, nil
	}
	if v.op, err = a.env.operatorView(ctx, name, p, fut); err != nil {
		return v, err
	}
	if v.op.inst != nil {
		// A pool an earlier step changes is compared with its entry at apply.
		if msg := driftProblem(p, v.op); msg != "" && fut == nil {
			v.problems = append(v.problems, msg)
		}
		problems, err := a.env.operatorProblems(ctx, v.op.inst)
		if err != nil {
			return v, err
		}
		v.problems = append(v.problems, problems...)
	} else if msg := operatorManaged(p); msg != "" {
		v.problems = append(v.problems, msg)
	}
	h, err := poolHolders(ctx, cal.Live(), p)
	if err != nil {
		return v, err
	}
	h, v.later = h.leaving(fut)
	v.problems = append(v.problems, h.lines()...)
	if others := calico.OtherEnabledPools(pools, name, p.Family()); len(others) == 0 {
		v.problems = append(v.problems, fmt.Sprintf("no other enabled pool serves IPv%d workloads: new pods would get no address", p.Family()))
	} else {
		for _, o := range others {
			v.facts = append(v.facts, poolFact(o.Name, o))
		}
	}
	return v, nil
}

func (a *deletePoolImpl) start(c *Call) (string, calico.Client, error) {
	return a.env.namedPool("deletePool", c)
}

func (a *deletePoolImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	name, cal, err := a.start(c)
	if err != nil {
		return Planned{}, err
	}
	cal = c.Ahead.Client(cal)
	fut, _ := c.Ahead.Touched(name)
	v, err := a.decide(ctx, cal, name, fut)
	if err != nil {
		return Planned{}, fmt.Errorf("deletePool %q: %w", name, err)
	}
	if len(v.problems) > 0 {
		return Planned{}, refuse("deletePool", name, v.problems)
	}
	if v.pool == nil {
		if fut.Deleted() {
			return Planned{Change: plans.None, Details: []string{"pool " + name + " is gone by then (" + fut.Why() + "): nothing to delete"}, Facts: v.facts}, nil
		}
		return Planned{Change: plans.None, Details: []string{"pool " + name + " does not exist"}, Facts: v.facts}, nil
	}
	details := []string{fmt.Sprintf("delete pool %s (%s) through %s the way Calico does: disable, release its empty IPAM blocks and affinities, delete", name, v.pool.CIDR, cal.Detection().String())}
	if v.op.inst != nil {
		details = []string{fmt.Sprintf("remove operator-managed pool %s (%s) from Installation default spec.calicoNetwork.ipPools (one full-list update with a resourceVersion precondition); the tigera-operator deletes it through Calico's path (disable, release affinities, delete), which does not check for addresses in use: runbook checks first, and again once the pool is disabled", name, v.pool.CIDR)}
	}
	if why := fut.Why(); why != "" {
		details[0] += " (pool " + why + ")"
	}
	if v.later != "" {
		details = append(details, v.later)
	}
	if !v.pool.Spec.Disabled {
		details = append(details, "the pool is still enabled: it is disabled first")
	}
	return Planned{Change: plans.Delete, Details: details, Facts: v.facts}, nil
}

// Apply refuses while anything holds an address in the pool; otherwise records the
// intent and deletes it through the Client's safe path, which never releases an
// address in use. Absent: unchanged.
func (a *deletePoolImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	name, cal, err := a.start(c)
	if err != nil {
		return Outcome{}, err
	}
	timeout, err := paramDuration(c, "timeout", 2*time.Minute)
	if err != nil {
		return Outcome{}, fmt.Errorf("deletePool %q: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := a.decide(ctx, cal, name, nil)
	if err != nil {
		return Outcome{}, fmt.Errorf("deletePool %q: %w", name, err)
	}
	if v.pool == nil {
		return Outcome{Outputs: map[string]any{"deleted": false}, Message: "pool " + name + " does not exist"}, nil
	}
	if len(v.problems) > 0 {
		return Outcome{}, refuse("deletePool", name, v.problems)
	}
	if err := c.Recorder.Intent(ctx, "delete", fmt.Sprintf("%s uid=%s", name, v.pool.UID)); err != nil {
		return Outcome{}, err
	}
	if v.op.inst != nil {
		return a.applyOperator(ctx, cal, c, name, v)
	}
	rep, err := cal.DeletePool(ctx, name, v.pool.UID)
	switch {
	case errors.Is(err, calico.ErrNotFound):
		return Outcome{Outputs: map[string]any{"deleted": false}, Message: "pool " + name + " was deleted by someone else meanwhile"}, nil
	case err != nil:
		return Outcome{}, fmt.Errorf("deletePool %q: %w", name, err)
	}
	msg := fmt.Sprintf("deleted pool %s (%s)", name, v.pool.CIDR)
	var did []string
	if rep.Disabled {
		did = append(did, "disabled it first")
	}
	if n := len(rep.ReleasedBlocks); n > 0 {
		did = append(did, fmt.Sprintf("released %d empty IPAM block(s)", n))
	}
	if n := len(rep.DeletedAffinities); n > 0 {
		did = append(did, fmt.Sprintf("%d block affinit(ies)", n))
	}
	if len(did) > 0 {
		msg += ": " + strings.Join(did, ", ")
	}
	return Outcome{Changed: true, Outputs: map[string]any{"deleted": true}, Message: msg}, nil
}

// applyOperator deletes an operator-managed pool: disable it through its entry
// (when not yet), let in-flight allocations land, check again that nothing holds
// an address in it, then remove the entry and wait for the operator to delete
// the pool. The operator's delete (Calico's) releases affinities without
// checking for addresses in use, so the checks here are the only safety.
func (a *deletePoolImpl) applyOperator(ctx context.Context, cal calico.Client, c *Call, name string, v deleteVerdict) (Outcome, error) {
	fail := func(err error) (Outcome, error) { return Outcome{}, fmt.Errorf("deletePool %q: %w", name, err) }
	var did []string
	if !disabled(v.pool) {
		if err := a.env.setEntryDisabled(ctx, cal, name, v.pool, true, c.RunID); err != nil {
			return fail(err)
		}
		if err := calico.InFlightGrace(ctx); err != nil {
			return fail(err)
		}
		did = append(did, "disabled it through its entry first")
	}
	p, _, err := livePool(ctx, cal, name)
	if err != nil {
		return fail(err)
	}
	if p == nil {
		return Outcome{Outputs: map[string]any{"deleted": false}, Message: "pool " + name + " was deleted by someone else meanwhile"}, nil
	}
	h, err := poolHolders(ctx, cal.Live(), p)
	if err != nil {
		return fail(err)
	}
	if !h.empty() {
		return fail(fmt.Errorf("%w: after disabling it: %s (the pool stays, disabled)", calico.ErrInUse, strings.Join(h.lines(), "; ")))
	}
	if err := a.env.removeEntry(ctx, cal, name); err != nil {
		return fail(err)
	}
	msg := fmt.Sprintf("removed operator-managed pool %s (%s) from Installation default; the tigera-operator deleted it", name, v.pool.CIDR)
	if len(did) > 0 {
		msg += ": " + strings.Join(did, ", ")
	}
	return Outcome{Changed: true, Outputs: map[string]any{"deleted": true}, Message: msg}, nil
}
