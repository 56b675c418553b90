// Package calinode is the one part of calico-node the sandbox still stands in
// for: what `calico-node -startup` writes before rc.local runs the tunnel-address
// allocation (node/filesystem/etc/rc.local:14-24), i.e. the node's BGP address.
// The real start-up autodetects it from the host's interfaces
// (node/pkg/lifecycle/startup/startup.go:484-530 configureIPsAndSubnets), which a
// kwok node does not have. The tunnel addresses themselves are the real
// allocateip's, run per node by the sandbox (calinodecomponent.go).
package calinode

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	"k8s.io/client-go/util/retry"
)

// nodeNetworkBits is the prefix length of the node network (kind's docker
// network, 172.18.0.0/16), which calico-node's "first-found" autodetection
// reports with the node's address.
const nodeNetworkBits = 16

// EnsureBGPAddress records the node's BGP address (projectcalico.org/IPv4Address),
// its InternalIP with its network's prefix length, unless one is recorded. It
// writes through libcalico-go as calico-node does (an update of the Kubernetes
// Node), so it needs calico-node's permissions only.
func EnsureBGPAddress(ctx context.Context, calico clientv3.Interface, nodeName string) error {
	err := retry.OnError(retry.DefaultBackoff, isConflict, func() error {
		n, err := calico.Nodes().Get(ctx, nodeName, options.GetOptions{})
		if err != nil {
			return err
		}
		if n.Spec.BGP != nil && n.Spec.BGP.IPv4Address != "" {
			return nil
		}
		addr, ok := internalIPv4(n)
		if !ok {
			return nil // nothing to autodetect; calico-node would keep retrying
		}
		if n.Spec.BGP == nil {
			n.Spec.BGP = &libapi.NodeBGPSpec{}
		}
		n.Spec.BGP.IPv4Address = netip.PrefixFrom(addr, nodeNetworkBits).String()
		_, err = calico.Nodes().Update(ctx, n, options.SetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("recording the BGP address of node %s: %w", nodeName, err)
	}
	return nil
}

func internalIPv4(n *libapi.Node) (netip.Addr, bool) {
	for _, a := range n.Spec.Addresses {
		if a.Type != libapi.InternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func isConflict(err error) bool {
	var e cerrors.ErrorResourceUpdateConflict
	return errors.As(err, &e)
}
