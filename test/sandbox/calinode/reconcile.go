package calinode

import (
	"context"
	"errors"
	"fmt"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	"k8s.io/client-go/util/retry"
)

// reconcile is calico-node's reconcileTunnelAddrs for one node: for every tunnel
// kind, keep the node's address if it is still in a pool that serves the kind,
// move it if not, remove it if no pool serves the kind any more. It reads the node
// and the pools live, as calico-node does; the informers only trigger it.
func (a *Allocator) reconcile(ctx context.Context, nodeName string) error {
	if err := a.ensureNodeAddress(ctx, nodeName); err != nil {
		return err
	}
	node, err := a.cfg.Calico.Nodes().Get(ctx, nodeName, options.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading node %s: %w", nodeName, err)
	}
	pools, err := a.cfg.Calico.IPPools().List(ctx, options.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing IP pools: %w", err)
	}
	for _, k := range kinds {
		if cidrs := poolCIDRs(node, pools.Items, k); len(cidrs) > 0 {
			err = a.ensure(ctx, nodeName, cidrs, k)
		} else {
			err = a.remove(ctx, nodeName, k)
		}
		if err != nil {
			return fmt.Errorf("node %s, %s: %w", nodeName, k.attrType, err)
		}
	}
	return nil
}

// ensure mirrors allocateip.ensureHostTunnelAddress: an address that is ours and
// in one of cidrs stays; ours but elsewhere (its pool was disabled, lost Tunnel
// use, stopped selecting the node, ...) is released and replaced; one recorded
// on the node but taken by someone else is left alone and replaced.
func (a *Allocator) ensure(ctx context.Context, nodeName string, cidrs []cnet.IPNet, k kind) error {
	node, err := a.cfg.Calico.Nodes().Get(ctx, nodeName, options.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading node: %w", err)
	}
	release, assign := false, true
	if addr := k.get(node); addr == "" {
		// Defensively release the handle: the node may have lost its reference to an
		// allocation that still exists (a manual edit).
		release = true
	} else {
		ip := cnet.ParseIP(addr)
		if ip == nil {
			return fmt.Errorf("node records tunnel address %q, not an IP", addr)
		}
		attrs, storedHandle, err := a.cfg.Calico.IPAM().GetAssignmentAttributes(ctx, *ip)
		switch {
		case isNotExist(err):
			release = true // not allocated: replace it
		case err != nil:
			return fmt.Errorf("reading the allocation of %s: %w", addr, err)
		case attrs[ipam.AttributeType] == k.attrType && attrs[ipam.AttributeNode] == nodeName:
			if inCIDRs(*ip, cidrs) {
				assign = false
			} else {
				release = true
			}
		case len(attrs) == 0 && storedHandle == nil:
			// An allocation from before tunnel addresses had handles: take the same
			// address again with handle and attributes, unless someone beats us to it.
			err := a.reclaim(ctx, *ip, nodeName, k)
			if err == nil {
				return nil
			}
			var exists cerrors.ErrorResourceAlreadyExists
			if !errors.As(err, &exists) {
				return err
			}
		default:
			// The address belongs to a workload or another node: keep our hands off it.
		}
	}
	if release {
		handle, _ := k.handleAndAttributes(nodeName)
		if err := a.cfg.Calico.IPAM().ReleaseByHandle(ctx, handle); err != nil && !isNotExist(err) {
			return fmt.Errorf("releasing old tunnel address: %w", err)
		} else if err == nil {
			a.stats.released.Add(1)
			a.logf("node %s: released %s %s", nodeName, k.attrType, k.get(node))
		}
	}
	if !assign {
		return nil
	}
	return a.assign(ctx, nodeName, cidrs, k)
}

// assign mirrors allocateip.assignHostTunnelAddr: one address from cidrs with the
// node's handle and attributes, recorded on the node; released again if the node
// cannot be updated.
func (a *Allocator) assign(ctx context.Context, nodeName string, cidrs []cnet.IPNet, k kind) error {
	handle, attrs := k.handleAndAttributes(nodeName)
	args := ipam.AutoAssignArgs{
		HandleID:    &handle,
		Attrs:       attrs,
		Hostname:    nodeName,
		IntendedUse: v3.IPPoolAllowedUseTunnel,
	}
	if k.family == 4 {
		args.Num4, args.IPv4Pools = 1, cidrs
	} else {
		args.Num6, args.IPv6Pools = 1, cidrs
	}
	v4, v6, err := a.cfg.Calico.IPAM().AutoAssign(ctx, args)
	if err != nil {
		return fmt.Errorf("assigning a tunnel address: %w", err)
	}
	assigned := v4
	if k.family == 6 {
		assigned = v6
	}
	if assigned == nil {
		return errors.New("assigning a tunnel address: IPAM returned no assignment")
	}
	if err := assigned.PartialFulfillmentError(); err != nil {
		return fmt.Errorf("assigning a tunnel address: %w", err)
	}
	ip := assigned.IPs[0].IP.String()
	if err := a.updateNode(ctx, nodeName, func(n *libapi.Node) bool { k.set(n, ip); return true }); err != nil {
		if rerr := a.cfg.Calico.IPAM().ReleaseByHandle(ctx, handle); rerr != nil && !isNotExist(rerr) {
			err = errors.Join(err, fmt.Errorf("releasing %s again: %w", ip, rerr))
		}
		return fmt.Errorf("recording tunnel address %s on the node: %w", ip, err)
	}
	a.stats.assigned.Add(1)
	a.logf("node %s: assigned %s %s", nodeName, k.attrType, ip)
	return nil
}

// remove mirrors allocateip.removeHostTunnelAddr: release the node's handle (or,
// when the handle is gone, the exact address if it is ours) and clear the address
// on the node. Unlike calico-node it skips the node update when there is nothing
// to clear: the apiserver would treat it as a no-op anyway.
func (a *Allocator) remove(ctx context.Context, nodeName string, k kind) error {
	node, err := a.cfg.Calico.Nodes().Get(ctx, nodeName, options.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading node: %w", err)
	}
	addr := k.get(node)
	handle, _ := k.handleAndAttributes(nodeName)
	err = a.cfg.Calico.IPAM().ReleaseByHandle(ctx, handle)
	switch {
	case err == nil:
		a.stats.released.Add(1)
		a.logf("node %s: released %s %s (no pool serves it)", nodeName, k.attrType, addr)
	case !isNotExist(err):
		return fmt.Errorf("releasing tunnel address: %w", err)
	case addr != "":
		if err := a.releaseOrphan(ctx, addr, handle); err != nil {
			return err
		}
	}
	if addr == "" {
		return nil
	}
	return a.updateNode(ctx, nodeName, func(n *libapi.Node) bool {
		if k.get(n) == "" {
			return false
		}
		k.set(n, "")
		return true
	})
}

// releaseOrphan handles a node address without a handle object: an allocation
// without attributes or handle predates handles and is ours; one whose stored
// handle is ours lost its handle object. Anything else belongs to someone else.
func (a *Allocator) releaseOrphan(ctx context.Context, addr, handle string) error {
	ip := cnet.ParseIP(addr)
	if ip == nil {
		return nil // nothing IPAM could hold; the node field is cleared anyway
	}
	attrs, storedHandle, err := a.cfg.Calico.IPAM().GetAssignmentAttributes(ctx, *ip)
	switch {
	case isNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading the allocation of %s: %w", addr, err)
	case len(attrs) == 0 && storedHandle == nil:
		_, err = a.cfg.Calico.IPAM().ReleaseIPs(ctx, ipam.ReleaseOptions{Address: addr})
	case storedHandle != nil && *storedHandle == handle:
		_, err = a.cfg.Calico.IPAM().ReleaseIPs(ctx, ipam.ReleaseOptions{Address: addr, Handle: handle})
	default:
		a.logf("tunnel address %s has been reused by something else (attributes %v)", addr, attrs)
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing %s: %w", addr, err)
	}
	return nil
}

// reclaim re-assigns a pre-handle allocation with handle and attributes
// (allocateip.correctAllocationWithHandle).
func (a *Allocator) reclaim(ctx context.Context, ip cnet.IP, nodeName string, k kind) error {
	if _, err := a.cfg.Calico.IPAM().ReleaseIPs(ctx, ipam.ReleaseOptions{Address: ip.String()}); err != nil {
		return fmt.Errorf("releasing %s: %w", ip, err)
	}
	handle, attrs := k.handleAndAttributes(nodeName)
	return a.cfg.Calico.IPAM().AssignIP(ctx, ipam.AssignIPArgs{IP: ip, HandleID: &handle, Attrs: attrs, Hostname: nodeName})
}

// updateNode applies change to a fresh copy of the node and writes it, retrying on
// conflicts (kwok's heartbeats update the same object). change returns false when
// there is nothing to write.
func (a *Allocator) updateNode(ctx context.Context, nodeName string, change func(*libapi.Node) bool) error {
	return retry.OnError(retry.DefaultBackoff, isConflict, func() error {
		node, err := a.cfg.Calico.Nodes().Get(ctx, nodeName, options.GetOptions{})
		if err != nil {
			return err
		}
		if !change(node) {
			return nil
		}
		_, err = a.cfg.Calico.Nodes().Update(ctx, node, options.SetOptions{})
		return err
	})
}

func isNotExist(err error) bool {
	var e cerrors.ErrorResourceDoesNotExist
	return errors.As(err, &e)
}

func isConflict(err error) bool {
	var e cerrors.ErrorResourceUpdateConflict
	return errors.As(err, &e)
}
