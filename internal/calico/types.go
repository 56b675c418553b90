package calico

import (
	"net/netip"
	"slices"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Marks runbook leaves on what it creates or changes, so the cluster itself says
// which run did it (the run journal is not the only witness).
const (
	// AnnotationCreatedByRun is set on a pool ensurePool created: its inverse only
	// deletes pools carrying its own run id.
	AnnotationCreatedByRun = "runbook.dev/created-by-run"
	// AnnotationDisabledByRun is set together with spec.disabled by disablePool: its
	// inverse only re-enables pools carrying its own run id.
	AnnotationDisabledByRun = "runbook.dev/disabled-by-run"
	// LabelRunID marks temporary objects (the verification namespace) of a run.
	LabelRunID = "runbook.dev/run-id"
	// LabelManagedBy is the well-known label; the operator sets it on its pools.
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// Family is an IP address family: 4 or 6.
type Family int

// FamilyOf returns the family of a prefix.
func FamilyOf(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return 4
	}
	return 6
}

// AddrFamily returns the family of an address (IPv4-mapped IPv6 counts as IPv4).
func AddrFamily(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// Pool is an IP pool as Calico reads it: the spec with Calico's read defaults applied
// (blockSize 26/122, nodeSelector all(), modes Never, allowedUses Workload+Tunnel),
// so that comparisons see what Calico sees rather than what happens to be stored.
type Pool struct {
	Name            string
	UID             types.UID
	ResourceVersion string
	Labels          map[string]string
	Annotations     map[string]string
	Spec            v3.IPPoolSpec
	// CIDR is Spec.CIDR parsed and masked; invalid (zero) when it does not parse,
	// which Calico itself tolerates by skipping the pool.
	CIDR     netip.Prefix
	Deleting bool
	// Allocatable is status.conditions[type=Allocatable] where the server
	// publishes it (native v3 CRDs, Calico 3.32+); nil elsewhere.
	Allocatable *bool
}

// Family is the pool's address family (0 when its CIDR does not parse).
func (p *Pool) Family() Family {
	if !p.CIDR.IsValid() {
		return 0
	}
	return FamilyOf(p.CIDR)
}

// Enabled reports whether IPAM may allocate from the pool.
// A pool whose nodeSelector is "!all()" selects no node: how older operator
// docs disable an Installation pool (before disableNewAllocations), so it counts
// as disabled too. Where the server publishes the Allocatable condition, it decides.
func (p *Pool) Enabled() bool {
	if p.Allocatable != nil && !*p.Allocatable {
		return false
	}
	return !p.Spec.Disabled && !p.Deleting && !SelectsNoNode(p.Spec.NodeSelector)
}

// SelectorNoNode is the selector that selects no node.
const SelectorNoNode = "!all()"

// SelectsNoNode reports whether a Calico selector is the one selecting no node.
func SelectsNoNode(sel string) bool { return strings.ReplaceAll(sel, " ", "") == SelectorNoNode }

// Allows reports whether the pool may be used for u (an empty list means Workload
// and Tunnel, Calico's default).
func (p *Pool) Allows(u v3.IPPoolAllowedUse) bool {
	if len(p.Spec.AllowedUses) == 0 {
		return u == v3.IPPoolAllowedUseWorkload || u == v3.IPPoolAllowedUseTunnel
	}
	return slices.Contains(p.Spec.AllowedUses, u)
}

// OwnerKind says who holds an allocated address.
type OwnerKind string

const (
	OwnerPod     OwnerKind = "pod"
	OwnerTunnel  OwnerKind = "tunnel"
	OwnerUnknown OwnerKind = "unknown"
)

// Allocation is one address Calico IPAM handed out, with its owner resolved from
// the block's allocation attributes (never by parsing the handle).
type Allocation struct {
	IP        netip.Addr
	Kind      OwnerKind
	Namespace string // pods
	Pod       string // pods
	Node      string // pods and tunnels, when recorded
	Tunnel    TunnelKind
	Handle    string // informational only
}

// Block is an IPAMBlock: a slice of a pool affine to (at most) one node.
type Block struct {
	Name            string
	UID             types.UID
	ResourceVersion string
	CIDR            netip.Prefix
	Affinity        string // "host:<node>" or empty
	Allocations     []Allocation
	Deleted         bool // being deleted by Calico's compare-and-delete protocol
}

// AffineNode is the node the block is affine to, or "".
func (b *Block) AffineNode() string {
	const prefix = "host:"
	if len(b.Affinity) > len(prefix) && b.Affinity[:len(prefix)] == prefix {
		return b.Affinity[len(prefix):]
	}
	return ""
}

// Affinity is a BlockAffinity: a node's claim on a block.
type Affinity struct {
	Name            string
	UID             types.UID
	ResourceVersion string
	Node            string
	CIDR            netip.Prefix
	State           string // confirmed | pending | pendingDeletion
	Deleted         bool
}

// Pod is the part of a pod this package needs.
type Pod struct {
	Namespace   string
	Name        string
	UID         types.UID
	Node        string
	HostNetwork bool
	Phase       corev1.PodPhase
	IPs         []netip.Addr
	OwnerKind   string
	OwnerName   string
	Deleting    bool
}

// HoldsAddress reports whether the pod's IPs are (still) allocated to it: host
// network pods have none of their own, and a pod that has terminated had its
// sandbox torn down, which released its address in IPAM.
func (p *Pod) HoldsAddress() bool {
	return !p.HostNetwork && p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

// Node is the part of a node this package needs.
type Node struct {
	Name          string
	Labels        map[string]string
	Tunnels       map[TunnelKind]netip.Addr // from the projectcalico.org/*TunnelAddr annotations
	WireguardV4   bool                      // projectcalico.org/WireguardPublicKey is set
	WireguardV6   bool                      // projectcalico.org/WireguardPublicKeyV6 is set
	Unschedulable bool
	Ready         bool
	Taints        []corev1.Taint
}

// TunnelAddress is a node's tunnel interface address.
type TunnelAddress struct {
	Node string
	Kind TunnelKind
	IP   netip.Addr
}

// CIDRSource is one place the cluster's pod CIDR is configured.
type CIDRSource struct {
	Source string // e.g. "kubeadm-config networking.podSubnet"
	CIDRs  []netip.Prefix
}
