package calinode

import (
	"slices"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	libapi "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func pool(name, cidr string, mutate ...func(*v3.IPPoolSpec)) v3.IPPool {
	p := v3.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v3.IPPoolSpec{CIDR: cidr, NodeSelector: "all()"}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

func ipip(s *v3.IPPoolSpec)      { s.IPIPMode = v3.IPIPModeAlways }
func crossIPIP(s *v3.IPPoolSpec) { s.IPIPMode = v3.IPIPModeCrossSubnet }
func vxlan(s *v3.IPPoolSpec)     { s.VXLANMode = v3.VXLANModeAlways }
func disabled(s *v3.IPPoolSpec)  { s.Disabled = true }
func workloadOnly(s *v3.IPPoolSpec) {
	s.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload}
}
func selector(sel string) func(*v3.IPPoolSpec) {
	return func(s *v3.IPPoolSpec) { s.NodeSelector = sel }
}

func kindOf(attrType string) kind {
	for _, k := range kinds {
		if k.attrType == attrType {
			return k
		}
	}
	panic(attrType)
}

// The pool choice is calico-node's determineEnabledPoolCIDRs, case by case.
func TestPoolCIDRs(t *testing.T) {
	node := &libapi.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: map[string]string{"zone": "a"}}}
	wgNode := node.DeepCopy()
	wgNode.Status.WireguardPublicKey = "key"
	for _, tc := range []struct {
		name  string
		node  *libapi.Node
		pools []v3.IPPool
		kind  string
		want  []string
	}{
		{"ipip pool serves ipip", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip)}, ipam.AttributeTypeIPIP, []string{"192.168.0.0/16"}},
		{"cross-subnet counts", node, []v3.IPPool{pool("a", "192.168.0.0/16", crossIPIP)}, ipam.AttributeTypeIPIP, []string{"192.168.0.0/16"}},
		{"no encapsulation: no ipip", node, []v3.IPPool{pool("a", "192.168.0.0/16")}, ipam.AttributeTypeIPIP, nil},
		{"ipip pool does not serve vxlan", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip)}, ipam.AttributeTypeVXLAN, nil},
		{"vxlan pool serves vxlan", node, []v3.IPPool{pool("a", "10.0.0.0/16", vxlan)}, ipam.AttributeTypeVXLAN, []string{"10.0.0.0/16"}},
		{"v6 vxlan", node, []v3.IPPool{pool("a", "10.0.0.0/16", vxlan), pool("b", "fd00::/48", vxlan)}, ipam.AttributeTypeVXLANV6, []string{"fd00::/48"}},
		{"disabled pool skipped", node, []v3.IPPool{pool("old", "192.168.0.0/16", ipip, disabled), pool("new", "10.0.0.0/16", ipip)}, ipam.AttributeTypeIPIP, []string{"10.0.0.0/16"}},
		{"only disabled: none", node, []v3.IPPool{pool("old", "192.168.0.0/16", ipip, disabled)}, ipam.AttributeTypeIPIP, nil},
		{"workload-only pool skipped", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip, workloadOnly)}, ipam.AttributeTypeIPIP, nil},
		{"selector not matching", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip, selector("zone == 'b'"))}, ipam.AttributeTypeIPIP, nil},
		{"selector matching", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip, selector("zone == 'a'"))}, ipam.AttributeTypeIPIP, []string{"192.168.0.0/16"}},
		{"!all() selects nothing", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip, selector("!all()"))}, ipam.AttributeTypeIPIP, nil},
		{"bad selector skipped", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip, selector("zone ==")), pool("b", "10.0.0.0/16", ipip)}, ipam.AttributeTypeIPIP, []string{"10.0.0.0/16"}},
		{"wireguard needs a key", node, []v3.IPPool{pool("a", "192.168.0.0/16")}, ipam.AttributeTypeWireguard, nil},
		{"wireguard needs no encapsulation", wgNode, []v3.IPPool{pool("a", "192.168.0.0/16")}, ipam.AttributeTypeWireguard, []string{"192.168.0.0/16"}},
		{"all fitting pools, in order", node, []v3.IPPool{pool("a", "192.168.0.0/16", ipip), pool("b", "10.0.0.0/16", ipip)}, ipam.AttributeTypeIPIP, []string{"192.168.0.0/16", "10.0.0.0/16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range poolCIDRs(tc.node, tc.pools, kindOf(tc.kind)) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Clearing the last field of the BGP or WireGuard spec removes the spec, which
// libcalico-go requires to be non-empty when present.
func TestKindSetClearsEmptySpecs(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		empty func(*libapi.Node) bool
	}{
		{ipam.AttributeTypeIPIP, func(n *libapi.Node) bool { return n.Spec.BGP == nil }},
		{ipam.AttributeTypeWireguard, func(n *libapi.Node) bool { return n.Spec.Wireguard == nil }},
		{ipam.AttributeTypeWireguardV6, func(n *libapi.Node) bool { return n.Spec.Wireguard == nil }},
		{ipam.AttributeTypeVXLAN, func(n *libapi.Node) bool { return n.Spec.IPv4VXLANTunnelAddr == "" }},
	} {
		k := kindOf(tc.kind)
		n := &libapi.Node{}
		k.set(n, "192.168.0.1")
		if k.get(n) != "192.168.0.1" || tc.empty(n) {
			t.Errorf("%s: set did not record the address: %+v", tc.kind, n.Spec)
		}
		k.set(n, "")
		if !tc.empty(n) {
			t.Errorf("%s: clearing left %+v", tc.kind, n.Spec)
		}
	}
	// The BGP address survives clearing the IPIP address.
	n := &libapi.Node{Spec: libapi.NodeSpec{BGP: &libapi.NodeBGPSpec{IPv4Address: "172.18.0.2/16", IPv4IPIPTunnelAddr: "192.168.0.1"}}}
	kindOf(ipam.AttributeTypeIPIP).set(n, "")
	if n.Spec.BGP == nil || n.Spec.BGP.IPv4Address != "172.18.0.2/16" {
		t.Errorf("BGP spec after clearing IPIP: %+v", n.Spec.BGP)
	}
}

func TestHandles(t *testing.T) {
	for attr, want := range map[string]string{
		ipam.AttributeTypeIPIP:        "ipip-tunnel-addr-w1",
		ipam.AttributeTypeVXLAN:       "vxlan-tunnel-addr-w1",
		ipam.AttributeTypeVXLANV6:     "vxlan-v6-tunnel-addr-w1",
		ipam.AttributeTypeWireguard:   "wireguard-tunnel-addr-w1",
		ipam.AttributeTypeWireguardV6: "wireguard-v6-tunnel-addr-w1",
	} {
		handle, attrs := kindOf(attr).handleAndAttributes("w1")
		if handle != want || attrs[ipam.AttributeType] != attr || attrs[ipam.AttributeNode] != "w1" {
			t.Errorf("%s: %s %v", attr, handle, attrs)
		}
	}
}
