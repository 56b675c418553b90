package calico

import (
	"net/netip"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
)

func TestPodsIn(t *testing.T) {
	addr := netip.MustParseAddr
	pods := []Pod{
		{Namespace: "b", Name: "web", IPs: []netip.Addr{addr("192.168.1.5")}, Phase: corev1.PodRunning},
		{Namespace: "a", Name: "dual", IPs: []netip.Addr{addr("10.0.0.4"), addr("fd00::4")}, Phase: corev1.PodRunning},
		{Namespace: "a", Name: "host", IPs: []netip.Addr{addr("192.168.1.6")}, HostNetwork: true},
		{Namespace: "a", Name: "done", IPs: []netip.Addr{addr("192.168.1.7")}, Phase: corev1.PodSucceeded},
		{Namespace: "a", Name: "pending", Phase: corev1.PodPending},
		{Namespace: "a", Name: "old", IPs: []netip.Addr{addr("192.168.2.1")}, Phase: corev1.PodRunning},
	}
	got := PodsIn(pods, netip.MustParsePrefix("192.168.0.0/16"))
	if len(got) != 2 || got[0].Pod.Name != "old" || got[1].Pod.Name != "web" || got[1].IP != addr("192.168.1.5") {
		t.Errorf("v4 pool: %+v", got)
	}
	if got := PodsIn(pods, netip.MustParsePrefix("fd00::/64")); len(got) != 1 || got[0].Pod.Name != "dual" || got[0].IP != addr("fd00::4") {
		t.Errorf("v6 pool: %+v", got)
	}
}

func TestAllocationsAndTunnelsIn(t *testing.T) {
	pp, addr := netip.MustParsePrefix, netip.MustParseAddr
	blocks := []Block{
		{CIDR: pp("192.168.1.0/26"), Allocations: []Allocation{{IP: addr("192.168.1.3"), Kind: OwnerPod}, {IP: addr("192.168.1.1"), Kind: OwnerTunnel}}},
		{CIDR: pp("10.0.0.0/26"), Allocations: []Allocation{{IP: addr("10.0.0.1"), Kind: OwnerPod}}},
		// A /24 block straddling a /26 pool: only the pool's addresses count.
		{CIDR: pp("172.16.0.0/24"), Allocations: []Allocation{{IP: addr("172.16.0.1")}, {IP: addr("172.16.0.200")}}},
	}
	got := AllocationsIn(blocks, pp("192.168.0.0/16"))
	if len(got) != 2 || got[0].IP != addr("192.168.1.1") || got[1].IP != addr("192.168.1.3") {
		t.Errorf("sorted allocations: %+v", got)
	}
	if got := AllocationsIn(blocks, pp("172.16.0.0/26")); len(got) != 1 || got[0].IP != addr("172.16.0.1") {
		t.Errorf("straddling block: %+v", got)
	}
	nodes := []Node{
		{Name: "w2", Tunnels: map[TunnelKind]netip.Addr{TunnelVXLAN: addr("192.168.3.1")}},
		{Name: "w1", Tunnels: map[TunnelKind]netip.Addr{TunnelIPIP: addr("192.168.1.1"), TunnelWireguard: addr("10.0.0.9")}},
	}
	tun := TunnelAddressesIn(nodes, pp("192.168.0.0/16"))
	if len(tun) != 2 || tun[0].Node != "w1" || tun[0].Kind != TunnelIPIP || tun[1].Node != "w2" {
		t.Errorf("tunnels: %+v", tun)
	}
}

func TestOtherEnabledPools(t *testing.T) {
	pools := []Pool{
		testPool("old", "192.168.0.0/16", nil),
		testPool("off", "10.1.0.0/16", disabled),
		testPool("v6", "fd00::/48", nil),
		testPool("tunnelonly", "10.2.0.0/16", func(s *v3.IPPoolSpec) { s.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseTunnel} }),
		testPool("new", "10.0.0.0/16", nil),
	}
	if got := names(OtherEnabledPools(pools, "old", 4)); len(got) != 1 || got[0] != "new" {
		t.Errorf("got %v", got)
	}
}
