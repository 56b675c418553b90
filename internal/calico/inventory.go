package calico

import (
	"net/netip"
	"sort"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
)

// FindPool returns the pool called name, or nil.
func FindPool(pools []Pool, name string) *Pool {
	for i := range pools {
		if pools[i].Name == name {
			return &pools[i]
		}
	}
	return nil
}

// PodAddress is a pod holding an address inside some CIDR.
type PodAddress struct {
	Pod *Pod
	IP  netip.Addr
}

// PodsIn lists the pods holding an address inside cidr, by status.podIPs (the
// addresses the kubelet reports, which exist for every pod whatever wrote them),
// sorted by namespace and name. Host network pods and terminated pods hold none
// (Pod.HoldsAddress).
func PodsIn(pods []Pod, cidr netip.Prefix) []PodAddress {
	var out []PodAddress
	for i := range pods {
		p := &pods[i]
		if !p.HoldsAddress() {
			continue
		}
		for _, ip := range p.IPs {
			if cidr.Contains(ip) {
				out = append(out, PodAddress{Pod: p, IP: ip})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pod.Namespace != out[j].Pod.Namespace {
			return out[i].Pod.Namespace < out[j].Pod.Namespace
		}
		return out[i].Pod.Name < out[j].Pod.Name
	})
	return out
}

// BlocksIn lists the IPAM blocks overlapping cidr. Overlap, not containment: a block
// of another size straddling the pool's edge still holds the pool's addresses.
func BlocksIn(blocks []Block, cidr netip.Prefix) []*Block {
	var out []*Block
	for i := range blocks {
		if blocks[i].CIDR.Overlaps(cidr) {
			out = append(out, &blocks[i])
		}
	}
	return out
}

// AllocationsIn lists every address IPAM has allocated inside cidr, with owners,
// sorted by address. Blocks being deleted (Deleted) still count until they are gone.
func AllocationsIn(blocks []Block, cidr netip.Prefix) []Allocation {
	var out []Allocation
	for _, b := range BlocksIn(blocks, cidr) {
		for _, a := range b.Allocations {
			if cidr.Contains(a.IP) {
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// AffinitiesIn lists the block affinities inside cidr.
func AffinitiesIn(affs []Affinity, cidr netip.Prefix) []*Affinity {
	var out []*Affinity
	for i := range affs {
		if affs[i].CIDR.Overlaps(cidr) {
			out = append(out, &affs[i])
		}
	}
	return out
}

// TunnelAddressesIn lists the node tunnel addresses (as the nodes publish them)
// inside cidr, sorted by node and kind.
func TunnelAddressesIn(nodes []Node, cidr netip.Prefix) []TunnelAddress {
	var out []TunnelAddress
	for i := range nodes {
		for _, k := range TunnelKinds {
			if ip, ok := nodes[i].Tunnels[k]; ok && cidr.Contains(ip) {
				out = append(out, TunnelAddress{Node: nodes[i].Name, Kind: k, IP: ip})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// OtherEnabledPools lists enabled pools other than name of family fam that allow
// workloads: what keeps pods schedulable once name is gone.
func OtherEnabledPools(pools []Pool, name string, fam Family) []*Pool {
	var out []*Pool
	for i := range pools {
		p := &pools[i]
		if p.Name != name && p.Enabled() && p.Family() == fam && p.Allows(v3.IPPoolAllowedUseWorkload) {
			out = append(out, p)
		}
	}
	return out
}
