package calinode

import (
	"reflect"

	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
)

// kind is one kind of node tunnel address, with where calico-node keeps it on the
// Calico Node (which the Kubernetes datastore stores as a Node annotation, e.g.
// projectcalico.org/IPv4IPIPTunnelAddr).
type kind struct {
	attrType string // allocation attribute "type", e.g. ipipTunnelAddress
	handle   string // handle prefix: <handle>-tunnel-addr-<node>
	family   int
	get      func(*libapi.Node) string
	set      func(*libapi.Node, string) // "" removes the address
}

// kinds in the order calico-node's reconcileTunnelAddrs handles them.
var kinds = []kind{
	{
		attrType: ipam.AttributeTypeWireguard, handle: "wireguard", family: 4,
		get: func(n *libapi.Node) string {
			if n.Spec.Wireguard == nil {
				return ""
			}
			return n.Spec.Wireguard.InterfaceIPv4Address
		},
		set: func(n *libapi.Node, a string) {
			if n.Spec.Wireguard == nil {
				n.Spec.Wireguard = &libapi.NodeWireguardSpec{}
			}
			n.Spec.Wireguard.InterfaceIPv4Address = a
			if reflect.DeepEqual(*n.Spec.Wireguard, libapi.NodeWireguardSpec{}) {
				n.Spec.Wireguard = nil
			}
		},
	},
	{
		attrType: ipam.AttributeTypeWireguardV6, handle: "wireguard-v6", family: 6,
		get: func(n *libapi.Node) string {
			if n.Spec.Wireguard == nil {
				return ""
			}
			return n.Spec.Wireguard.InterfaceIPv6Address
		},
		set: func(n *libapi.Node, a string) {
			if n.Spec.Wireguard == nil {
				n.Spec.Wireguard = &libapi.NodeWireguardSpec{}
			}
			n.Spec.Wireguard.InterfaceIPv6Address = a
			if reflect.DeepEqual(*n.Spec.Wireguard, libapi.NodeWireguardSpec{}) {
				n.Spec.Wireguard = nil
			}
		},
	},
	{
		attrType: ipam.AttributeTypeIPIP, handle: "ipip", family: 4,
		get: func(n *libapi.Node) string {
			if n.Spec.BGP == nil {
				return ""
			}
			return n.Spec.BGP.IPv4IPIPTunnelAddr
		},
		set: func(n *libapi.Node, a string) {
			if n.Spec.BGP == nil {
				n.Spec.BGP = &libapi.NodeBGPSpec{}
			}
			n.Spec.BGP.IPv4IPIPTunnelAddr = a
			// libcalico-go rejects an empty BGP spec.
			if reflect.DeepEqual(*n.Spec.BGP, libapi.NodeBGPSpec{}) {
				n.Spec.BGP = nil
			}
		},
	},
	{
		attrType: ipam.AttributeTypeVXLAN, handle: "vxlan", family: 4,
		get: func(n *libapi.Node) string { return n.Spec.IPv4VXLANTunnelAddr },
		set: func(n *libapi.Node, a string) { n.Spec.IPv4VXLANTunnelAddr = a },
	},
	{
		attrType: ipam.AttributeTypeVXLANV6, handle: "vxlan-v6", family: 6,
		get: func(n *libapi.Node) string { return n.Spec.IPv6VXLANTunnelAddr },
		set: func(n *libapi.Node, a string) { n.Spec.IPv6VXLANTunnelAddr = a },
	},
}

// handleAndAttributes are the IPAM handle and attributes calico-node records with a
// node's tunnel address (allocateip.generateHandleAndAttributes).
func (k kind) handleAndAttributes(node string) (string, map[string]string) {
	return k.handle + "-tunnel-addr-" + node, map[string]string{
		ipam.AttributeNode: node,
		ipam.AttributeType: k.attrType,
	}
}
