package actions

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/poolsahead"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var ensurePool = Definition{
	Decl: &decl.Action{
		Name:    "ensurePool",
		Summary: "Create a Calico IP pool, or converge an existing one to the given spec.",
		Description: `Creates the pool when it is absent (defaults apply only then); when it exists,
patches only the fields this step writes that differ (never a round-trip of the whole object,
never a default imposed on a live pool). Satisfied (unchanged) when the pool exists with every
written field equal.

Changing ipipMode, vxlanMode, natOutgoing, nodeSelector, allowedUses or disabled on a pool
that holds addresses changes the network of the pods and nodes in it (cross-node traffic,
egress, which nodes allocate): refused, naming them, unless the step sets allowLiveChange.

Refused before anything changes: a different cidr or blockSize on an existing pool (both are
immutable in Calico; the action never deletes and recreates), a CIDR overlapping another pool,
a CIDR outside the cluster pod CIDR (kubeadm podSubnet, kube-controller-manager --cluster-cidr,
kube-proxy clusterCIDR, or the clusterCIDR parameter), ipipMode and vxlanMode both enabled, a
pool smaller than one block, and fields this Calico version does not know.`,
		Params: []decl.Param{
			poolRole(checked(p("name", value.String, true, nil, "Name of the IPPool."), check.PoolName), decl.PoolCreates),
			p("cidr", value.CIDR, true, nil, "Pool CIDR, IPv4 or IPv6; canonicalised."),
			p("ipipMode", value.String, false, "Never", "IP-in-IP encapsulation.", "Never", "Always", "CrossSubnet"),
			p("vxlanMode", value.String, false, "Never", "VXLAN encapsulation.", "Never", "Always", "CrossSubnet"),
			p("natOutgoing", value.Bool, false, false, "SNAT traffic leaving the pool to destinations outside all pools."),
			checked(p("blockSize", value.Int, false, nil, "Block prefix length (IPv4 20-32, default 26; IPv6 116-128, default 122)."), check.BlockSize),
			checked(p("nodeSelector", value.String, false, "all()", "Calico selector of the nodes that may allocate from the pool."), check.CalicoSelector),
			checked(p("allowedUses", value.List, false, nil, "Any of Workload, Tunnel (default both)."), check.AllowedUses),
			p("disableBGPExport", value.Bool, false, false, "Do not advertise the pool's routes over BGP."),
			p("disabled", value.Bool, false, false, "Create the pool disabled."),
			p("clusterCIDR", value.CIDR, false, nil, "Override the cluster pod CIDR the pool must lie in, when it cannot be discovered."),
			p("allowLiveChange", value.Bool, false, false, "Allow changing encapsulation, natOutgoing, nodeSelector, allowedUses or disabled on a pool that holds addresses."),
		},
		Outputs: []decl.Output{
			{Name: "name", Type: value.String, Description: "Name of the pool."},
			{Name: "cidr", Type: value.CIDR, Description: "Canonical CIDR of the pool."},
			{Name: "created", Type: value.Bool, Description: "Whether this run created the pool."},
		},
		Inverse: "Deletes the pool, only if this run created it and no address is allocated in it; otherwise keeps it and says why.",
		Needs: slices.Concat(
			poolPerms([]string{"get", "create", "patch", "delete"}, "create or converge the pool; the inverse deletes the pool this run created (internal/calico/crd_write.go, crd_delete.go)"),
			[]decl.Permission{{Resource: "configmaps", Namespace: "kube-system", Verbs: []string{"get"}, Why: "the cluster pod CIDR the pool must lie in (internal/calico/crd_live.go)"}},
			operatorNeeds),
	},
	New: func(b *binding) Impl { return &ensurePoolImpl{env: b.env} },
}

// ensureInput is ensurePool's parameters, checked and with Calico's defaults.
type ensureInput struct {
	name        string
	cidr        netip.Prefix
	spec        v3.IPPoolSpec
	clusterCIDR netip.Prefix // zero: discover
	// given: the spec fields (JSON names) the step writes; an existing pool
	// converges on these only.
	given     map[string]bool
	allowLive bool
}

// convergedFields are the fields an existing pool is converged on (cidr and
// blockSize are immutable: checked, never patched).
var convergedFields = []string{"ipipMode", "vxlanMode", "natOutgoing", "nodeSelector", "allowedUses", "disableBGPExport", "disabled"}

// liveFields change the network of what the pool holds: the pods' and tunnels'
// encapsulation, egress NAT, which nodes allocate and what, whether it allocates.
var liveFields = map[string]bool{"ipipMode": true, "vxlanMode": true, "natOutgoing": true, "nodeSelector": true, "allowedUses": true, "disabled": true}

// fieldDiff is one pool field a step changes.
type fieldDiff struct {
	field    string
	from, to any
}

func (d fieldDiff) String() string { return fmt.Sprintf("%s: %v -> %v", d.field, d.from, d.to) }

func diffStrings(ds []fieldDiff) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

func ensureInputFrom(c *Call) (ensureInput, error) {
	var in ensureInput
	var err error
	if in.name, err = paramString(c, "name"); err != nil {
		return in, err
	}
	cidr, err := paramString(c, "cidr")
	if err != nil {
		return in, err
	}
	if in.cidr, err = netip.ParsePrefix(cidr); err != nil {
		return in, fmt.Errorf("parameter cidr: %w", err)
	}
	s := v3.IPPoolSpec{CIDR: in.cidr.String()}
	ipip, err := paramString(c, "ipipMode")
	if err != nil {
		return in, err
	}
	vxlan, err := paramString(c, "vxlanMode")
	if err != nil {
		return in, err
	}
	s.IPIPMode, s.VXLANMode = v3.IPIPMode(ipip), v3.VXLANMode(vxlan)
	if s.NATOutgoing, err = paramBool(c, "natOutgoing"); err != nil {
		return in, err
	}
	if s.BlockSize, _, err = paramInt(c, "blockSize"); err != nil {
		return in, err
	}
	if s.NodeSelector, err = paramString(c, "nodeSelector"); err != nil {
		return in, err
	}
	if s.DisableBGPExport, err = paramBool(c, "disableBGPExport"); err != nil {
		return in, err
	}
	if s.Disabled, err = paramBool(c, "disabled"); err != nil {
		return in, err
	}
	if uses, ok := c.With["allowedUses"].([]any); ok {
		for _, u := range uses {
			us, ok := u.(string)
			if !ok {
				return in, fmt.Errorf("parameter allowedUses: expected strings, got %T", u)
			}
			s.AllowedUses = append(s.AllowedUses, v3.IPPoolAllowedUse(us))
		}
	}
	in.spec = calico.WithDefaults(s)
	in.given = map[string]bool{}
	for _, k := range convergedFields {
		in.given[k] = c.IsGiven(k)
	}
	if in.allowLive, err = paramBool(c, "allowLiveChange"); err != nil {
		return in, err
	}
	if override, err := paramString(c, "clusterCIDR"); err != nil {
		return in, err
	} else if override != "" {
		if in.clusterCIDR, err = netip.ParsePrefix(override); err != nil {
			return in, fmt.Errorf("parameter clusterCIDR: %w", err)
		}
	}
	return in, nil
}

// specFields are the spec fields ensurePool owns, by JSON name: what it writes on
// create and compares (and patches) on an existing pool. Everything else on a pool
// is left alone.
func specFields(s v3.IPPoolSpec) map[string]any {
	uses := make([]any, len(s.AllowedUses))
	for i, u := range s.AllowedUses {
		uses[i] = string(u)
	}
	return map[string]any{
		"cidr": s.CIDR, "blockSize": s.BlockSize, "ipipMode": string(s.IPIPMode), "vxlanMode": string(s.VXLANMode),
		"natOutgoing": s.NATOutgoing, "nodeSelector": s.NodeSelector, "allowedUses": uses,
		"disableBGPExport": s.DisableBGPExport, "disabled": s.Disabled,
	}
}

// ensureVerdict is what ensurePool found and would do.
type ensureVerdict struct {
	existing *calico.Pool
	patch    map[string]any // fields of an existing pool that differ
	diffs    []fieldDiff    // in convergedFields order
	problems []string       // refusals
	warnings []string
	facts    []string
	// op is the operator install's view: when op.inst is set the pool is (to be)
	// the operator's, and entry is the Installation entry to write (nil: none).
	op    opView
	entry map[string]any
	// later (plan only) says what an earlier step clears before this one runs.
	later []string
	// fut (plan only) is what the earlier steps do to the pool.
	fut *poolsahead.Pool
}

// decide observes (from the API server, not the cache) and judges. Plan and Apply
// share it, so a plan that passes has run every check Apply runs.
//
// freed (plan only) are the CIDRs of pools earlier steps delete: their IPAM
// blocks are released by that deletion (which refuses while any holds an
// address), so they do not refuse a pool recreated there now; apply checks the
// blocks again.
func (a *ensurePoolImpl) decide(ctx context.Context, cal calico.Client, in ensureInput, freed []poolsahead.Freed) (ensureVerdict, error) {
	var v ensureVerdict
	existing, pools, err := livePool(ctx, cal, in.name)
	if err != nil {
		return v, err
	}
	v.existing = existing
	v.facts = append(v.facts, apiFact(cal), poolFact(in.name, existing))
	v.problems = append(v.problems, calico.ValidateSpec(in.name, in.spec)...)
	v.fut = ahead(cal, in.name) // plan only
	if v.op, err = a.env.operatorView(ctx, in.name, existing, v.fut); err != nil {
		return v, err
	}
	if v.op.inst != nil {
		if err := a.decideOperator(ctx, &v, in); err != nil {
			return v, err
		}
	}
	if existing != nil {
		if v.op.inst == nil {
			a.compare(&v, in)
			if err := a.checkLiveChange(ctx, cal, &v, in); err != nil {
				return v, err
			}
		}
		// A pool that already lies outside the cluster CIDR is not made worse by
		// converging it: a warning, not a refusal.
		if sources, err := a.clusterCIDRs(ctx, cal, in); err == nil && existing.CIDR.IsValid() {
			for _, p := range calico.CheckInsideClusterCIDR(existing.CIDR, sources) {
				v.warnings = append(v.warnings, "existing pool: "+p)
			}
		}
		return v, nil
	}
	blocks, err := cal.Live().Blocks(ctx)
	if err != nil {
		v.problems = append(v.problems, fmt.Sprintf("cannot read every IPAM block, so leftover blocks in %s cannot be ruled out: %v", in.cidr, err))
	}
	blocks, v.later = releasedLater(blocks, freed)
	v.problems = append(v.problems, calico.CheckNewPool(in.name, in.cidr, in.spec.BlockSize, pools, blocks)...)
	sources, err := a.clusterCIDRs(ctx, cal, in)
	if err != nil {
		v.problems = append(v.problems, err.Error())
	}
	v.problems = append(v.problems, calico.CheckInsideClusterCIDR(in.cidr, sources)...)
	for _, s := range sources {
		v.facts = append(v.facts, fmt.Sprintf("cluster CIDR from %s: %v", s.Source, s.CIDRs))
	}
	return v, nil
}

// releasedLater drops the blocks that lie in a pool an earlier step deletes
// (freed) and says so: that deletion releases them, or refuses.
func releasedLater(blocks []calico.Block, freed []poolsahead.Freed) ([]calico.Block, []string) {
	if len(freed) == 0 {
		return blocks, nil
	}
	n := map[int]int{}
	kept := blocks[:0:0]
	for _, b := range blocks {
		i := slices.IndexFunc(freed, func(f poolsahead.Freed) bool { return f.CIDR.Overlaps(b.CIDR) && f.CIDR.Bits() <= b.CIDR.Bits() })
		if i < 0 {
			kept = append(kept, b)
			continue
		}
		n[i]++
	}
	var later []string
	for i, f := range freed {
		if n[i] > 0 {
			later = append(later, fmt.Sprintf("%d IPAM block(s) of pool %s (%s) are released when %s deletes it; apply checks none is left", n[i], f.Name, f.CIDR, f.By))
		}
	}
	return kept, later
}

// compare judges an existing pool: immutable fields must match, the owned fields
// that differ become the patch.
func (a *ensurePoolImpl) compare(v *ensureVerdict, in ensureInput) {
	p := v.existing
	if p.Deleting {
		v.problems = append(v.problems, fmt.Sprintf("pool %s is being deleted", p.Name))
	}
	if msg := operatorManaged(p); msg != "" {
		v.problems = append(v.problems, msg)
	}
	v.problems = append(v.problems, calico.CheckImmutable(p, in.cidr, in.spec.BlockSize)...)
	want, have := specFields(in.spec), specFields(p.Spec)
	v.patch = map[string]any{}
	for _, k := range convergedFields {
		if !in.given[k] {
			continue // not written by the step: the pool keeps what it has
		}
		if k == "allowedUses" && sameUses(in.spec.AllowedUses, p.Spec.AllowedUses) {
			continue
		}
		if !reflect.DeepEqual(want[k], have[k]) {
			v.patch[k] = want[k]
			v.diffs = append(v.diffs, fieldDiff{k, have[k], want[k]})
		}
	}
}

func sameUses(a, b []v3.IPPoolAllowedUse) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// clusterCIDRs are the pod CIDR sources the new pool must lie in: the clusterCIDR
// parameter when given, otherwise what the cluster configures.
func (a *ensurePoolImpl) clusterCIDRs(ctx context.Context, cal calico.Client, in ensureInput) ([]calico.CIDRSource, error) {
	if in.clusterCIDR.IsValid() {
		return []calico.CIDRSource{{Source: "the clusterCIDR parameter", CIDRs: []netip.Prefix{in.clusterCIDR}}}, nil
	}
	sources, err := cal.Live().ClusterCIDRs(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot read the cluster pod CIDR: %w", err)
	}
	return sources, nil
}

// ensurePoolImpl creates or converges a pool.
type ensurePoolImpl struct{ env *poolEnv }

func (a *ensurePoolImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Planned{}, err
	}
	var freed []poolsahead.Freed
	if c.Ahead != nil {
		live, err := cal.Live().Pools(ctx)
		if err != nil {
			return Planned{}, fmt.Errorf("ensurePool %q: read pools: %w", in.name, err)
		}
		freed = c.Ahead.Freed(live)
	}
	cal = c.Ahead.Client(cal)
	v, err := a.decide(ctx, cal, in, freed)
	if err != nil {
		return Planned{}, fmt.Errorf("ensurePool %q: %w", in.name, err)
	}
	if len(v.problems) > 0 {
		return Planned{}, refuse("ensurePool", in.name, v.problems)
	}
	out := Planned{Facts: v.facts, Warnings: v.warnings}
	switch {
	case v.op.inst != nil:
		a.planOperator(&out, in, v)
	case v.existing == nil:
		out.Change = plans.Create
		out.Details = []string{fmt.Sprintf("create pool %s %s (%s) through %s", in.name, in.cidr, describeSpec(in.spec), cal.Detection().String())}
	case len(v.patch) > 0:
		out.Change = plans.Update
		out.Details = append([]string{"patch pool " + in.name + ":"}, diffStrings(v.diffs)...)
	default:
		out.Change = plans.None
		out.Details = []string{"pool " + in.name + " is as specified"}
	}
	if out.Change == plans.Create && len(out.Details) > 0 {
		if v.fut.Deleted() {
			out.Details[0] += " (again: pool " + v.fut.Why() + ")"
		}
		out.Details = append(out.Details, v.later...)
	}
	return out, nil
}

func (a *ensurePoolImpl) start(c *Call) (ensureInput, calico.Client, error) {
	in, err := ensureInputFrom(c)
	if err != nil {
		return in, nil, fmt.Errorf("ensurePool: %w", err)
	}
	cal, err := a.env.client()
	if err != nil {
		return in, nil, fmt.Errorf("ensurePool %q: %w", in.name, err)
	}
	return in, cal, nil
}

// Apply creates the pool (intent recorded first, the pool annotated with the run
// id) or patches the owned fields that differ, with the observed resourceVersion as
// precondition: on a conflict it observes and judges again.
func (a *ensurePoolImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		v, err := a.decide(ctx, cal, in, nil)
		if err != nil {
			return err
		}
		if len(v.problems) > 0 {
			return refuse("ensurePool", in.name, v.problems)
		}
		if v.op.inst != nil {
			out, err = a.convergeOperator(ctx, cal, c, in, v)
			return err
		}
		out, err = a.converge(ctx, cal, c, in, v)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return Outcome{}, err
		}
		return Outcome{}, fmt.Errorf("ensurePool %q: %w", in.name, err)
	}
	return out, nil
}

func (a *ensurePoolImpl) converge(ctx context.Context, cal calico.Client, c *Call, in ensureInput, v ensureVerdict) (Outcome, error) {
	outputs := func(created bool) map[string]any {
		return map[string]any{"name": in.name, "cidr": in.cidr.String(), "created": created}
	}
	if v.existing == nil {
		if err := c.Recorder.Intent(ctx, "create", in.name); err != nil {
			return Outcome{}, err
		}
		_, err := cal.CreatePool(ctx, in.name, specFields(in.spec), map[string]string{calico.AnnotationCreatedByRun: c.RunID})
		if errors.Is(err, calico.ErrExists) {
			// Created by someone else since we looked: judge again.
			return Outcome{}, apierrors.NewConflict(schema.GroupResource{Resource: "ippools"}, in.name, err)
		}
		if err != nil {
			return Outcome{}, err
		}
		if err := c.Recorder.Created(ctx, poolObject(in.name)); err != nil {
			return Outcome{}, err
		}
		return Outcome{Changed: true, Outputs: outputs(true), Message: fmt.Sprintf("created pool %s %s (%s) through %s", in.name, in.cidr, describeSpec(in.spec), cal.Detection().String())}, nil
	}
	created := v.existing.Annotations[calico.AnnotationCreatedByRun] == c.RunID
	if created && !slices.Contains(c.Prior.Created, poolObject(in.name)) {
		// Resumed after a crash between creating and recording: record it now.
		if err := c.Recorder.Created(ctx, poolObject(in.name)); err != nil {
			return Outcome{}, err
		}
	}
	if len(v.patch) == 0 {
		return Outcome{Outputs: outputs(created), Message: "pool " + in.name + " is as specified"}, nil
	}
	if _, err := cal.PatchPool(ctx, in.name, calico.PoolPatch{Spec: v.patch, ResourceVersion: v.existing.ResourceVersion}); err != nil {
		return Outcome{}, err
	}
	return Outcome{Changed: true, Outputs: outputs(created), Message: fmt.Sprintf("updated pool %s: %s", in.name, strings.Join(diffStrings(v.diffs), ", "))}, nil
}

// Invert deletes the pool, only if this run created it (the pool's own annotation
// says so) and nothing but node tunnel addresses is in it; otherwise it keeps it and
// says why. Tunnel addresses are there because the pool serves a tunnel kind
// (calico-node takes them from it the moment it exists, or when another pool is
// disabled): the inverse disables the pool, waits for calico-node to move them back
// or remove them, as it does for any disabled pool, and then deletes it. Absent:
// nothing to do.
func (a *ensurePoolImpl) Invert(ctx context.Context, c *Call) (InverseOutcome, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return InverseOutcome{}, err
	}
	fail := func(err error) (InverseOutcome, error) {
		return InverseOutcome{}, fmt.Errorf("ensurePool %q inverse: %w", in.name, err)
	}
	var changed bool
	var note, lastInUse string
	// calico-node may be assigning a tunnel address from the pool while it is
	// being checked (it reacts to the pool's creation): an in-use refusal from the
	// delete is judged again, a few times.
	for attempt := 0; attempt < 3; attempt++ {
		p, _, err := livePool(ctx, cal, in.name)
		if err != nil {
			return fail(err)
		}
		if view, err := a.env.operatorView(ctx, in.name, p, nil); err != nil {
			return fail(err)
		} else if view.inst != nil {
			return a.invertOperator(ctx, cal, c, in, p, view)
		}
		if p == nil {
			return InverseOutcome{Changed: changed, Message: "pool " + in.name + " is already absent"}, nil
		}
		if by := p.Annotations[calico.AnnotationCreatedByRun]; by != c.RunID {
			if by == "" {
				by = "not by runbook"
			}
			return InverseOutcome{Kept: fmt.Sprintf("pool %s was not created by this run (created %s)", in.name, by)}, nil
		}
		h, err := poolHolders(ctx, cal.Live(), p)
		if err != nil {
			return fail(err)
		}
		if !h.empty() {
			if !h.onlyTunnels() {
				return InverseOutcome{Changed: changed, Kept: fmt.Sprintf("pool %s is in use: %s", in.name, strings.Join(h.lines(), "; "))}, nil
			}
			d, err := a.drainTunnels(ctx, cal, c, p, h, false)
			if err != nil {
				return fail(err)
			}
			changed = true
			if d.kept != "" {
				return InverseOutcome{Changed: true, Kept: d.kept}, nil
			}
			note = " after " + d.how()
		}
		_, err = cal.DeletePool(ctx, in.name, p.UID)
		switch {
		case err == nil:
			return InverseOutcome{Changed: true, Message: "deleted pool " + in.name + ", created by this run" + note}, nil
		case errors.Is(err, calico.ErrNotFound):
			return InverseOutcome{Changed: changed, Message: "pool " + in.name + " is already absent"}, nil
		case errors.Is(err, calico.ErrInUse):
			changed, lastInUse = true, err.Error() // DeletePool disabled it; look again
		default:
			return fail(err)
		}
	}
	return InverseOutcome{Changed: changed, Kept: lastInUse}, nil
}

// tunnelDrainTimeout bounds the wait for calico-node to move tunnel addresses out
// of a disabled pool (it reacts to the pool watch at once).
const tunnelDrainTimeout = 2 * time.Minute

// drainTunnels disables a pool this run created and waits until no tunnel address
// is in it any more. It returns why the pool is kept when they stay. An
// operator's pool (byOperator) is never patched here: the operator disabled it
// through its Installation entry, and reverts direct edits.
func (a *ensurePoolImpl) drainTunnels(ctx context.Context, cal calico.Client, c *Call, p *calico.Pool, h holders, byOperator bool) (drained, error) {
	var d drained
	if byOperator && !disabled(p) {
		return d, fmt.Errorf("ensurePool %q inverse: the operator has not disabled pool %s as its Installation entry says", p.Name, p.Name)
	}
	bySelector := !p.Spec.Disabled && calico.SelectsNoNode(p.Spec.NodeSelector)
	if !disabled(p) {
		runID := c.RunID
		_, err := cal.PatchPool(ctx, p.Name, calico.PoolPatch{Spec: map[string]any{"disabled": true},
			Annotations: map[string]*string{calico.AnnotationDisabledByRun: &runID}, ResourceVersion: p.ResourceVersion})
		if err != nil {
			return d, fmt.Errorf("ensurePool %q inverse: disable it so calico-node moves its tunnel addresses: %w", p.Name, err)
		}
		// calico-node may be assigning from the pool on the strength of a pool list
		// read just before the disable: let that land before judging emptiness.
		if err := calico.InFlightGrace(ctx); err != nil {
			return d, err
		}
	}
	// calico-node v3.28 moves tunnel addresses out of a disabled pool at once, but
	// not out of one disabled by nodeSelector, and it can miss a pool update that
	// arrives while it is reconciling: its kick channel is unbuffered and the send
	// does not block (node/pkg/allocateip/allocateip.go, reconciler.run and
	// OnUpdates), and there is no periodic resync. Seen in TestPoolActions on the
	// real allocator: a rollback's disable came during the reconcile of the
	// disable before it, and the addresses stayed. So it gets tunnelReact to move
	// them; what is left then, calico-node is restarted for, one node at a time.
	react := tunnelReact
	if bySelector {
		react = 0
	}
	if kept := a.awaitEmpty(ctx, cal, p, &h, react); kept == "" {
		return d, nil
	}
	mover := &moveTunnelsImpl{env: a.env}
	m, err := mover.run(ctx, cal, c, moveTunnelsInput{pool: p.Name, nodeTimeout: tunnelDrainTimeout, allowRemoval: true})
	d.restarted = m.restarted
	if err != nil {
		if errors.Is(err, ErrRefused) || ctx.Err() == nil {
			d.kept = fmt.Sprintf("pool %s is disabled, and restarting calico-node did not move its tunnel addresses out: %v", p.Name, err)
			return d, nil
		}
		return d, err
	}
	d.kept = a.awaitEmpty(ctx, cal, p, &h, tunnelDrainTimeout)
	return d, nil
}

// drained is what emptying a pool of tunnel addresses took.
type drained struct {
	kept      string // why the pool is kept, when the addresses stayed
	restarted int    // calico-node pods restarted for them
}

// how says, for the rollback's message, how the addresses left: an operator
// seeing calico-node pods replaced during a rollback must find why.
func (d drained) how() string {
	if d.restarted > 0 {
		return fmt.Sprintf("restarting calico-node on %d node(s) to move the node tunnel addresses out of it", d.restarted)
	}
	return "calico-node moved the node tunnel addresses out of it"
}

// tunnelReact is how long calico-node gets to move tunnel addresses out of a pool
// it no longer may use before it is restarted for them: it reacts within a second
// when it sees the change.
const tunnelReact = 20 * time.Second

// awaitEmpty waits up to d until nothing holds an address in p (h is updated),
// and says why the pool is kept otherwise.
func (a *ensurePoolImpl) awaitEmpty(ctx context.Context, cal calico.Client, p *calico.Pool, h *holders, d time.Duration) string {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := cal.Await(wctx, func(r calico.Reader) (bool, error) {
		now, err := poolHolders(wctx, r, p)
		if err != nil {
			return false, nil // the cache may hold a block it cannot decode; the live check decides
		}
		*h = now
		return h.empty(), nil
	})
	if err != nil {
		return fmt.Sprintf("pool %s is disabled, but calico-node did not move its tunnel addresses out within %s (is it running?): %s",
			p.Name, d, strings.Join(h.lines(), "; "))
	}
	return ""
}

func describeSpec(s v3.IPPoolSpec) string {
	uses := make([]string, len(s.AllowedUses))
	for i, u := range s.AllowedUses {
		uses[i] = string(u)
	}
	return fmt.Sprintf("blockSize %d, ipipMode %s, vxlanMode %s, natOutgoing %t, nodeSelector %s, allowedUses %s, disableBGPExport %t, disabled %t",
		s.BlockSize, s.IPIPMode, s.VXLANMode, s.NATOutgoing, s.NodeSelector, strings.Join(uses, ","), s.DisableBGPExport, s.Disabled)
}
