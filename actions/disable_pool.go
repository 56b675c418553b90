package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"k8s.io/client-go/util/retry"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/preflight"
	"github.com/runbookdev/runbook/internal/textlist"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var disablePool = Definition{
	Decl: &decl.Action{
		Name:    "disablePool",
		Summary: "Stop new allocations from a Calico IP pool (spec.disabled: true).",
		Description: `Patches only spec.disabled. Existing pods keep their addresses; only new allocations stop.
Satisfied when the pool is already disabled or does not exist.

Disabling moves node tunnel addresses at once: calico-node re-addresses tunl0/vxlan.calico from
another enabled pool with matching encapsulation and Tunnel in allowedUses that selects the node,
or removes them. The plan announces this, and the action refuses when some node would be left
without a tunnel address. An operator-managed pool whose operator has no disableNewAllocations
(tigera-operator v1.34, Calico 3.28) is disabled by nodeSelector: "!all()" instead, which
calico-node does not react to: its tunnel addresses stay until a moveTunnelAddresses step
restarts calico-node node by node.`,
		Params: []decl.Param{
			poolRole(checked(p("name", value.String, true, nil, "Name of the IPPool to disable."), check.PoolName), decl.PoolDisables),
		},
		Outputs: []decl.Output{
			{Name: "wasDisabled", Type: value.Bool, Description: "Whether the pool was already disabled before this step."},
		},
		Inverse: "Re-enables the pool, only if this run disabled it.",
		Needs: slices.Concat(
			poolPerms([]string{"patch"}, "set spec.disabled; the inverse re-enables (internal/calico/crd_write.go)"),
			operatorNeeds),
	},
	New: func(b *binding) Impl { return &disablePoolImpl{env: b.env} },
}

// disablePoolImpl stops new allocations from a pool.
type disablePoolImpl struct{ env *poolEnv }

// disableVerdict is what disablePool found.
type disableVerdict struct {
	pool     *calico.Pool // nil: absent
	changes  []calico.TunnelChange
	problems []string
	facts    []string
	op       opView // op.inst set: the pool is the operator's, disabled through its Installation entry
}

// disabled reports whether a pool already takes no new allocations: spec.disabled,
// or the nodeSelector "!all()" older operator docs use.
func disabled(p *calico.Pool) bool {
	return p.Spec.Disabled || calico.SelectsNoNode(p.Spec.NodeSelector)
}

// decide observes pools and nodes from the API server and predicts, as calico-node
// would reconcile it, where each node's tunnel address goes once the pool is
// disabled.
func (a *disablePoolImpl) decide(ctx context.Context, cal calico.Client, name string) (disableVerdict, error) {
	var v disableVerdict
	p, pools, err := livePool(ctx, cal, name)
	if err != nil {
		return v, err
	}
	v.pool = p
	v.facts = append(v.facts, apiFact(cal), poolFact(name, p))
	fut := ahead(cal, name) // plan only
	if v.op, err = a.env.operatorView(ctx, name, p, fut); err != nil {
		return v, err
	}
	if p != nil && v.op.inst != nil && fut == nil { // a pool an earlier step changes is compared at apply
		// Edited behind the operator's back: reported even when it looks done.
		if msg := driftProblem(p, v.op); msg != "" {
			v.problems = append(v.problems, msg)
			return v, nil
		}
	}
	if p == nil || disabled(p) {
		return v, nil
	}
	if v.op.inst != nil {
		problems, err := a.env.operatorProblems(ctx, v.op.inst)
		if err != nil {
			return v, err
		}
		v.problems = append(v.problems, problems...)
	} else if msg := operatorManaged(p); msg != "" {
		v.problems = append(v.problems, msg)
	}
	nodes, err := cal.Live().Nodes(ctx)
	if err != nil {
		return v, fmt.Errorf("read nodes: %w", err)
	}
	v.changes = calico.TunnelImpact(nodes, pools, name)
	var lost []string
	for _, c := range v.changes {
		if c.Lost() {
			lost = append(lost, c.String())
		}
	}
	if len(lost) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("%d node tunnel address(es) would be lost, breaking node-to-pod traffic (add an enabled pool with the same encapsulation and Tunnel use that selects these nodes first): %s",
			len(lost), textlist.Capped(lost, maxListed)))
	}
	for _, p := range pools {
		v.facts = append(v.facts, poolFact(p.Name, &p))
	}
	return v, nil
}

func (a *disablePoolImpl) start(c *Call) (string, calico.Client, error) {
	return a.env.namedPool("disablePool", c)
}

func (a *disablePoolImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	name, cal, err := a.start(c)
	if err != nil {
		return Planned{}, err
	}
	cal = c.Ahead.Client(cal)
	fut, _ := c.Ahead.Touched(name)
	v, err := a.decide(ctx, cal, name)
	if err != nil {
		return Planned{}, fmt.Errorf("disablePool %q: %w", name, err)
	}
	if len(v.problems) > 0 {
		return Planned{}, refuse("disablePool", name, v.problems)
	}
	by := ""
	if why := fut.Why(); why != "" {
		by = " (pool " + why + ")"
	}
	switch {
	case v.pool == nil && fut.Deleted():
		return Planned{Change: plans.None, Details: []string{"pool " + name + " is gone by then" + by + ": nothing to disable"}, Facts: v.facts}, nil
	case v.pool == nil:
		return Planned{Change: plans.None, Details: []string{"pool " + name + " does not exist: nothing to disable"}, Facts: v.facts}, nil
	case disabled(v.pool):
		return Planned{Change: plans.None, Details: []string{"pool " + name + " is already disabled" + by}, Facts: v.facts}, nil
	}
	out := Planned{Change: plans.Update, Facts: v.facts,
		Details: []string{fmt.Sprintf("set spec.disabled: true on pool %s (%s) through %s%s: no new addresses from it; existing pods keep theirs", name, v.pool.CIDR, cal.Detection().String(), by)}}
	bySelector := false
	if v.op.inst != nil {
		how := "disableNewAllocations: true"
		if dna, err := a.env.supportsDNA(ctx, v.op.inst); err != nil {
			return Planned{}, fmt.Errorf("disablePool %q: %w", name, err)
		} else if !dna {
			how, bySelector = `nodeSelector: "!all()" (this operator's Installation has no disableNewAllocations)`, true
		}
		out.Details = []string{fmt.Sprintf("set %s on the entry of operator-managed pool %s (%s) in Installation default (one full-list update with a resourceVersion precondition); the tigera-operator disables the pool: no new addresses from it, existing pods keep theirs", how, name, v.pool.CIDR)}
	}
	if bySelector {
		// calico-node v3.28's tunnel allocator does not watch nodeSelector
		// (node/pkg/allocateip OnUpdates compares the v1 pool model, which has no
		// selector): nothing moves until calico-node restarts on each node.
		if len(v.changes) > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%d node tunnel address(es) stay in pool %s: calico-node does not react to a nodeSelector change; a moveTunnelAddresses step (restarting calico-node one node at a time) moves them, or deletePool refuses",
				len(v.changes), name))
		}
		return out, nil
	}
	for _, c := range v.changes {
		out.Warnings = append(out.Warnings, "tunnel address moves at once: "+c.String())
	}
	if len(v.changes) > 0 {
		// The preflight's tunnel check judges losses against the pools as the run
		// will have them; what only this step knows is which addresses move now.
		nodes := map[string]bool{}
		for _, c := range v.changes {
			nodes[c.Node] = true
		}
		out.Findings = append(out.Findings, preflight.Finding{ID: "tunnel.moves", Severity: preflight.Info, Subject: "IPPool " + name,
			Message: fmt.Sprintf("disabling it moves %d tunnel address(es) of %d node(s) at once (calico-node re-addresses tunl0/vxlan.calico; in-flight tunnel traffic of those nodes may drop briefly)", len(v.changes), len(nodes))})
	}
	return out, nil
}

// Apply patches spec.disabled (and the disabled-by annotation, in the same patch)
// with the observed resourceVersion as precondition, after the tunnel check; on a
// conflict it observes and checks again. Absent or already disabled: unchanged.
func (a *disablePoolImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	name, cal, err := a.start(c)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := a.decide(ctx, cal, name)
		if err != nil {
			return err
		}
		switch {
		case v.pool == nil:
			out = Outcome{Outputs: map[string]any{"wasDisabled": false}, Message: "pool " + name + " does not exist: nothing to disable"}
			return nil
		case len(v.problems) > 0 && v.op.inst != nil:
			return refuse("disablePool", name, v.problems) // drift is reported even when it looks done
		case disabled(v.pool):
			out = Outcome{Outputs: map[string]any{"wasDisabled": true}, Message: "pool " + name + " is already disabled"}
			return nil
		case len(v.problems) > 0:
			return refuse("disablePool", name, v.problems)
		}
		if err := c.Recorder.Intent(ctx, "disable", name); err != nil {
			return err
		}
		if v.op.inst != nil {
			if err := a.env.setEntryDisabled(ctx, cal, name, v.pool, true, c.RunID); err != nil {
				return err
			}
			moved := fmt.Sprintf("%d node tunnel address(es) move to another pool", len(v.changes))
			if dna, err := a.env.supportsDNA(ctx, v.op.inst); err == nil && !dna {
				moved = fmt.Sprintf("its %d node tunnel address(es) stay until calico-node restarts (moveTunnelAddresses)", len(v.changes))
			}
			out = Outcome{Changed: true, Outputs: map[string]any{"wasDisabled": false},
				Message: fmt.Sprintf("disabled operator-managed pool %s (%s) through Installation default; %s", name, v.pool.CIDR, moved)}
			return nil
		}
		runID := c.RunID
		_, err = cal.PatchPool(ctx, name, calico.PoolPatch{
			Spec:            map[string]any{"disabled": true},
			Annotations:     map[string]*string{calico.AnnotationDisabledByRun: &runID},
			ResourceVersion: v.pool.ResourceVersion,
		})
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("disabled pool %s (%s)", name, v.pool.CIDR)
		if n := len(v.changes); n > 0 {
			msg += fmt.Sprintf("; %d node tunnel address(es) move to another pool", n)
		}
		out = Outcome{Changed: true, Outputs: map[string]any{"wasDisabled": false}, Message: msg}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return Outcome{}, err
		}
		return Outcome{}, fmt.Errorf("disablePool %q: %w", name, err)
	}
	return out, nil
}

// Invert re-enables the pool, only if this run disabled it (the pool carries this
// run's id in the disabled-by annotation, written in the same patch as
// spec.disabled), and removes the annotation.
func (a *disablePoolImpl) Invert(ctx context.Context, c *Call) (InverseOutcome, error) {
	name, cal, err := a.start(c)
	if err != nil {
		return InverseOutcome{}, err
	}
	var out InverseOutcome
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, _, err := livePool(ctx, cal, name)
		if err != nil {
			return err
		}
		if p != nil {
			view, err := a.env.operatorView(ctx, name, p, nil)
			if err != nil {
				return err
			}
			if view.inst != nil {
				out, err = a.invertOperator(ctx, cal, c, name, p, view)
				return err
			}
		}
		switch {
		case p == nil:
			out = InverseOutcome{Message: "pool " + name + " does not exist: nothing to re-enable"}
			return nil
		case !p.Spec.Disabled:
			out = InverseOutcome{Message: "pool " + name + " is enabled"}
			return nil
		case p.Annotations[calico.AnnotationDisabledByRun] != c.RunID:
			out = InverseOutcome{Kept: "pool " + name + " was not disabled by this run: left disabled"}
			return nil
		}
		// Removing the field rather than writing false leaves the pool as Calico
		// itself stores an enabled pool (disabled is omitempty in its types).
		_, err = cal.PatchPool(ctx, name, calico.PoolPatch{
			Spec:            map[string]any{"disabled": nil},
			Annotations:     map[string]*string{calico.AnnotationDisabledByRun: nil},
			ResourceVersion: p.ResourceVersion,
		})
		if err != nil {
			return err
		}
		out = InverseOutcome{Changed: true, Message: "re-enabled pool " + name}
		return nil
	})
	if err != nil {
		return InverseOutcome{}, fmt.Errorf("disablePool %q inverse: %w", name, err)
	}
	return out, nil
}

// invertOperator re-enables an operator-managed pool through its entry, only if
// this run disabled it (the Installation's disabled-by map says so).
func (a *disablePoolImpl) invertOperator(ctx context.Context, cal calico.Client, c *Call, name string, p *calico.Pool, view opView) (InverseOutcome, error) {
	e := view.entry()
	if e == nil || !calico.EntryDisabled(e) {
		return InverseOutcome{Message: "operator-managed pool " + name + " is enabled"}, nil
	}
	if run, _, _ := parseDisabledRecord(view.inst.RunMap(calico.AnnotationPoolsDisabledByRun)[name]); run != c.RunID {
		return InverseOutcome{Kept: "operator-managed pool " + name + " was not disabled by this run: left disabled"}, nil
	}
	if err := a.env.setEntryDisabled(ctx, cal, name, p, false, c.RunID); err != nil {
		return InverseOutcome{}, err
	}
	return InverseOutcome{Changed: true, Message: "re-enabled operator-managed pool " + name + " through Installation default"}, nil
}
