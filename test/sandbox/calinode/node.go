package calinode

import (
	"context"
	"fmt"
	"net/netip"

	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
)

// nodeNetworkBits is the prefix length of the node network (kind's docker
// network, 172.18.0.0/16), which calico-node's "first-found" autodetection
// reports with the node's address.
const nodeNetworkBits = 16

// ensureNodeAddress does what calico-node's start-up does before any tunnel
// address: it records the node's BGP address (projectcalico.org/IPv4Address), the
// node's InternalIP with its network's prefix length, unless one is recorded.
func (a *Allocator) ensureNodeAddress(ctx context.Context, nodeName string) error {
	err := a.updateNode(ctx, nodeName, func(n *libapi.Node) bool {
		if n.Spec.BGP != nil && n.Spec.BGP.IPv4Address != "" {
			return false
		}
		addr, ok := internalIPv4(n)
		if !ok {
			return false // nothing to autodetect; calico-node would keep retrying
		}
		if n.Spec.BGP == nil {
			n.Spec.BGP = &libapi.NodeBGPSpec{}
		}
		n.Spec.BGP.IPv4Address = netip.PrefixFrom(addr, nodeNetworkBits).String()
		return true
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
