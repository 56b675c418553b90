package calinode

import (
	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
)

// poolCIDRs returns the CIDRs of the pools a node's tunnel address of kind k may
// come from, exactly as calico-node's allocateip.determineEnabledPoolCIDRs decides:
// pools that allow Tunnel use (an empty allowedUses allows it), select the node,
// are enabled, have the right family and — for IPIP and VXLAN — the encapsulation
// on. WireGuard needs no encapsulation, but only gets an address on a node that
// publishes a WireGuard key. (calico-node also skips WireGuard in host encryption
// mode, a Felix environment setting the sandbox never sets.)
//
// A pool whose CIDR or nodeSelector does not parse is skipped: calico-node exits on
// the former and logs the latter; either way the pool serves no tunnel.
func poolCIDRs(node *libapi.Node, pools []v3.IPPool, k kind) []cnet.IPNet {
	switch k.attrType {
	case ipam.AttributeTypeWireguard:
		if node.Status.WireguardPublicKey == "" {
			return nil
		}
	case ipam.AttributeTypeWireguardV6:
		if node.Status.WireguardPublicKeyV6 == "" {
			return nil
		}
	}
	var cidrs []cnet.IPNet
	for _, p := range pools {
		_, cidr, err := cnet.ParseCIDR(p.Spec.CIDR)
		if err != nil || p.Spec.Disabled || cidr.Version() != k.family || !allowsTunnel(p) {
			continue
		}
		if selects, err := ipam.SelectsNode(p, *node); err != nil || !selects {
			continue
		}
		ipip := p.Spec.IPIPMode == v3.IPIPModeAlways || p.Spec.IPIPMode == v3.IPIPModeCrossSubnet
		vxlan := p.Spec.VXLANMode == v3.VXLANModeAlways || p.Spec.VXLANMode == v3.VXLANModeCrossSubnet
		switch k.attrType {
		case ipam.AttributeTypeIPIP:
			if !ipip {
				continue
			}
		case ipam.AttributeTypeVXLAN, ipam.AttributeTypeVXLANV6:
			if !vxlan {
				continue
			}
		}
		cidrs = append(cidrs, *cidr)
	}
	return cidrs
}

func allowsTunnel(p v3.IPPool) bool {
	if len(p.Spec.AllowedUses) == 0 {
		return true
	}
	for _, u := range p.Spec.AllowedUses {
		if u == v3.IPPoolAllowedUseTunnel {
			return true
		}
	}
	return false
}

// inCIDRs reports whether addr lies in one of cidrs.
func inCIDRs(addr cnet.IP, cidrs []cnet.IPNet) bool {
	for _, c := range cidrs {
		if c.Contains(addr.IP) {
			return true
		}
	}
	return false
}
