package cni

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Where a manifest install keeps the CNI configuration install-cni writes to every
// node's /etc/cni/net.d.
const (
	ConfigMapNamespace = "kube-system"
	ConfigMapName      = "calico-config"
	ConfigMapKey       = "cni_network_config"
)

// IPAMConf is the part of the calico plugin's "ipam" section the stand-in honours.
type IPAMConf struct {
	Type       string   `json:"type"`
	IPv4Pools  []string `json:"ipv4_pools,omitempty"`
	IPv6Pools  []string `json:"ipv6_pools,omitempty"`
	AssignIPv4 *string  `json:"assign_ipv4,omitempty"`
	AssignIPv6 *string  `json:"assign_ipv6,omitempty"`
}

// NetConf is the calico plugin's entry of the CNI network configuration.
type NetConf struct {
	// Name is the network name; the IPAM handle is "<Name>.<containerID>".
	Name string
	IPAM IPAMConf
}

// DefaultNetConf is what Calico's manifest ships: calico-ipam on all pools.
var DefaultNetConf = NetConf{Name: "k8s-pod-network", IPAM: IPAMConf{Type: "calico-ipam"}}

// ParseNetConf reads a cni_network_config value (a conflist with install-cni's
// __PLACEHOLDERS__, or a single network config) and returns the calico plugin's
// settings.
func ParseNetConf(raw string) (NetConf, error) {
	// install-cni substitutes these before writing the file; only the MTU is unquoted
	// and so breaks JSON as shipped. The others are inside strings and harmless.
	raw = strings.ReplaceAll(raw, "__CNI_MTU__", "1440")
	var list struct {
		Name    string            `json:"name"`
		Type    string            `json:"type"`
		IPAM    *IPAMConf         `json:"ipam"`
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return NetConf{}, fmt.Errorf("parsing CNI network config: %w", err)
	}
	if list.Type == "calico" && list.IPAM != nil { // a single network config
		return NetConf{Name: list.Name, IPAM: *list.IPAM}, nil
	}
	for _, p := range list.Plugins {
		var plugin struct {
			Type string   `json:"type"`
			IPAM IPAMConf `json:"ipam"`
		}
		if err := json.Unmarshal(p, &plugin); err != nil {
			return NetConf{}, fmt.Errorf("parsing CNI plugin config: %w", err)
		}
		if plugin.Type == "calico" {
			return NetConf{Name: list.Name, IPAM: plugin.IPAM}, nil
		}
	}
	return NetConf{}, fmt.Errorf("CNI network config %q has no calico plugin", list.Name)
}

// Counts returns how many IPv4 and IPv6 addresses the plugin requests: one IPv4
// unless assign_ipv4 is "false", IPv6 only when assign_ipv6 is "true".
func (c IPAMConf) Counts() (num4, num6 int) {
	num4 = 1
	if c.AssignIPv4 != nil && *c.AssignIPv4 == "false" {
		num4 = 0
	}
	if c.AssignIPv6 != nil && *c.AssignIPv6 == "true" {
		num6 = 1
	}
	return num4, num6
}
