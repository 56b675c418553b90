package calico

import (
	"net/netip"
	"reflect"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
)

func testPool(name, cidr string, mod func(*v3.IPPoolSpec)) Pool {
	spec := v3.IPPoolSpec{CIDR: cidr}
	if mod != nil {
		mod(&spec)
	}
	return Pool{Name: name, Spec: WithDefaults(spec), CIDR: netip.MustParsePrefix(cidr)}
}

func ipip(s *v3.IPPoolSpec)     { s.IPIPMode = v3.IPIPModeAlways }
func vxlan(s *v3.IPPoolSpec)    { s.VXLANMode = v3.VXLANModeCrossSubnet }
func disabled(s *v3.IPPoolSpec) { s.Disabled = true }

func names(ps []*Pool) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// TestTunnelPools mirrors calico-node's allocateip determineEnabledPoolCIDRs.
func TestTunnelPools(t *testing.T) {
	worker := &Node{Name: "w1", Labels: map[string]string{"zone": "a", "role": "worker"}}
	wg := &Node{Name: "w2", Labels: map[string]string{"zone": "b"}, WireguardV4: true}
	for _, tc := range []struct {
		name  string
		node  *Node
		pools []Pool
		kind  TunnelKind
		want  []string
	}{
		{"ipip pool serves ipip", worker, []Pool{testPool("a", "10.0.0.0/16", ipip)}, TunnelIPIP, []string{"a"}},
		{"ipip pool does not serve vxlan", worker, []Pool{testPool("a", "10.0.0.0/16", ipip)}, TunnelVXLAN, nil},
		{"vxlan CrossSubnet serves vxlan", worker, []Pool{testPool("a", "10.0.0.0/16", vxlan)}, TunnelVXLAN, []string{"a"}},
		{"no encapsulation serves nothing", worker, []Pool{testPool("a", "10.0.0.0/16", nil)}, TunnelIPIP, nil},
		{"disabled pool serves nothing", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); disabled(s) })}, TunnelIPIP, nil},
		{"workload-only pool serves nothing", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) {
			ipip(s)
			s.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload}
		})}, TunnelIPIP, nil},
		{"tunnel-only pool serves", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) {
			ipip(s)
			s.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseTunnel}
		})}, TunnelIPIP, []string{"a"}},
		{"nodeSelector not matching", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); s.NodeSelector = "zone == 'b'" })}, TunnelIPIP, nil},
		{"nodeSelector matching", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); s.NodeSelector = "zone == 'a'" })}, TunnelIPIP, []string{"a"}},
		{"invalid nodeSelector skipped", worker, []Pool{testPool("a", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); s.NodeSelector = "zone ==" })}, TunnelIPIP, nil},
		{"ipip never on IPv6", worker, []Pool{testPool("a", "fd00::/64", ipip)}, TunnelIPIP, nil},
		{"vxlan v6", worker, []Pool{testPool("a", "fd00::/64", vxlan), testPool("b", "10.0.0.0/16", vxlan)}, TunnelVXLANV6, []string{"a"}},
		{"wireguard needs a key", worker, []Pool{testPool("a", "10.0.0.0/16", nil)}, TunnelWireguard, nil},
		{"wireguard any enabled v4 pool", wg, []Pool{testPool("a", "10.0.0.0/16", nil), testPool("b", "fd00::/64", nil)}, TunnelWireguard, []string{"a"}},
		{"several pools", worker, []Pool{testPool("a", "10.0.0.0/16", ipip), testPool("b", "10.1.0.0/16", ipip), testPool("c", "10.2.0.0/16", vxlan)}, TunnelIPIP, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(TunnelPools(tc.node, tc.pools, tc.kind)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTunnelImpact(t *testing.T) {
	addr := netip.MustParseAddr
	nodes := []Node{
		{Name: "cp", Labels: map[string]string{"role": "cp"}},
		{Name: "w1", Labels: map[string]string{"role": "worker"}, Tunnels: map[TunnelKind]netip.Addr{TunnelIPIP: addr("192.168.1.1")}},
	}
	old := testPool("old", "192.168.0.0/16", ipip)
	for _, tc := range []struct {
		name  string
		pools []Pool
		want  []string // String() of each change
		lost  bool
	}{
		{"no other pool: both nodes lose", []Pool{old}, []string{
			"node cp loses its ipip tunnel address: no other enabled pool with matching encapsulation and Tunnel use selects it",
			"node w1 loses its ipip tunnel address 192.168.1.1: no other enabled pool with matching encapsulation and Tunnel use selects it",
		}, true},
		{"new pool without encapsulation: lose", []Pool{old, testPool("new", "10.0.0.0/16", nil)}, nil, true},
		{"new ipip pool: addresses move", []Pool{old, testPool("new", "10.0.0.0/16", ipip)}, []string{
			"node cp: its ipip tunnel address moves to pool [new]",
			"node w1: its ipip tunnel address 192.168.1.1 moves to pool [new]",
		}, false},
		{"new ipip pool selecting workers only: cp loses", []Pool{old, testPool("new", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); s.NodeSelector = "role == 'worker'" })}, []string{
			"node cp loses its ipip tunnel address: no other enabled pool with matching encapsulation and Tunnel use selects it",
			"node w1: its ipip tunnel address 192.168.1.1 moves to pool [new]",
		}, true},
		{"disabled new pool does not help", []Pool{old, testPool("new", "10.0.0.0/16", func(s *v3.IPPoolSpec) { ipip(s); disabled(s) })}, nil, true},
		{"pool without encapsulation being disabled: nothing moves", []Pool{testPool("old", "192.168.0.0/16", nil)}, []string{
			// w1's address lies in the pool but no pool serves IPIP: stale, removed anyway.
			"node w1: its ipip tunnel address 192.168.1.1 is stale (the pool does not serve the node); calico-node removes it",
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes := TunnelImpact(nodes, tc.pools, "old")
			lost := false
			var got []string
			for _, c := range changes {
				lost = lost || c.Lost()
				got = append(got, c.String())
			}
			if lost != tc.lost {
				t.Errorf("lost = %v, want %v: %v", lost, tc.lost, got)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := TunnelImpact(nodes, []Pool{old}, "absent"); got != nil {
		t.Errorf("absent pool: %v", got)
	}
}
