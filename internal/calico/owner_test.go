package calico

import (
	"net/netip"
	"testing"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
)

func ptr[T any](v T) *T { return &v }

func TestResolveOwner(t *testing.T) {
	for _, tc := range []struct {
		name string
		attr *libapiv3.AllocationAttribute
		want Allocation
	}{
		{"pod", &libapiv3.AllocationAttribute{AttrPrimary: ptr("k8s-pod-network.abc"),
			AttrSecondary: map[string]string{"namespace": "shop", "pod": "cart-1", "node": "worker-1", "timestamp": "x"}},
			Allocation{Kind: OwnerPod, Namespace: "shop", Pod: "cart-1", Node: "worker-1", Handle: "k8s-pod-network.abc"}},
		{"ipip tunnel", &libapiv3.AllocationAttribute{AttrPrimary: ptr("ipip-tunnel-addr-worker-1"),
			AttrSecondary: map[string]string{"node": "worker-1", "type": "ipipTunnelAddress"}},
			Allocation{Kind: OwnerTunnel, Node: "worker-1", Tunnel: TunnelIPIP, Handle: "ipip-tunnel-addr-worker-1"}},
		{"vxlan v6 tunnel", &libapiv3.AllocationAttribute{AttrSecondary: map[string]string{"node": "n", "type": "vxlanV6TunnelAddress"}},
			Allocation{Kind: OwnerTunnel, Node: "n", Tunnel: TunnelVXLANV6}},
		{"wireguard", &libapiv3.AllocationAttribute{AttrSecondary: map[string]string{"node": "n", "type": "wireguardTunnelAddress"}},
			Allocation{Kind: OwnerTunnel, Node: "n", Tunnel: TunnelWireguard}},
		// A pod-looking handle without attributes is still unknown: handles are never parsed.
		{"handle only", &libapiv3.AllocationAttribute{AttrPrimary: ptr("k8s-pod-network.abc")},
			Allocation{Kind: OwnerUnknown, Handle: "k8s-pod-network.abc"}},
		{"tunnel-looking handle", &libapiv3.AllocationAttribute{AttrPrimary: ptr("ipip-tunnel-addr-n")},
			Allocation{Kind: OwnerUnknown, Handle: "ipip-tunnel-addr-n"}},
		{"namespace without pod", &libapiv3.AllocationAttribute{AttrSecondary: map[string]string{"namespace": "x"}},
			Allocation{Kind: OwnerUnknown}},
		{"unknown type", &libapiv3.AllocationAttribute{AttrSecondary: map[string]string{"type": "loadBalancer", "node": "n"}},
			Allocation{Kind: OwnerUnknown, Node: "n"}},
		{"no attribute", nil, Allocation{Kind: OwnerUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveOwner(tc.attr); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBlockAllocations(t *testing.T) {
	spec := &libapiv3.IPAMBlockSpec{
		CIDR:        "10.0.0.64/26",
		Allocations: []*int{ptr(0), nil, ptr(1), ptr(7)}, // index 7: corrupt attribute reference
		Attributes: []libapiv3.AllocationAttribute{
			{AttrSecondary: map[string]string{"node": "w1", "type": "ipipTunnelAddress"}},
			{AttrSecondary: map[string]string{"namespace": "ns", "pod": "p"}},
		},
	}
	got := blockAllocations(netip.MustParsePrefix(spec.CIDR), spec)
	want := []Allocation{
		{IP: netip.MustParseAddr("10.0.0.64"), Kind: OwnerTunnel, Tunnel: TunnelIPIP, Node: "w1"},
		{IP: netip.MustParseAddr("10.0.0.66"), Kind: OwnerPod, Namespace: "ns", Pod: "p"},
		{IP: netip.MustParseAddr("10.0.0.67"), Kind: OwnerUnknown},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("allocation %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
