package calico

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	utilnet "k8s.io/utils/net"
)

// ParseCIDR parses a CIDR as stored in the cluster, which may be written
// non-canonically (upper-case or uncompressed IPv6, calico#11311) and, in objects
// written without Calico's validation, with host bits set. It returns the masked
// prefix: what Calico's own net.ParseCIDR-based code operates on.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: zones are not allowed", s)
	}
	return p.Masked(), nil
}

// Contains reports whether inner lies entirely inside outer (same family).
func Contains(outer, inner netip.Prefix) bool {
	return outer.IsValid() && inner.IsValid() && inner.Bits() >= outer.Bits() && outer.Contains(inner.Masked().Addr())
}

// DefaultBlockSize is Calico's block prefix length for a family.
func DefaultBlockSize(f Family) int {
	if f == 6 {
		return 122
	}
	return 26
}

// BlockSizeRange is the prefix lengths Calico accepts as block sizes.
func BlockSizeRange(f Family) (lo, hi int) {
	if f == 6 {
		return 116, 128
	}
	return 20, 32
}

// nthAddr returns the address at offset n inside prefix, or false when n is outside
// it. Block allocations are indexed by ordinal from the block's first address.
func nthAddr(prefix netip.Prefix, n int) (netip.Addr, bool) {
	if n < 0 {
		return netip.Addr{}, false // GetIndexedIP(::/64, -1) gives ::1: big.Int.Bytes drops the sign
	}
	p := prefix.Masked()
	ip, err := utilnet.GetIndexedIP(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, n)
	if err != nil {
		return netip.Addr{}, false
	}
	a, _ := netip.AddrFromSlice(ip) // 16 bytes: always an address
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a, true
}
