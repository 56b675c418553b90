package sandbox

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

// ipamTypeEntry is how calico.yaml's cni_network_config declares calico-ipam.
const ipamTypeEntry = `"type": "calico-ipam"`

// customizeCNIConfig edits calico-config's cni_network_config the way an admin
// edits the manifest before applying it: the scenario's ipv4_pools, ipv6_pools and
// assign_ipv6 are added to the calico plugin's "ipam" section. The edit is textual
// because the value is not JSON as shipped (install-cni fills in an unquoted
// __CNI_MTU__); the result is checked with the stand-in's own parser.
func customizeCNIConfig(objs []*unstructured.Unstructured, conf scenarios.CNI) error {
	extra, err := ipamSettings(conf)
	if err != nil || extra == "" {
		return err
	}
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" || o.GetNamespace() != cni.ConfigMapNamespace || o.GetName() != cni.ConfigMapName {
			continue
		}
		raw, _, _ := unstructured.NestedString(o.Object, "data", cni.ConfigMapKey)
		if n := strings.Count(raw, ipamTypeEntry); n != 1 {
			return fmt.Errorf("calico-config %s: %d occurrences of %s, want 1", cni.ConfigMapKey, n, ipamTypeEntry)
		}
		edited := strings.Replace(raw, ipamTypeEntry, ipamTypeEntry+extra, 1)
		if _, err := cni.ParseNetConf(edited); err != nil {
			return fmt.Errorf("calico-config after adding the scenario's CNI settings: %w", err)
		}
		return unstructured.SetNestedField(o.Object, edited, "data", cni.ConfigMapKey)
	}
	return fmt.Errorf("calico.yaml has no ConfigMap %s/%s", cni.ConfigMapNamespace, cni.ConfigMapName)
}

// ipamSettings renders the scenario's settings as JSON members to append after
// the ipam type, e.g. `, "ipv4_pools": ["a"], "assign_ipv6": "true"`.
func ipamSettings(conf scenarios.CNI) (string, error) {
	var b strings.Builder
	add := func(key string, value any) error {
		v, err := json.Marshal(value)
		if err != nil {
			return fmt.Errorf("CNI setting %s: %w", key, err)
		}
		fmt.Fprintf(&b, ", %q: %s", key, v)
		return nil
	}
	if len(conf.IPv4Pools) > 0 {
		if err := add("ipv4_pools", conf.IPv4Pools); err != nil {
			return "", err
		}
	}
	if len(conf.IPv6Pools) > 0 {
		if err := add("ipv6_pools", conf.IPv6Pools); err != nil {
			return "", err
		}
	}
	if conf.AssignIPv6 {
		// Calico's dual-stack manifests set both.
		if err := add("assign_ipv4", "true"); err != nil {
			return "", err
		}
		if err := add("assign_ipv6", "true"); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}
