package sandbox

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

// cniNetworkConfig is calico.yaml's (v3.28) value, with the unquoted MTU
// placeholder that makes it invalid JSON as shipped.
const cniNetworkConfig = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {"type": "k8s"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}
  ]
}`

func calicoConfig() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"namespace": cni.ConfigMapNamespace, "name": cni.ConfigMapName},
		"data":     map[string]any{cni.ConfigMapKey: cniNetworkConfig},
	}}
}

func TestCustomizeCNIConfig(t *testing.T) {
	yes := "true"
	for _, tc := range []struct {
		name string
		conf scenarios.CNI
		want cni.IPAMConf
	}{
		{"unchanged", scenarios.CNI{}, cni.IPAMConf{Type: "calico-ipam"}},
		{"pinned pools", scenarios.CNI{IPv4Pools: []string{"default-ipv4-ippool"}},
			cni.IPAMConf{Type: "calico-ipam", IPv4Pools: []string{"default-ipv4-ippool"}}},
		{"dual stack", scenarios.CNI{AssignIPv6: true, IPv6Pools: []string{"fd00:10::/64"}},
			cni.IPAMConf{Type: "calico-ipam", IPv6Pools: []string{"fd00:10::/64"}, AssignIPv4: &yes, AssignIPv6: &yes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := calicoConfig()
			if err := customizeCNIConfig([]*unstructured.Unstructured{cm}, tc.conf); err != nil {
				t.Fatal(err)
			}
			raw, _, _ := unstructured.NestedString(cm.Object, "data", cni.ConfigMapKey)
			got, err := cni.ParseNetConf(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.IPAM, tc.want) {
				t.Errorf("ipam = %+v, want %+v", got.IPAM, tc.want)
			}
		})
	}
	if err := customizeCNIConfig(nil, scenarios.CNI{AssignIPv6: true}); err == nil {
		t.Error("no calico-config: no error")
	}
}
