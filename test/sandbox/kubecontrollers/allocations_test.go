package kubecontrollers

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const block = `
apiVersion: crd.projectcalico.org/v1
kind: IPAMBlock
metadata: {name: 192-168-1-0-30}
spec:
  cidr: 192.168.1.0/30
  affinity: host:worker-1
  allocations: [0, null, 1, 2]
  unallocated: [1]
  attributes:
  - handle_id: ipip-tunnel-addr-worker-1
    secondary: {node: worker-1, type: ipipTunnelAddress}
  - handle_id: k8s-pod-network.abc
    secondary: {node: worker-1, namespace: shop, pod: web-1, timestamp: "x"}
  - handle_id: legacy
`

func TestBlockAllocations(t *testing.T) {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(block), &u.Object); err != nil {
		t.Fatal(err)
	}
	got, err := blockAllocations(u)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ip, handle, node string
		tunnel, pod      bool
	}{
		{"192.168.1.0", "ipip-tunnel-addr-worker-1", "worker-1", true, false},
		{"192.168.1.2", "k8s-pod-network.abc", "worker-1", false, true},
		{"192.168.1.3", "legacy", "worker-1", false, false}, // no attributes: the block's host
	}
	if len(got) != len(want) {
		t.Fatalf("%d allocations, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		a := got[i]
		if a.ip.String() != w.ip || a.handle != w.handle || a.node != w.node || a.isTunnel() != w.tunnel || a.isPod() != w.pod {
			t.Errorf("allocation %d = %+v, want %+v", i, a, w)
		}
	}
}
