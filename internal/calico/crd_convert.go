package calico

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The crd.projectcalico.org/v1 resources of a manifest install. Their spec JSON is
// the projectcalico.org/v3 (projectcalico/api) and libcalico-go types', so those
// types decode them; reads go through the dynamic client because no typed
// clientset exists for this group.
var (
	gvrPools      = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	gvrBlocks     = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
	gvrAffinities = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}
	// gvrV3Pools is the same pool through projectcalico.org/v3 (Calico API server
	// or native v3 CRDs), with server-side validation and defaulting.
	gvrV3Pools = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
)

const poolAPIVersion, poolKind = "crd.projectcalico.org/v1", "IPPool"

// annotationV3Metadata is where libcalico-go keeps v3 metadata on a v1 object.
const annotationV3Metadata = "projectcalico.org/metadata"

// poolFromObject decodes a v1 IPPool. Unknown spec fields (a newer Calico's) are
// ignored here: reads never feed a write, writes only patch owned fields.
func poolFromObject(u *unstructured.Unstructured) (Pool, error) {
	var p v3.IPPool
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
		return Pool{}, fmt.Errorf("decode IPPool %s: %w", u.GetName(), err)
	}
	out := Pool{
		Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
		Labels: p.Labels, Annotations: p.Annotations,
		Spec: WithDefaults(p.Spec), Deleting: p.DeletionTimestamp != nil,
	}
	// A pool written through projectcalico.org/v3 keeps its v3 labels in this
	// annotation of the v1 object (libcalico-go's KDD backend): the operator's
	// managed-by label lives only there once the operator wrote the pool via v3.
	if raw, ok := p.Annotations[annotationV3Metadata]; ok {
		var meta struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(raw), &meta); err != nil {
			return Pool{}, fmt.Errorf("IPPool %s: annotation %s: %w", u.GetName(), annotationV3Metadata, err)
		}
		if len(meta.Labels) > 0 {
			out.Labels = maps.Clone(out.Labels)
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			maps.Copy(out.Labels, meta.Labels)
		}
	}
	// Native v3 CRDs (Calico 3.32+) publish status.conditions[type=Allocatable];
	// older servers have no status at all, and then it is not consulted.
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Allocatable" {
			ok := m["status"] == "True"
			out.Allocatable = &ok
		}
	}
	if cidr, err := ParseCIDR(p.Spec.CIDR); err == nil {
		out.CIDR = cidr
	}
	return out, nil
}

// blockFromObject decodes a v1 IPAMBlock and resolves its allocations' owners.
func blockFromObject(u *unstructured.Unstructured) (Block, error) {
	var b libapiv3.IPAMBlock
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
		return Block{}, fmt.Errorf("decode IPAMBlock %s: %w", u.GetName(), err)
	}
	cidr, err := ParseCIDR(b.Spec.CIDR)
	if err != nil {
		return Block{}, fmt.Errorf("IPAMBlock %s: %w", u.GetName(), err)
	}
	out := Block{Name: b.Name, UID: b.UID, ResourceVersion: b.ResourceVersion, CIDR: cidr, Deleted: b.Spec.Deleted,
		Allocations: blockAllocations(cidr, &b.Spec)}
	if b.Spec.Affinity != nil {
		out.Affinity = *b.Spec.Affinity
	}
	return out, nil
}

// affinityFromObject decodes a v1 BlockAffinity.
func affinityFromObject(u *unstructured.Unstructured) (Affinity, error) {
	var a libapiv3.BlockAffinity
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
		return Affinity{}, fmt.Errorf("decode BlockAffinity %s: %w", u.GetName(), err)
	}
	cidr, err := ParseCIDR(a.Spec.CIDR)
	if err != nil {
		return Affinity{}, fmt.Errorf("BlockAffinity %s: %w", u.GetName(), err)
	}
	return Affinity{Name: a.Name, UID: a.UID, ResourceVersion: a.ResourceVersion, Node: a.Spec.Node, CIDR: cidr,
		State: a.Spec.State, Deleted: a.Spec.Deleted == "true"}, nil
}

// podFromObject keeps what the inventory needs of a pod. Unparsable pod IPs are
// skipped: the kubelet validated them, and one bad entry must not hide the others.
func podFromObject(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Node: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork,
		Phase: p.Status.Phase, Deleting: p.DeletionTimestamp != nil}
	for _, pip := range p.Status.PodIPs {
		if ip, err := netip.ParseAddr(pip.IP); err == nil {
			out.IPs = append(out.IPs, ip.Unmap())
		}
	}
	if len(out.IPs) == 0 && p.Status.PodIP != "" {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out.IPs = append(out.IPs, ip.Unmap())
		}
	}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			out.OwnerKind, out.OwnerName = o.Kind, o.Name
		}
	}
	return out
}

// NodeFromObject is the Calico view of a Kubernetes node: it keeps a node's labels (Calico nodeSelectors evaluate the Kubernetes
// node labels), scheduling fields and the tunnel addresses calico-node publishes.
func NodeFromObject(n *corev1.Node) Node {
	out := Node{Name: n.Name, Labels: n.Labels, Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints,
		WireguardV4: n.Annotations[annotationWireguardKey] != "", WireguardV6: n.Annotations[annotationWireguardKeyV6] != ""}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for k, ann := range tunnelAnnotation {
		if ip, ok := parseAddrOrPrefix(n.Annotations[ann]); ok {
			if out.Tunnels == nil {
				out.Tunnels = map[TunnelKind]netip.Addr{}
			}
			out.Tunnels[k] = ip
		}
	}
	return out
}

// parseAddrOrPrefix accepts "10.0.0.1" and "10.0.0.1/32" (calico-node writes the
// former; the node address annotations use the latter form).
func parseAddrOrPrefix(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
