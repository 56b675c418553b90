package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/preflight"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

// releaseLeakedAddresses is a step of its own rather than a releaseLeaked
// parameter of deletePool: deletePool is a point of no return that never releases
// an address in use, and keeping it that simple is worth a step. As a step, the
// release is planned on its own (plan lists exactly the addresses), re-runnable
// (satisfied when nothing leaked is left), can wait out its grace period without
// holding the point of no return, and is useful outside a migration too.
var releaseLeakedAddresses = Definition{
	Decl: &decl.Action{
		Name:    "releaseLeakedAddresses",
		Summary: "Release IPAM addresses in a pool whose pod is gone (opt-in, guarded; never an address a pod holds).",
		Description: `Finds addresses in the pool allocated to a pod that no longer exists and that no pod
holds (calico-kube-controllers' leak candidates), and releases them once this run has seen each
leaked for gracePeriod (the time the pod went is recorded nowhere, so the grace starts when the
run first sees the leak, kept in the journal across resumes); it waits for that, up to timeout.
Immediately before releasing, it reads the pod by namespace/name again (it must be gone) and
every pod's addresses (none may hold the address), and writes the IPAMBlock with a
resourceVersion precondition, then decrements the address's IPAMHandle as Calico does. An
address whose pod exists is never touched (calico#5044), nor tunnel or unattributed ones.
Satisfied (unchanged) when no leaked address is left.`,
		Params: []decl.Param{
			poolRole(checked(p("pool", value.String, true, nil, "Name of the pool whose leaked addresses are released."), check.PoolName), decl.PoolReleasesLeaks),
			p("gracePeriod", value.Duration, false, 15*time.Minute, "How long an address must have been seen leaked before it is released."),
			p("timeout", value.Duration, false, 30*time.Minute, "How long to wait for grace periods to pass."),
		},
		Outputs: []decl.Output{
			{Name: "released", Type: value.Int, Description: "Number of addresses this step released."},
		},
		Needs: []decl.Permission{
			{Group: "crd.projectcalico.org", Resource: "ipamblocks", Verbs: []string{"list", "patch"}, Why: "free a leaked address in its block, with a resourceVersion precondition (actions/release_leaked.go)"},
			{Group: "crd.projectcalico.org", Resource: "ipamhandles", Verbs: []string{"get", "patch", "delete"}, Why: "decrement the released address's handle (actions/release_leaked.go)"},
			{Resource: "pods", Verbs: []string{"get", "list"}, Why: "re-check that the owner is gone and no pod holds the address (actions/release_leaked.go)"},
		},
	},
	New: newReleaseLeaked,
}

var (
	gvrIPAMBlocks  = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
	gvrIPAMHandles = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamhandles"}
)

// releaseLeakedImpl frees leaked addresses, writing IPAM blocks and handles
// through the dynamic client as calico-kube-controllers does.
type releaseLeakedImpl struct {
	env *poolEnv
	dyn dynamic.Interface
	now func() time.Time
}

func newReleaseLeaked(b *binding) Impl {
	a := &releaseLeakedImpl{env: b.env}
	if b.cluster != nil {
		a.dyn = b.cluster.Dynamic
	}
	return a
}

type leakInput struct {
	pool    string
	grace   time.Duration
	timeout time.Duration
}

func (a *releaseLeakedImpl) start(c *Call) (leakInput, calico.Client, error) {
	var in leakInput
	var err error
	if in.pool, err = paramString(c, "pool"); err != nil {
		return in, nil, fmt.Errorf("releaseLeakedAddresses: %w", err)
	}
	if in.grace, err = paramDuration(c, "gracePeriod", 15*time.Minute); err != nil {
		return in, nil, fmt.Errorf("releaseLeakedAddresses: %w", err)
	}
	if in.timeout, err = paramDuration(c, "timeout", 30*time.Minute); err != nil {
		return in, nil, fmt.Errorf("releaseLeakedAddresses: %w", err)
	}
	cal, err := a.env.client()
	if err != nil {
		return in, nil, fmt.Errorf("releaseLeakedAddresses %q: %w", in.pool, err)
	}
	if a.dyn == nil {
		return in, nil, fmt.Errorf("releaseLeakedAddresses %q: %w", in.pool, ErrNoCluster)
	}
	return in, cal, nil
}

// leaks lists the pool's leaked pod addresses, read live. ok is false when the pool
// does not exist.
func (a *releaseLeakedImpl) leaks(ctx context.Context, cal calico.Client, name string) ([]calico.Allocation, *calico.Pool, error) {
	p, _, err := livePool(ctx, cal, name)
	if err != nil || p == nil {
		return nil, p, err
	}
	h, err := preflight.ReadHealth(ctx, cal.Live(), nil)
	if err != nil {
		return nil, p, err
	}
	var out []calico.Allocation
	for _, l := range h.Leaked {
		if p.CIDR.Contains(l.IP) {
			out = append(out, l)
		}
	}
	return out, p, nil
}

// leakKey names a leak within one step invocation (the handle is part of it: an
// address released and allocated again is a new leak); leaksSeenKey journals them.
func leakKey(l calico.Allocation) string { return legacyLeakPrefix + l.IP.String() + "/" + l.Handle }

func (a *releaseLeakedImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Planned{}, err
	}
	cal = c.Ahead.Client(cal) // the pools as the earlier steps leave them
	leaks, p, err := a.leaks(ctx, cal, in.pool)
	if err != nil {
		return Planned{}, fmt.Errorf("releaseLeakedAddresses %q: %w", in.pool, err)
	}
	switch {
	case p == nil:
		return Planned{Change: plans.None, Details: []string{"pool " + in.pool + " does not exist: nothing to release"}}, nil
	case len(leaks) == 0:
		return Planned{Change: plans.None, Details: []string{"no leaked address in pool " + in.pool}}, nil
	}
	return Planned{Change: plans.Update, Details: []string{fmt.Sprintf("release %d leaked address(es) in pool %s once seen leaked for %s, each re-checked just before: %s",
		len(leaks), in.pool, in.grace, calico.DescribeAllocations(leaks, 10))}}, nil
}

func (a *releaseLeakedImpl) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// Apply releases leaked addresses as their grace periods pass, re-observing the
// cluster every round (an address that stopped being a leak is dropped).
func (a *releaseLeakedImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	fail := func(err error) (Outcome, error) {
		return Outcome{}, fmt.Errorf("releaseLeakedAddresses %q: %w", in.pool, err)
	}
	seen := readSightings(c.Prior.Intent)
	written, err := seen.encode()
	if err != nil {
		return fail(err)
	}
	if c.Prior.Intent[leaksSeenKey] == "" {
		written = "" // legacy sightings only: write them in the new form
	}
	var released []string
	// skipped are leaks the re-check found in use (or changed): never retried in
	// this step, which also guarantees the loop ends.
	skipped := map[string]bool{}
	for {
		all, p, err := a.leaks(ctx, cal, in.pool)
		if err != nil {
			return fail(err)
		}
		var leaks []calico.Allocation
		for _, l := range all {
			if !skipped[leakKey(l)] {
				leaks = append(leaks, l)
			}
		}
		if p == nil || len(leaks) == 0 {
			break
		}
		now := a.clock()
		// This round's sightings: the leaks seen now, first-seen times kept,
		// the rest (released, or no longer leaks) pruned. Journalled before
		// anything is released, in one write.
		round := make(sightings, len(all))
		for _, l := range all {
			d := digestOf(l)
			if first, ok := seen[d]; ok {
				round[d] = first
			} else {
				round[d] = now.Truncate(time.Millisecond) // as journalled
			}
		}
		seen = round
		enc, err := seen.encode()
		if err != nil {
			return fail(err)
		}
		if enc != written {
			if err := c.Recorder.Intent(ctx, leaksSeenKey, enc); err != nil {
				return fail(err)
			}
			written = enc
		}
		var next time.Time
		for _, l := range leaks {
			k := leakKey(l)
			first := seen[digestOf(l)]
			due := first.Add(in.grace)
			if now.Before(due) {
				if next.IsZero() || due.Before(next) {
					next = due
				}
				continue
			}
			ok, err := a.release(ctx, cal, l)
			if err != nil {
				return fail(err)
			}
			if ok {
				released = append(released, l.String())
			}
			skipped[k] = true // released or found in use: done with it either way
		}
		if next.IsZero() {
			continue // released what was due: observe again
		}
		t := time.NewTimer(time.Until(next) + 100*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(fmt.Errorf("%d leaked address(es) not yet past the grace period %s when the timeout passed (released %d): %w", len(leaks), in.grace, len(released), ctx.Err()))
		case <-t.C:
		}
	}
	out := Outcome{Changed: len(released) > 0, Outputs: map[string]any{"released": len(released)}}
	if len(released) == 0 {
		out.Message = "no leaked address in pool " + in.pool
	} else {
		sort.Strings(released)
		out.Message = fmt.Sprintf("released %d leaked address(es) in pool %s: %s", len(released), in.pool, strings.Join(released, ", "))
	}
	return out, nil
}

// errNotLeaked says the re-check found the address in use (or changed): skip it.
var errNotLeaked = errors.New("not leaked")

// release re-checks one leak against the API server and releases it from its
// block; false when the re-check found it is no longer a leak.
func (a *releaseLeakedImpl) release(ctx context.Context, cal calico.Client, l calico.Allocation) (bool, error) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		// The owner must really be gone: a live GET, not the cache.
		if a.env.kube == nil {
			return ErrNoCluster
		}
		_, err := a.env.kube.CoreV1().Pods(l.Namespace).Get(ctx, l.Pod, metav1.GetOptions{})
		switch {
		case err == nil:
			return errNotLeaked
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("re-check pod %s/%s: %w", l.Namespace, l.Pod, err)
		}
		// And no pod may hold the address (a pod of another name, calico#5044).
		pods, err := cal.Live().Pods(ctx)
		if err != nil {
			return fmt.Errorf("re-check pod addresses: %w", err)
		}
		for i := range pods {
			if pods[i].HoldsAddress() && containsIP(pods[i].IPs, l.IP) {
				return errNotLeaked
			}
		}
		return a.releaseFromBlock(ctx, l)
	})
	if errors.Is(err, errNotLeaked) {
		return false, nil
	}
	return err == nil, err
}

func containsIP(ips []netip.Addr, ip netip.Addr) bool {
	for _, x := range ips {
		if x == ip {
			return true
		}
	}
	return false
}

// releaseFromBlock frees the address in its IPAMBlock the way libcalico-go's
// allocationBlock.release does (allocation nil, ordinal back to unallocated,
// unreferenced attributes removed and the rest renumbered, the ordinal's
// sequence number cleared, the block's sequence number bumped), written as one
// merge patch conditional on the block's resourceVersion; then decrements the
// handle. The allocation must still carry the leak's handle and pod.
func (a *releaseLeakedImpl) releaseFromBlock(ctx context.Context, l calico.Allocation) error {
	blocks, err := a.dyn.Resource(gvrIPAMBlocks).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list IPAM blocks: %w", err)
	}
	for i := range blocks.Items {
		u := &blocks.Items[i]
		var b libapiv3.IPAMBlock
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
			return fmt.Errorf("decode IPAMBlock %s: %w", u.GetName(), err)
		}
		cidr, err := calico.ParseCIDR(b.Spec.CIDR)
		if err != nil || !cidr.Contains(l.IP) {
			continue
		}
		spec, handle, err := releaseOrdinal(b.Spec, cidr, l)
		if err != nil {
			return fmt.Errorf("IPAMBlock %s: %w", u.GetName(), err)
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": u.GetResourceVersion()}, "spec": spec})
		if err != nil {
			return err
		}
		if _, err := a.dyn.Resource(gvrIPAMBlocks).Patch(ctx, u.GetName(), types.MergePatchType, patch,
			metav1.PatchOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: "runbook"}); err != nil {
			return err // a conflict re-checks everything
		}
		if handle != "" {
			if err := a.decrementHandle(ctx, handle, cidr); err != nil {
				return fmt.Errorf("released %s, but its handle %s: %w", l.IP, handle, err)
			}
		}
		return nil
	}
	return errNotLeaked // no block holds it any more
}

// releaseOrdinal returns the spec fields to patch to free l's address, and the
// allocation's handle.
func releaseOrdinal(s libapiv3.IPAMBlockSpec, cidr netip.Prefix, l calico.Allocation) (map[string]any, string, error) {
	ord, ok := ordinalOf(cidr, l.IP)
	if !ok || ord >= len(s.Allocations) {
		return nil, "", fmt.Errorf("address %s is outside the block's allocations", l.IP)
	}
	idx := s.Allocations[ord]
	if idx == nil {
		return nil, "", errNotLeaked // released by someone else
	}
	if *idx < 0 || *idx >= len(s.Attributes) {
		return nil, "", fmt.Errorf("allocation %d of %s points at attribute %d of %d", ord, l.IP, *idx, len(s.Attributes))
	}
	attr := s.Attributes[*idx]
	handle := ""
	if attr.AttrPrimary != nil {
		handle = strings.Split(*attr.AttrPrimary, "\r")[0]
	}
	if handle != l.Handle || attr.AttrSecondary["namespace"] != l.Namespace || attr.AttrSecondary["pod"] != l.Pod {
		return nil, "", errNotLeaked // reallocated since it was observed
	}
	refs := 0
	for _, a := range s.Allocations {
		if a != nil && *a == *idx {
			refs++
		}
	}
	allocs := make([]any, len(s.Allocations))
	removed := *idx
	for i, a := range s.Allocations {
		switch {
		case i == ord || a == nil:
			allocs[i] = nil
		case refs == 1 && *a > removed:
			allocs[i] = *a - 1
		default:
			allocs[i] = *a
		}
	}
	attrs := s.Attributes
	if refs == 1 {
		attrs = append(append([]libapiv3.AllocationAttribute{}, s.Attributes[:removed]...), s.Attributes[removed+1:]...)
	}
	unalloc := append(append([]int{}, s.Unallocated...), ord)
	spec := map[string]any{"allocations": allocs, "unallocated": unalloc, "attributes": attrs, "sequenceNumber": s.SequenceNumber + 1}
	if _, ok := s.SequenceNumberForAllocation[strconv.Itoa(ord)]; ok {
		spec["sequenceNumberForAllocation"] = map[string]any{strconv.Itoa(ord): nil}
	}
	return spec, handle, nil
}

// ordinalOf is the address's offset from the block's first address.
func ordinalOf(cidr netip.Prefix, ip netip.Addr) (int, bool) {
	if !cidr.Contains(ip) {
		return 0, false
	}
	a, b := cidr.Masked().Addr().As16(), ip.As16()
	var off uint64
	for i := 8; i < 16; i++ {
		off = off<<8 | uint64(b[i]-a[i])
	}
	// Blocks are at most 4096 addresses (/20, /116): the low 8 bytes hold the
	// offset, and byte-wise subtraction is exact because the block is aligned.
	return int(off), off < 1<<20
}

// decrementHandle lowers the handle's count for the block as libcalico-go's
// decrementHandle does, deleting the handle when nothing is left, with
// resourceVersion preconditions. KDD names handles by their lower-cased id.
func (a *releaseLeakedImpl) decrementHandle(ctx context.Context, handle string, block netip.Prefix) error {
	name := strings.ToLower(handle)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := a.dyn.Resource(gvrIPAMHandles).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		var h libapiv3.IPAMHandle
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &h); err != nil {
			return fmt.Errorf("decode IPAMHandle %s: %w", name, err)
		}
		key := block.String()
		left := map[string]int{}
		for k, n := range h.Spec.Block {
			left[k] = n
		}
		if left[key] > 1 {
			left[key]--
		} else {
			delete(left, key)
		}
		rv, uid := u.GetResourceVersion(), u.GetUID()
		if len(left) == 0 {
			err := a.dyn.Resource(gvrIPAMHandles).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		blockPatch := map[string]any{}
		for k := range h.Spec.Block {
			if n, ok := left[k]; ok {
				blockPatch[k] = n
			} else {
				blockPatch[k] = nil
			}
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": rv}, "spec": map[string]any{"block": blockPatch}})
		if err != nil {
			return err
		}
		_, err = a.dyn.Resource(gvrIPAMHandles).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "runbook"})
		return err
	})
}
