package actions

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
)

// ensurePool on an operator install: the pool is an entry of Installation
// default spec.calicoNetwork.ipPools, and the operator creates or updates it.

// decideOperator computes the entry to write (nil when the Installation already
// says it) and the refusals of the operator path.
func (a *ensurePoolImpl) decideOperator(ctx context.Context, v *ensureVerdict, in ensureInput) error {
	inst := v.op.inst
	dna, err := a.env.supportsDNA(ctx, inst)
	if err != nil {
		return err
	}
	want, err := calico.EntryFor(in.name, in.spec, dna)
	if err != nil {
		v.problems = append(v.problems, err.Error())
		return nil
	}
	if v.existing != nil {
		p := v.existing
		if p.Deleting {
			v.problems = append(v.problems, fmt.Sprintf("pool %s is being deleted", p.Name))
		}
		v.problems = append(v.problems, calico.CheckImmutable(p, in.cidr, in.spec.BlockSize)...)
		if msg := driftProblem(p, v.op); msg != "" && v.fut == nil { // an earlier step's pool: compared at apply
			v.problems = append(v.problems, msg)
			return nil
		}
	}
	old := v.op.entry()
	switch {
	case old == nil:
		v.entry = want
	default:
		merged := calico.MergeEntry(old, want, dna)
		have, next := calico.EntrySpec(old), calico.EntrySpec(merged)
		if !reflect.DeepEqual(have, next) {
			v.entry = merged
			hf, nf := specFields(have), specFields(next)
			for _, k := range convergedFields {
				if !reflect.DeepEqual(hf[k], nf[k]) {
					v.diffs = append(v.diffs, fieldDiff{k, hf[k], nf[k]})
				}
			}
		}
	}
	if v.entry != nil || v.existing == nil {
		// Readiness and other owners matter only when the Installation changes
		// (or the operator has yet to create the pool).
		problems, err := a.env.operatorProblems(ctx, inst)
		if err != nil {
			return err
		}
		v.problems = append(v.problems, problems...)
	}
	return nil
}

func (a *ensurePoolImpl) planOperator(out *Planned, in ensureInput, v ensureVerdict) {
	switch {
	case v.existing == nil && v.op.entry() == nil:
		out.Change = plans.Create
		out.Details = []string{fmt.Sprintf("add pool %s %s (%s) to Installation default spec.calicoNetwork.ipPools (one full-list update with a resourceVersion precondition); the tigera-operator creates the pool",
			in.name, in.cidr, describeSpec(in.spec))}
	case v.existing == nil:
		out.Change = plans.Create
		out.Details = []string{fmt.Sprintf("Installation default already lists pool %s: wait for the tigera-operator to create it", in.name)}
		if v.entry != nil {
			out.Details = append(out.Details, "update its entry: "+strings.Join(diffStrings(v.diffs), ", "))
		}
	case v.entry != nil:
		out.Change = plans.Update
		out.Details = append([]string{"update the entry of operator-managed pool " + in.name + " in Installation default (the operator updates the pool):"}, diffStrings(v.diffs)...)
	default:
		out.Change = plans.None
		out.Details = []string{"operator-managed pool " + in.name + " is as specified (Installation default and the pool agree)"}
	}
}

// convergeOperator writes the entry (intent first, the run recorded in the
// Installation's created-by map in the same update) and waits for the
// operator's pool to match it.
func (a *ensurePoolImpl) convergeOperator(ctx context.Context, cal calico.Client, c *Call, in ensureInput, v ensureVerdict) (Outcome, error) {
	outputs := func(created bool) map[string]any {
		return map[string]any{"name": in.name, "cidr": in.cidr.String(), "created": created}
	}
	createdBy := v.op.inst.RunMap(calico.AnnotationPoolsCreatedByRun)[in.name]
	if v.existing != nil && v.entry == nil {
		created := createdBy == c.RunID
		if created && !slices.Contains(c.Prior.Created, poolObject(in.name)) {
			if err := c.Recorder.Created(ctx, poolObject(in.name)); err != nil {
				return Outcome{}, err
			}
		}
		return Outcome{Outputs: outputs(created), Message: "operator-managed pool " + in.name + " is as specified"}, nil
	}
	creating := v.existing == nil
	if creating {
		if err := c.Recorder.Intent(ctx, "create", in.name+" (Installation default entry)"); err != nil {
			return Outcome{}, err
		}
	}
	entry := v.entry
	if entry != nil {
		err := a.env.editInstallation(ctx, func(inst *calico.Installation) ([]map[string]any, map[string]*string, error) {
			i := inst.Entry(in.name, in.cidr)
			if i >= 0 && reflect.DeepEqual(calico.EntrySpec(inst.Pools[i]), calico.EntrySpec(entry)) {
				return nil, nil, nil // written by an earlier attempt
			}
			if i >= 0 {
				dna, err := a.env.supportsDNA(ctx, inst)
				if err != nil {
					return nil, nil, err
				}
				entry = calico.MergeEntry(inst.Pools[i], entry, dna)
			}
			var ann map[string]*string
			if i < 0 {
				ann = map[string]*string{calico.AnnotationPoolsCreatedByRun: calico.SetRunMap(inst, calico.AnnotationPoolsCreatedByRun, in.name, c.RunID)}
			}
			return withEntry(inst, i, entry), ann, nil
		})
		if err != nil {
			return Outcome{}, err
		}
	} else {
		entry = v.op.entry()
	}
	took, err := a.env.awaitOperator(ctx, cal, "make pool "+in.name+" match its Installation entry", poolFollows(in.name, entry), entryIs(in.name, entry))
	if err != nil {
		return Outcome{}, err
	}
	if creating {
		// Ours when this attempt added the entry, or an earlier attempt of this
		// run did (the Installation's record says so); an entry someone else
		// listed is not ours to remove on rollback.
		ours := v.op.entry() == nil || createdBy == c.RunID
		if ours {
			if err := c.Recorder.Created(ctx, poolObject(in.name)); err != nil {
				return Outcome{}, err
			}
		}
		return Outcome{Changed: true, Outputs: outputs(ours),
			Message: fmt.Sprintf("added pool %s %s (%s) to Installation default; the tigera-operator created it in %s", in.name, in.cidr, describeSpec(in.spec), took)}, nil
	}
	return Outcome{Changed: true, Outputs: outputs(createdBy == c.RunID),
		Message: fmt.Sprintf("updated the Installation entry of pool %s (%s); the tigera-operator applied it in %s", in.name, strings.Join(diffStrings(v.diffs), ", "), took)}, nil
}

// invertOperator removes the entry this run added, only when nothing but node
// tunnel addresses is in the pool: the operator deletes a pool that leaves the
// list through Calico's own path, which does not check for addresses in use, so
// these checks are the only safety. Tunnel addresses are moved first by
// disabling the entry.
func (a *ensurePoolImpl) invertOperator(ctx context.Context, cal calico.Client, c *Call, in ensureInput, p *calico.Pool, view opView) (InverseOutcome, error) {
	fail := func(err error) (InverseOutcome, error) {
		return InverseOutcome{}, fmt.Errorf("ensurePool %q inverse: %w", in.name, err)
	}
	if view.inst.RunMap(calico.AnnotationPoolsCreatedByRun)[in.name] != c.RunID {
		if p == nil && view.idx < 0 {
			return InverseOutcome{Message: "pool " + in.name + " is already absent"}, nil
		}
		return InverseOutcome{Kept: fmt.Sprintf("operator-managed pool %s was not added to Installation default by this run", in.name)}, nil
	}
	changed := false
	if p != nil {
		h, err := poolHolders(ctx, cal.Live(), p)
		if err != nil {
			return fail(err)
		}
		if !h.empty() && !h.onlyTunnels() {
			return InverseOutcome{Kept: fmt.Sprintf("pool %s is in use: %s", in.name, strings.Join(h.lines(), "; "))}, nil
		}
		// Disabled first, also when it looks empty: calico-node releases a tunnel
		// address before it assigns the next (allocateip.go ensureHostTunnelAddress),
		// so a pool can look empty while addresses are on their way into it (seen
		// in TestFlavourOperator, #24). Once it is disabled nothing enters it.
		if err := a.env.setEntryDisabled(ctx, cal, in.name, p, true, c.RunID); err != nil {
			return fail(err)
		}
		changed = true
		if err := calico.InFlightGrace(ctx); err != nil {
			return fail(err)
		}
		// Checked live. An operator reconcile that read the Installation before the
		// disable can still write the pool back enabled for a moment: tunnel
		// addresses back in it are waited out again, a bounded number of times,
		// once the operator has disabled the pool again.
		for attempt := 0; ; attempt++ {
			if p, err = a.awaitDisabled(ctx, cal, in.name); err != nil {
				return fail(err)
			}
			if p == nil {
				break
			}
			if h, err = poolHolders(ctx, cal.Live(), p); err != nil {
				return fail(err)
			}
			if h.empty() {
				break
			}
			if !h.onlyTunnels() || attempt == 2 {
				return InverseOutcome{Changed: changed, Kept: fmt.Sprintf("pool %s is in use: %s", in.name, strings.Join(h.lines(), "; "))}, nil
			}
			d, err := a.drainTunnels(ctx, cal, c, p, h, true)
			if err != nil {
				return fail(err)
			}
			if d.kept != "" {
				return InverseOutcome{Changed: true, Kept: d.kept}, nil
			}
		}
	}
	if err := a.env.removeEntry(ctx, cal, in.name); err != nil {
		return fail(err)
	}
	return InverseOutcome{Changed: true, Message: "removed pool " + in.name + ", added by this run, from Installation default; the tigera-operator deleted it"}, nil
}

// awaitDisabled waits (bounded) until pool name is disabled or gone, as the
// operator writes it from its Installation entry, and returns it as read live.
func (a *ensurePoolImpl) awaitDisabled(ctx context.Context, cal calico.Client, name string) (*calico.Pool, error) {
	wctx, cancel := context.WithTimeout(ctx, tunnelDrainTimeout)
	defer cancel()
	err := cal.Await(wctx, func(r calico.Reader) (bool, error) {
		pools, err := r.Pools(wctx)
		if err != nil {
			return false, nil
		}
		p := calico.FindPool(pools, name)
		return p == nil || disabled(p), nil
	})
	if err != nil {
		return nil, fmt.Errorf("the operator did not disable pool %s again within %s: %w", name, tunnelDrainTimeout, err)
	}
	p, _, err := livePool(ctx, cal, name)
	return p, err
}
