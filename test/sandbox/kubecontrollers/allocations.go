package kubecontrollers

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Allocation attributes libcalico-go records (ipam.Attribute*).
const (
	attrNode      = "node"
	attrNamespace = "namespace"
	attrPod       = "pod"
	attrType      = "type"
)

// tunnelTypes are the "type" attributes of node tunnel addresses.
var tunnelTypes = map[string]bool{
	"ipipTunnelAddress": true, "vxlanTunnelAddress": true, "vxlanV6TunnelAddress": true,
	"wireguardTunnelAddress": true, "wireguardV6TunnelAddress": true,
}

// allocation is one assigned address of an IPAM block.
type allocation struct {
	ip     netip.Addr
	handle string
	attrs  map[string]string
	block  string
	// node is the allocation's node attribute, else the block's affinity host.
	node string
}

func (a allocation) id() string     { return a.ip.String() + "/" + a.handle }
func (a allocation) isTunnel() bool { return tunnelTypes[a.attrs[attrType]] }
func (a allocation) isPod() bool    { return a.attrs[attrNamespace] != "" && a.attrs[attrPod] != "" }
func (a allocation) describe() string {
	if a.isPod() {
		return fmt.Sprintf("%s (pod %s/%s on %s)", a.ip, a.attrs[attrNamespace], a.attrs[attrPod], a.node)
	}
	return fmt.Sprintf("%s (%s on %s)", a.ip, a.attrs[attrType], a.node)
}

// blockSpec is the part of a crd.projectcalico.org/v1 IPAMBlock the GC reads.
type blockSpec struct {
	CIDR        string  `json:"cidr"`
	Affinity    *string `json:"affinity"`
	Allocations []*int  `json:"allocations"`
	Attributes  []struct {
		Handle    *string           `json:"handle_id"`
		Secondary map[string]string `json:"secondary"`
	} `json:"attributes"`
}

// blockAllocations lists a block's assigned addresses.
func blockAllocations(u *unstructured.Unstructured) ([]allocation, error) {
	data, err := json.Marshal(u.Object["spec"])
	if err != nil {
		return nil, err
	}
	var spec blockSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("IPAM block %s: %w", u.GetName(), err)
	}
	prefix, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return nil, fmt.Errorf("IPAM block %s: %w", u.GetName(), err)
	}
	host := ""
	if spec.Affinity != nil {
		host = strings.TrimPrefix(*spec.Affinity, "host:")
	}
	var out []allocation
	ip := prefix.Masked().Addr()
	for ordinal, attrIndex := range spec.Allocations {
		if ordinal > 0 {
			ip = ip.Next()
		}
		if attrIndex == nil {
			continue
		}
		a := allocation{ip: ip, block: spec.CIDR, node: host, attrs: map[string]string{}}
		if *attrIndex >= 0 && *attrIndex < len(spec.Attributes) {
			attr := spec.Attributes[*attrIndex]
			if attr.Handle != nil {
				a.handle = *attr.Handle
			}
			for k, v := range attr.Secondary {
				a.attrs[k] = v
			}
		}
		if n := a.attrs[attrNode]; n != "" {
			a.node = n
		}
		out = append(out, a)
	}
	return out, nil
}
