package actions

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"

	"github.com/runbookdev/runbook/internal/calico"
)

func TestOrdinalOf(t *testing.T) {
	for _, c := range []struct {
		cidr, ip string
		want     int
		ok       bool
	}{
		{"10.0.0.64/26", "10.0.0.64", 0, true},
		{"10.0.0.64/26", "10.0.0.127", 63, true},
		{"10.0.16.0/20", "10.0.31.255", 4095, true},
		{"10.0.0.64/26", "10.0.0.128", 0, false},
		{"fd00:10::40/122", "fd00:10::7f", 63, true},
		{"fd00:10::/116", "fd00:10::fff", 4095, true},
	} {
		got, ok := ordinalOf(netip.MustParsePrefix(c.cidr), netip.MustParseAddr(c.ip))
		if got != c.want || ok != c.ok {
			t.Errorf("%s in %s: got %d %v, want %d %v", c.ip, c.cidr, got, ok, c.want, c.ok)
		}
	}
}

func ref[T any](v T) *T { return &v }

// TestReleaseOrdinal: the block edit libcalico-go's release makes, and the
// guards against releasing an address that changed hands since it was observed.
func TestReleaseOrdinal(t *testing.T) {
	cidr := netip.MustParsePrefix("10.0.0.0/30")
	attrs := []libapiv3.AllocationAttribute{
		{AttrPrimary: ref("k8s-pod-network.aaa"), AttrSecondary: map[string]string{"namespace": "shop", "pod": "gone"}},
		{AttrPrimary: ref("k8s-pod-network.bbb"), AttrSecondary: map[string]string{"namespace": "shop", "pod": "alive"}},
		{AttrPrimary: ref("ipip-tunnel-addr-w1"), AttrSecondary: map[string]string{"node": "w1", "type": "ipipTunnelAddress"}},
	}
	spec := libapiv3.IPAMBlockSpec{CIDR: cidr.String(), Allocations: []*int{ref(2), ref(0), ref(1), nil}, Unallocated: []int{3}, Attributes: attrs,
		SequenceNumber: 7, SequenceNumberForAllocation: map[string]uint64{"0": 1, "1": 3, "2": 5}}
	leak := calico.Allocation{IP: netip.MustParseAddr("10.0.0.1"), Kind: calico.OwnerPod, Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.aaa"}
	got, handle, err := releaseOrdinal(spec, cidr, leak)
	if err != nil || handle != "k8s-pod-network.aaa" {
		t.Fatalf("%v %q", err, handle)
	}
	want := map[string]any{
		"allocations":                 []any{1, nil, 0, nil}, // attribute 0 removed, the others renumbered
		"unallocated":                 []int{3, 1},
		"attributes":                  attrs[1:],
		"sequenceNumber":              uint64(8),
		"sequenceNumberForAllocation": map[string]any{"1": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("patch\n got %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(spec.Allocations, []*int{ref(2), ref(0), ref(1), nil}) {
		t.Fatal("the observed spec was modified")
	}
	for name, l := range map[string]calico.Allocation{
		"other handle": {IP: leak.IP, Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.zzz"},
		"other pod":    {IP: leak.IP, Namespace: "shop", Pod: "alive", Handle: "k8s-pod-network.aaa"},
		"free":         {IP: netip.MustParseAddr("10.0.0.3"), Namespace: "shop", Pod: "gone", Handle: "k8s-pod-network.aaa"},
	} {
		if _, _, err := releaseOrdinal(spec, cidr, l); !errors.Is(err, errNotLeaked) {
			t.Errorf("%s: want errNotLeaked, got %v", name, err)
		}
	}
}
