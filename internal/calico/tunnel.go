package calico

import (
	"fmt"
	"net/netip"
	"sort"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
)

// TunnelKind is a kind of node tunnel address calico-node allocates from IP pools.
type TunnelKind string

const (
	TunnelIPIP        TunnelKind = "ipip"
	TunnelVXLAN       TunnelKind = "vxlan"
	TunnelVXLANV6     TunnelKind = "vxlanV6"
	TunnelWireguard   TunnelKind = "wireguard"
	TunnelWireguardV6 TunnelKind = "wireguardV6"
)

// TunnelKinds lists every kind, in calico-node's reconciliation order.
var TunnelKinds = []TunnelKind{TunnelWireguard, TunnelWireguardV6, TunnelIPIP, TunnelVXLAN, TunnelVXLANV6}

// Node annotations holding tunnel addresses (libcalico-go k8s node conversion).
var tunnelAnnotation = map[TunnelKind]string{
	TunnelIPIP:        "projectcalico.org/IPv4IPIPTunnelAddr",
	TunnelVXLAN:       "projectcalico.org/IPv4VXLANTunnelAddr",
	TunnelVXLANV6:     "projectcalico.org/IPv6VXLANTunnelAddr",
	TunnelWireguard:   "projectcalico.org/IPv4WireguardInterfaceAddr",
	TunnelWireguardV6: "projectcalico.org/IPv6WireguardInterfaceAddr",
}

// TunnelAnnotation is the node annotation holding a tunnel address of kind k
// (libcalico-go lib/backend/k8s/resources/node.go, unexported there); "" for an
// unknown kind.
func TunnelAnnotation(k TunnelKind) string { return tunnelAnnotation[k] }

// Node annotations whose presence means WireGuard runs on the node.
const (
	annotationWireguardKey   = "projectcalico.org/WireguardPublicKey"
	annotationWireguardKeyV6 = "projectcalico.org/WireguardPublicKeyV6"
)

// Allocation attribute "type" values of tunnel addresses (model.IPAMBlockAttributeType*).
var tunnelKindByAttr = map[string]TunnelKind{
	"ipipTunnelAddress":        TunnelIPIP,
	"vxlanTunnelAddress":       TunnelVXLAN,
	"vxlanV6TunnelAddress":     TunnelVXLANV6,
	"wireguardTunnelAddress":   TunnelWireguard,
	"wireguardV6TunnelAddress": TunnelWireguardV6,
}

// TunnelPools returns the pools calico-node would take node's tunnel address of kind
// k from, mirroring node/pkg/allocateip determineEnabledPoolCIDRs: enabled pools of
// the right family that allow Tunnel use, select the node, and (IPIP/VXLAN) have the
// encapsulation on. WireGuard needs no encapsulation but only gets an address when
// the node publishes a WireGuard key. calico-node also skips WireGuard in host
// encryption mode, a Felix environment setting invisible from the API; assuming it
// off can only over-report a need, never hide a loss.
//
// A pool whose nodeSelector does not parse is skipped, as calico-node does.
func TunnelPools(node *Node, pools []Pool, k TunnelKind) []*Pool {
	switch k {
	case TunnelWireguard:
		if !node.WireguardV4 {
			return nil
		}
	case TunnelWireguardV6:
		if !node.WireguardV6 {
			return nil
		}
	}
	var out []*Pool
	for i := range pools {
		p := &pools[i]
		if !p.CIDR.IsValid() || !p.Enabled() || !p.Allows(v3.IPPoolAllowedUseTunnel) {
			continue
		}
		if ok, err := SelectsNode(p.Spec.NodeSelector, node.Labels); err != nil || !ok {
			continue
		}
		ipip := p.Spec.IPIPMode == v3.IPIPModeAlways || p.Spec.IPIPMode == v3.IPIPModeCrossSubnet
		vxlan := p.Spec.VXLANMode == v3.VXLANModeAlways || p.Spec.VXLANMode == v3.VXLANModeCrossSubnet
		fam := p.Family()
		var match bool
		switch k {
		case TunnelIPIP:
			match = ipip && fam == 4
		case TunnelVXLAN:
			match = vxlan && fam == 4
		case TunnelVXLANV6:
			match = vxlan && fam == 6
		case TunnelWireguard:
			match = fam == 4
		case TunnelWireguardV6:
			match = fam == 6
		}
		if match {
			out = append(out, p)
		}
	}
	return out
}

// TunnelChange is what disabling a pool does to one node's tunnel address.
type TunnelChange struct {
	Node    string
	Kind    TunnelKind
	Current netip.Addr // the node's address now (zero if calico-node has not published one)
	// To lists the pools the address is taken from afterwards; empty means the node
	// has no tunnel address of this kind afterwards.
	To []string
	// Served is whether the pool serves this node's tunnel kind now. When it does
	// not, an address published in it is stale (calico-node replaces or removes it
	// whatever this step does).
	Served bool
}

// Lost reports whether disabling the pool leaves the node without a tunnel address
// of this kind (and with it node-to-pod traffic over the tunnel, node#1057).
func (c TunnelChange) Lost() bool { return c.Served && len(c.To) == 0 }

func (c TunnelChange) String() string {
	cur := "its " + string(c.Kind) + " tunnel address"
	if c.Current.IsValid() {
		cur += " " + c.Current.String()
	}
	switch {
	case c.Lost():
		return fmt.Sprintf("node %s loses %s: no other enabled pool with matching encapsulation and Tunnel use selects it", c.Node, cur)
	case len(c.To) == 0:
		return fmt.Sprintf("node %s: %s is stale (the pool does not serve the node); calico-node removes it", c.Node, cur)
	}
	return fmt.Sprintf("node %s: %s moves to pool %v", c.Node, cur, c.To)
}

// TunnelImpact predicts, as calico-node's allocateip would reconcile it, what
// disabling the pool called name does to node tunnel addresses. A node is affected
// when the pool now serves one of its tunnel kinds (so calico-node has, or will
// have, an address from it) or when its published address lies in the pool.
// Changes are sorted by node and kind.
func TunnelImpact(nodes []Node, pools []Pool, name string) []TunnelChange {
	var target *Pool
	after := make([]Pool, len(pools))
	copy(after, pools)
	for i := range after {
		if after[i].Name == name {
			target = &pools[i]
			after[i].Spec.Disabled = true
		}
	}
	if target == nil {
		return nil
	}
	var out []TunnelChange
	for i := range nodes {
		n := &nodes[i]
		for _, k := range TunnelKinds {
			served := false
			for _, p := range TunnelPools(n, pools, k) {
				served = served || p.Name == name
			}
			var to []string
			for _, p := range TunnelPools(n, after, k) {
				to = append(to, p.Name)
			}
			cur := n.Tunnels[k]
			inTarget := cur.IsValid() && target.CIDR.Contains(cur)
			// Affected: the published address is in the pool (calico-node releases it
			// and assigns another, or none); or the pool serves the node and either no
			// address is published yet (it may well come from this pool) or no pool is
			// left to serve it (calico-node then removes whatever address it has).
			if !inTarget && !(served && (!cur.IsValid() || len(to) == 0)) {
				continue
			}
			out = append(out, TunnelChange{Node: n.Name, Kind: k, Current: cur, To: to, Served: served})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}
