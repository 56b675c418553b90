package podmove

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Pool is an IP pool as far as moving pods is concerned: a name and a CIDR.
type Pool struct {
	Name string
	CIDR netip.Prefix
}

// Placement says where a pod's addresses are relative to the migration.
type Placement int

const (
	// NoAddress: no address yet (Pending), host network, or finished.
	NoAddress Placement = iota
	// InOld: some address is in the pool being emptied.
	InOld
	// InTarget: every address of a family the target pools cover is in one of them,
	// and none is in the old pool.
	InTarget
	// Elsewhere: addresses in neither (another pool, or a family no target covers).
	Elsewhere
)

func (p Placement) String() string {
	return [...]string{"no address", "old pool", "target pool", "another pool"}[p]
}

// placementOf classifies a pod's addresses. A dual-stack pod is in the old pool as
// long as either family's address is; it is in a target pool when each address of
// a family the targets cover is in one of them (a v4 migration does not care where
// the pod's v6 address comes from).
func placementOf(p *corev1.Pod, old Pool, targets []Pool) Placement {
	if !holdsAddress(p) {
		return NoAddress
	}
	as := addrs(p)
	if len(as) == 0 {
		return NoAddress
	}
	for _, a := range as {
		if old.CIDR.Contains(a) {
			return InOld
		}
	}
	covered := 0
	for _, a := range as {
		if !coversFamily(targets, a) {
			continue
		}
		if !inAny(a, targets) {
			return Elsewhere
		}
		covered++
	}
	if covered == 0 {
		return Elsewhere
	}
	return InTarget
}

// oldAddress returns the pod's address in the old pool, for messages and events.
func oldAddress(p *corev1.Pod, old Pool) string {
	for _, a := range addrs(p) {
		if old.CIDR.Contains(a) {
			return a.String()
		}
	}
	return ""
}

func inAny(a netip.Addr, pools []Pool) bool {
	for _, p := range pools {
		if p.CIDR.Contains(a) {
			return true
		}
	}
	return false
}

func coversFamily(pools []Pool, a netip.Addr) bool {
	for _, p := range pools {
		if p.CIDR.Addr().Is4() == a.Is4() {
			return true
		}
	}
	return false
}
