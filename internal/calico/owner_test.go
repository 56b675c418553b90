package calico

import (
	"net/netip"
	"testing"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
)

// A block of a Windows node holds Calico's reserved addresses for ever; like
// Calico (containsOnlyReservedIPs), they do not count as holders.
func TestBlockAllocationsSkipWindowsReserved(t *testing.T) {
	ref := func(v int) *int { return &v }
	str := func(s string) *string { return &s }
	cidr := netip.MustParsePrefix("10.0.0.0/29")
	spec := &libapiv3.IPAMBlockSpec{CIDR: cidr.String(),
		Allocations: []*int{ref(0), ref(0), ref(0), ref(1), nil, nil, nil, ref(0)},
		Attributes: []libapiv3.AllocationAttribute{
			{AttrPrimary: str("Windows-Reserved-IPAM-Handle")},
			{AttrPrimary: str("k8s-pod-network.abc"), AttrSecondary: map[string]string{"namespace": "shop", "pod": "web"}},
		}}
	got := blockAllocations(cidr, spec)
	if len(got) != 1 || got[0].Kind != OwnerPod || got[0].IP != netip.MustParseAddr("10.0.0.3") {
		t.Fatalf("allocations %v, want only the pod at 10.0.0.3", got)
	}
	spec.Allocations[3] = nil
	if got := blockAllocations(cidr, spec); len(got) != 0 {
		t.Errorf("a block of reserved addresses only holds %v, want nothing (empty, as Calico counts it)", got)
	}
}
