package actions

import (
	"net/netip"

	"github.com/runbookdev/runbook/actions/decl"
)

// Pool is what pool(name) returns: the pool's spec as Calico stores it.
type Pool struct {
	Name             string   `expr:"name" json:"name"`
	CIDR             string   `expr:"cidr" json:"cidr"`
	Disabled         bool     `expr:"disabled" json:"disabled"`
	IPIPMode         string   `expr:"ipipMode" json:"ipipMode"`
	VXLANMode        string   `expr:"vxlanMode" json:"vxlanMode"`
	NATOutgoing      bool     `expr:"natOutgoing" json:"natOutgoing"`
	BlockSize        int      `expr:"blockSize" json:"blockSize"`
	NodeSelector     string   `expr:"nodeSelector" json:"nodeSelector"`
	AllowedUses      []string `expr:"allowedUses" json:"allowedUses"`
	DisableBGPExport bool     `expr:"disableBGPExport" json:"disableBGPExport"`
	ManagedBy        string   `expr:"managedBy" json:"managedBy,omitempty"`
}

// PodRef identifies a pod holding an address.
type PodRef struct {
	Namespace string `expr:"namespace" json:"namespace"`
	Name      string `expr:"name" json:"name"`
	Node      string `expr:"node" json:"node"`
	IP        string `expr:"ip" json:"ip"`
	OwnerKind string `expr:"ownerKind" json:"ownerKind,omitempty"`
	OwnerName string `expr:"ownerName" json:"ownerName,omitempty"`
}

// Allocation is one address Calico IPAM has handed out, with its owner resolved
// through the block attributes (never by parsing the handle).
type Allocation struct {
	IP        string `expr:"ip" json:"ip"`
	Kind      string `expr:"kind" json:"kind"` // pod | tunnel | unknown
	Namespace string `expr:"namespace" json:"namespace,omitempty"`
	Pod       string `expr:"pod" json:"pod,omitempty"`
	Node      string `expr:"node" json:"node,omitempty"`
	Handle    string `expr:"handle" json:"handle,omitempty"`
}

// TunnelAddress is a node's IPIP/VXLAN/WireGuard interface address.
type TunnelAddress struct {
	Node string `expr:"node" json:"node"`
	Type string `expr:"type" json:"type"` // ipip | vxlan | wireguard (v4 or v6)
	IP   string `expr:"ip" json:"ip"`
}

func builtinFuncs() []*decl.Func {
	return []*decl.Func{
		{Name: "pool", Signature: "pool(name string) Pool",
			Description: "The IP pool called name, or nil when it does not exist (test with `pool(x) != nil`).",
			Proto:       (func(string) *Pool)(nil)},
		{Name: "pools", Signature: "pools() []Pool",
			Description: "Every IP pool of the cluster.",
			Proto:       (func() []Pool)(nil)},
		{Name: "podsInPool", Signature: "podsInPool(name string) []PodRef",
			Description: "Pods (hostNetwork excluded) whose status.podIPs fall in the pool's CIDR.",
			Proto:       (func(string) []PodRef)(nil)},
		{Name: "allocations", Signature: "allocations(name string) []Allocation",
			Description: "Addresses Calico IPAM has allocated inside the pool's CIDR, with their owners (pod, tunnel, unknown).",
			Proto:       (func(string) []Allocation)(nil)},
		{Name: "tunnelAddresses", Signature: "tunnelAddresses(name string) []TunnelAddress",
			Description: "Node tunnel addresses (IPIP, VXLAN, WireGuard) inside the pool's CIDR.",
			Proto:       (func(string) []TunnelAddress)(nil)},
		{Name: "cidrContains", Signature: "cidrContains(outer string, inner string) bool",
			Description: "Whether the CIDR or address inner lies entirely inside the CIDR outer; false when either does not parse.",
			Proto:       (func(string, string) bool)(nil), Impl: cidrContains},
	}
}

func cidrContains(outer, inner string) bool {
	o, err := netip.ParsePrefix(outer)
	if err != nil {
		return false
	}
	if a, err := netip.ParseAddr(inner); err == nil {
		return o.Contains(a)
	}
	i, err := netip.ParsePrefix(inner)
	if err != nil {
		return false
	}
	return i.Bits() >= o.Bits() && o.Contains(i.Masked().Addr())
}
