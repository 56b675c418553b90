package calico

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/runbookdev/runbook/internal/textlist"
)

// DeletePool deletes a pool the way clientv3 and the Calico API server do (disable,
// release the block affinities inside the pool, delete), with two differences that
// make it safe where Calico's is not. Calico releases affinities with
// requireEmpty=false and never checks for addresses in use, so blocks still holding
// addresses become orphans (calico#5044); here nothing is touched while any block
// inside the pool holds an address, every block is released with a
// compare-and-delete, and the blocks are checked again after the disable, when no
// allocation can start any more.
func (c *CRD) DeletePool(ctx context.Context, name string, uid types.UID) (DeleteReport, error) {
	var rep DeleteReport
	u, err := c.dyn.Resource(c.pools.gvr).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return rep, fmt.Errorf("delete IPPool %s: %w", name, writeError(err))
	}
	pool, err := poolFromObject(u)
	if err != nil {
		return rep, err
	}
	if uid != "" && pool.UID != uid {
		return rep, fmt.Errorf("delete IPPool %s: %w: it was deleted and recreated since it was checked", name, ErrConflict)
	}
	if !pool.CIDR.IsValid() {
		return rep, fmt.Errorf("delete IPPool %s: cannot parse its cidr %q", name, pool.Spec.CIDR)
	}
	if err := c.checkBlocksEmpty(ctx, pool.CIDR, "nothing was changed"); err != nil {
		return rep, fmt.Errorf("delete IPPool %s: %w", name, err)
	}
	if !pool.Spec.Disabled {
		if _, err := c.PatchPool(ctx, name, PoolPatch{Spec: map[string]any{"disabled": true}, ResourceVersion: pool.ResourceVersion}); err != nil {
			return rep, fmt.Errorf("delete IPPool %s: disable: %w", name, err)
		}
		rep.Disabled = true
		if err := InFlightGrace(ctx); err != nil {
			return rep, fmt.Errorf("delete IPPool %s: %w", name, err)
		}
	}
	if err := c.releaseEmptyBlocks(ctx, pool.CIDR, &rep); err != nil {
		return rep, fmt.Errorf("delete IPPool %s: release its blocks: %w", name, err)
	}
	if err := c.checkBlocksEmpty(ctx, pool.CIDR, "the pool stays, disabled"); err != nil {
		return rep, fmt.Errorf("delete IPPool %s: %w", name, err)
	}
	err = c.dyn.Resource(c.pools.gvr).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pool.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return rep, fmt.Errorf("delete IPPool %s: %w", name, writeError(err))
	}
	if c.det.Flavour == FlavourV3 && c.det.V3 == V3CRDs {
		// Native v3 CRDs hold the deletion with a finalizer until no IPAM block
		// is left in the CIDR (released above): the pool is gone only then.
		if err := c.cache.waitFor(ctx, func() bool { _, ok := c.cache.pools.get(name); return !ok }); err != nil {
			return rep, fmt.Errorf("delete IPPool %s: waiting for its finalizer: %w", name, err)
		}
		return rep, nil
	}
	c.awaitGone(ctx, name)
	return rep, nil
}

// checkBlocksEmpty fails with ErrInUse when any block inside cidr holds an address,
// or when the blocks cannot all be read (then emptiness is not known).
func (c *CRD) checkBlocksEmpty(ctx context.Context, cidr netip.Prefix, consequence string) error {
	blocks, err := c.live.Blocks(ctx)
	if err != nil {
		return fmt.Errorf("cannot tell whether the pool's IPAM blocks are empty (%s): %w", consequence, err)
	}
	if allocs := AllocationsIn(blocks, cidr); len(allocs) > 0 {
		return fmt.Errorf("%w: IPAM still has %d address(es) allocated in %s (%s): %s", ErrInUse, len(allocs), cidr, consequence, DescribeAllocations(allocs, 10))
	}
	return nil
}

// releaseEmptyBlocks releases every block affinity inside cidr and deletes the
// (empty) blocks, in Calico's order (ipam releaseBlockAffinity): mark the affinity
// pendingDeletion, delete the block, delete the affinity. Blocks without affinity
// inside cidr are deleted too when empty, so nothing of the pool is left in IPAM.
func (c *CRD) releaseEmptyBlocks(ctx context.Context, cidr netip.Prefix, rep *DeleteReport) error {
	affs, err := c.live.Affinities(ctx)
	if err != nil {
		return err
	}
	blocks, err := c.live.Blocks(ctx)
	if err != nil {
		return err
	}
	byCIDR := map[netip.Prefix]*Block{}
	for _, b := range BlocksIn(blocks, cidr) {
		byCIDR[b.CIDR] = b
	}
	for _, a := range AffinitiesIn(affs, cidr) {
		if err := c.markAffinity(ctx, a.Name, "pendingDeletion"); err != nil {
			return err
		}
		if b := byCIDR[a.CIDR]; b != nil {
			if err := c.deleteEmptyBlock(ctx, b.Name); err != nil {
				if errors.Is(err, ErrInUse) {
					// Leave the affinity as it was found: the block is someone's again.
					_ = c.markAffinity(ctx, a.Name, "confirmed")
				}
				return err
			}
			rep.ReleasedBlocks = append(rep.ReleasedBlocks, b.CIDR.String())
			delete(byCIDR, a.CIDR)
		}
		if err := c.deleteAffinity(ctx, a.Name); err != nil {
			return err
		}
		rep.DeletedAffinities = append(rep.DeletedAffinities, fmt.Sprintf("%s (node %s)", a.CIDR, a.Node))
	}
	for _, b := range byCIDR {
		if err := c.deleteEmptyBlock(ctx, b.Name); err != nil {
			return err
		}
		rep.ReleasedBlocks = append(rep.ReleasedBlocks, b.CIDR.String())
	}
	return nil
}

// markAffinity sets a BlockAffinity's state, retrying on conflict with a fresh read.
func (c *CRD) markAffinity(ctx context.Context, name, state string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := c.dyn.Resource(gvrAffinities).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ignoreNotFound(err)
		}
		_, err = c.patchRV(ctx, gvrAffinities, name, u.GetResourceVersion(), map[string]any{"state": state})
		if err != nil {
			return fmt.Errorf("mark BlockAffinity %s %s: %w", name, state, err)
		}
		return nil
	})
}

// deleteAffinity deletes a BlockAffinity with Calico's KDD protocol (mark it
// deleted, then delete that version), as for blocks.
func (c *CRD) deleteAffinity(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := c.dyn.Resource(gvrAffinities).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return ignoreNotFound(err)
		}
		rv, err := c.patchRV(ctx, gvrAffinities, name, u.GetResourceVersion(), map[string]any{"deleted": "true"})
		if err != nil {
			return fmt.Errorf("mark BlockAffinity %s deleted: %w", name, err)
		}
		uid := u.GetUID()
		err = c.dyn.Resource(gvrAffinities).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		return ignoreNotFound(err)
	})
}

// patchRV merge-patches spec fields of a Calico object on the condition that it is
// still at resourceVersion rv, and returns the new resourceVersion.
func (c *CRD) patchRV(ctx context.Context, gvr schema.GroupVersionResource, name, rv string, spec map[string]any) (string, error) {
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": rv}, "spec": spec})
	if err != nil {
		return "", err
	}
	u, err := c.dyn.Resource(gvr).Patch(ctx, name, types.MergePatchType, data,
		metav1.PatchOptions{FieldValidation: metav1.FieldValidationStrict, FieldManager: fieldManager})
	if err != nil {
		return "", err
	}
	return u.GetResourceVersion(), nil
}

// deleteEmptyBlock deletes an IPAMBlock if, and only if, it holds no address, with
// Calico's KDD protocol: mark it deleted (so Calico clients reading it treat it as
// gone), then delete it on the condition that it is still that version. A conflict
// means someone wrote the block in between: read it again and decide again.
func (c *CRD) deleteEmptyBlock(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := c.dyn.Resource(gvrBlocks).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get IPAMBlock %s: %w", name, err)
		}
		b, err := blockFromObject(u)
		if err != nil {
			return err
		}
		if len(b.Allocations) > 0 {
			return fmt.Errorf("%w: IPAM block %s holds %d address(es): %s", ErrInUse, b.CIDR, len(b.Allocations), DescribeAllocations(b.Allocations, 10))
		}
		rv := u.GetResourceVersion()
		if !b.Deleted {
			if rv, err = c.patchRV(ctx, gvrBlocks, name, rv, map[string]any{"deleted": true}); err != nil {
				return ignoreNotFound(err)
			}
		}
		uid := u.GetUID()
		err = c.dyn.Resource(gvrBlocks).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		return ignoreNotFound(err)
	})
}

// DisableGrace is how long an allocation that read the pool as enabled just before
// it was disabled may still take to land. Calico's own delete waits 500 ms for the
// same reason; the compare-and-delete of blocks catches what lands in a block we
// release, but not a block such an allocation claims afterwards.
const DisableGrace = time.Second

// InFlightGrace waits DisableGrace after a pool was disabled, or until ctx ends.
func InFlightGrace(ctx context.Context) error {
	t := time.NewTimer(DisableGrace)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// DescribeAllocations renders at most max allocations for a message, with owners.
func DescribeAllocations(allocs []Allocation, max int) string {
	return textlist.CappedFunc(allocs, max, Allocation.String)
}

// String renders an allocation with its owner.
func (a Allocation) String() string {
	switch a.Kind {
	case OwnerPod:
		return fmt.Sprintf("%s (pod %s/%s)", a.IP, a.Namespace, a.Pod)
	case OwnerTunnel:
		return fmt.Sprintf("%s (%s tunnel of node %s)", a.IP, a.Tunnel, a.Node)
	}
	if a.Handle != "" {
		return fmt.Sprintf("%s (unknown owner, handle %s)", a.IP, a.Handle)
	}
	return fmt.Sprintf("%s (unknown owner)", a.IP)
}
