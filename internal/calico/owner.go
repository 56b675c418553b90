package calico

import (
	"net/netip"
	"strings"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
)

// The allocation attribute keys and values Calico writes (libcalico-go
// model.IPAMBlockAttribute*). They are the only reliable record of who holds an
// address: handles are opaque ("k8s-pod-network.<containerID>" names a sandbox, not
// a pod) and must never be parsed.
const (
	attrPod       = "pod"
	attrNamespace = "namespace"
	attrNode      = "node"
	attrType      = "type"
)

// resolveOwner says who holds an address from its allocation attributes: a node
// tunnel when the type attribute names one, a pod when namespace and pod are
// recorded, otherwise unknown (an allocation by some other IPAM client, or an old
// one from before attributes existed).
func resolveOwner(a *libapiv3.AllocationAttribute) Allocation {
	out := Allocation{Kind: OwnerUnknown}
	if a == nil {
		return out
	}
	if a.AttrPrimary != nil {
		out.Handle = *a.AttrPrimary
	}
	sec := a.AttrSecondary
	out.Node = sec[attrNode]
	if k, ok := tunnelKindByAttr[sec[attrType]]; ok {
		out.Kind, out.Tunnel = OwnerTunnel, k
		return out
	}
	if sec[attrNamespace] != "" && sec[attrPod] != "" {
		out.Kind, out.Namespace, out.Pod = OwnerPod, sec[attrNamespace], sec[attrPod]
	}
	return out
}

// WindowsReservedHandle is the handle of the addresses Calico reserves in every
// block of a Windows node (the first three and the last, which Windows networking
// takes): libcalico-go lib/ipam/ipam_block.go WindowsReservedHandle.
const WindowsReservedHandle = "windows-reserved-ipam-handle"

// windowsReserved reports an allocation of WindowsReservedHandle. Calico counts a
// block holding only those as empty (ipam_block.go empty → containsOnlyReservedIPs),
// releases its affinity and deletes it like any empty block; counting them as
// holders would keep an old pool with Windows nodes from ever emptying.
func windowsReserved(a *libapiv3.AllocationAttribute) bool {
	return a != nil && a.AttrPrimary != nil && strings.EqualFold(*a.AttrPrimary, WindowsReservedHandle)
}

// blockAllocations lists a block's allocated addresses with their owners, except
// Windows' reserved addresses (see windowsReserved). An
// allocation whose attribute index is out of range (a corrupt block) is still an
// allocation: it is reported with an unknown owner rather than dropped, because
// the callers use this to decide whether a pool is empty.
func blockAllocations(cidr netip.Prefix, spec *libapiv3.IPAMBlockSpec) []Allocation {
	var out []Allocation
	for ordinal, attrIdx := range spec.Allocations {
		if attrIdx == nil {
			continue
		}
		ip, ok := nthAddr(cidr, ordinal)
		if !ok {
			continue
		}
		var attr *libapiv3.AllocationAttribute
		if *attrIdx >= 0 && *attrIdx < len(spec.Attributes) {
			attr = &spec.Attributes[*attrIdx]
		}
		if windowsReserved(attr) {
			continue
		}
		a := resolveOwner(attr)
		a.IP = ip
		out = append(out, a)
	}
	return out
}
