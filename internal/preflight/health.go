package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/textlist"
)

func init() {
	Register(Check{ID: "ipam-health", Roles: poolRoles, Run: checkIPAMHealth})
}

// Health is an IPAM health report, like `calicoctl ipam check` but read-only and
// without the datastore lock: plain lists of what the API server holds, so it
// cannot disturb running IPAM. Lists are sorted.
type Health struct {
	// Leaked are pod addresses whose pod is gone: no pod of that namespace/name,
	// or one that holds other addresses of the family (a new pod of the same
	// name). A pod that exists without reported addresses is still starting and is
	// never counted.
	Leaked []calico.Allocation
	// NodeGone are addresses recorded for a node that no longer exists (tunnel
	// addresses, and pods whose node was deleted).
	NodeGone []calico.Allocation
	// PendingDeletion are affinities Calico began to release and did not finish.
	PendingDeletion []calico.Affinity
	// Unaffine are blocks with no affinity (their node was deleted, or a pool was
	// deleted around them), with the number of addresses still in each.
	Unaffine []calico.Block
	// AffinityNodeGone are affinities of nodes that no longer exist.
	AffinityNodeGone []calico.Affinity
	// Handles are IPAM handles with no allocation left in any block, when listed.
	Handles []string
}

// Assess computes the health report from what the readers returned.
func Assess(blocks []calico.Block, affs []calico.Affinity, pods []calico.Pod, nodes []calico.Node, handles []string) Health {
	var h Health
	nodeSet := map[string]bool{}
	for _, n := range nodes {
		nodeSet[n.Name] = true
	}
	type key struct{ ns, name string }
	podByName := map[key]*calico.Pod{}
	podByIP := map[netip.Addr]bool{}
	for i := range pods {
		p := &pods[i]
		podByName[key{p.Namespace, p.Name}] = p
		if p.HoldsAddress() {
			for _, ip := range p.IPs {
				podByIP[ip] = true
			}
		}
	}
	used := map[string]bool{}
	for _, b := range blocks {
		if b.AffineNode() == "" && !b.Deleted {
			h.Unaffine = append(h.Unaffine, b)
		}
		for _, a := range b.Allocations {
			used[a.Handle] = true
			switch {
			case a.Kind == calico.OwnerPod:
				if podByIP[a.IP] {
					continue // a pod holds it: never a leak (calico#5044)
				}
				p := podByName[key{a.Namespace, a.Pod}]
				switch {
				case p == nil && a.Node != "" && !nodeSet[a.Node]:
					h.NodeGone = append(h.NodeGone, a)
				case p == nil, !p.HoldsAddress():
					h.Leaked = append(h.Leaked, a)
				case hasFamily(p.IPs, a.IP):
					// The pod holds another address of the family: this one is
					// left from an earlier sandbox of a pod of the same name.
					h.Leaked = append(h.Leaked, a)
				}
			case a.Kind == calico.OwnerTunnel && a.Node != "" && !nodeSet[a.Node]:
				h.NodeGone = append(h.NodeGone, a)
			}
		}
	}
	for _, af := range affs {
		if af.State == "pendingDeletion" {
			h.PendingDeletion = append(h.PendingDeletion, af)
		}
		if af.Node != "" && !nodeSet[af.Node] {
			h.AffinityNodeGone = append(h.AffinityNodeGone, af)
		}
	}
	for _, hd := range handles {
		if !used[hd] {
			h.Handles = append(h.Handles, hd)
		}
	}
	sort.Slice(h.Leaked, func(i, j int) bool { return h.Leaked[i].IP.Less(h.Leaked[j].IP) })
	sort.Slice(h.NodeGone, func(i, j int) bool { return h.NodeGone[i].IP.Less(h.NodeGone[j].IP) })
	sort.Slice(h.Unaffine, func(i, j int) bool { return h.Unaffine[i].Name < h.Unaffine[j].Name })
	sort.Strings(h.Handles)
	return h
}

// hasFamily reports whether ips holds an address of ip's family.
func hasFamily(ips []netip.Addr, ip netip.Addr) bool {
	for _, x := range ips {
		if calico.AddrFamily(x) == calico.AddrFamily(ip) {
			return true
		}
	}
	return false
}

// ReadHealth reads the IPAM state and assesses it.
func ReadHealth(ctx context.Context, r calico.Reader, handles []string) (Health, error) {
	blocks, err := r.Blocks(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("read IPAM blocks: %w", err)
	}
	affs, err := r.Affinities(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("read block affinities: %w", err)
	}
	pods, err := r.Pods(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("read pods: %w", err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("read nodes: %w", err)
	}
	return Assess(blocks, affs, pods, nodes, handles), nil
}

func allocNames(as []calico.Allocation) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// checkIPAMHealth reports the health of IPAM as findings: counts and the first
// few objects of each kind. Leaked addresses inside an old pool are a warning
// (deletePool refuses while they exist; releaseLeakedAddresses frees them), the
// rest information.
func checkIPAMHealth(ctx context.Context, in *Input) ([]Finding, error) {
	if in.Calico == nil {
		return nil, errNoCalico
	}
	var handles []string
	if items, err := in.List(ctx, crdGVR("ipamhandles")); err == nil {
		for _, it := range items {
			if id, ok, _ := unstructured.NestedString(it.Object, "spec", "handleID"); ok {
				handles = append(handles, id)
			}
		}
	}
	h, err := ReadHealth(ctx, in.Calico, handles)
	if err != nil {
		return nil, err
	}
	m, _ := in.Migration(ctx)
	var out []Finding
	var leakedOld, leakedElse []calico.Allocation
	for _, a := range h.Leaked {
		inOld := false
		if m != nil {
			for _, o := range m.Old {
				inOld = inOld || o.CIDR.Contains(a.IP)
			}
		}
		if inOld {
			leakedOld = append(leakedOld, a)
		} else {
			leakedElse = append(leakedElse, a)
		}
	}
	if len(leakedOld) > 0 {
		out = append(out, Finding{ID: "ipam-health.leaked", Severity: Warn, Subject: "IPAMBlock allocations",
			Message: fmt.Sprintf("%d address(es) in the old pool are allocated to pods that are gone: %s; deletePool refuses while they are allocated", len(leakedOld), textlist.Capped(allocNames(leakedOld), listLimit)),
			Fix:     "let calico-kube-controllers release them (after its leakGracePeriod), or add a releaseLeakedAddresses step before deletePool"})
	}
	if len(leakedElse) > 0 {
		out = append(out, Finding{ID: "ipam-health.leaked", Severity: Info, Subject: "IPAMBlock allocations",
			Message: fmt.Sprintf("%d address(es) outside the old pools are allocated to pods that are gone: %s", len(leakedElse), textlist.Capped(allocNames(leakedElse), listLimit))})
	}
	if len(h.NodeGone) > 0 {
		out = append(out, Finding{ID: "ipam-health.node-gone", Severity: Info, Subject: "IPAMBlock allocations",
			Message: fmt.Sprintf("%d address(es) belong to nodes that no longer exist: %s", len(h.NodeGone), textlist.Capped(allocNames(h.NodeGone), listLimit)),
			Fix:     "calico-kube-controllers releases deleted nodes' addresses; check it is running"})
	}
	if len(h.PendingDeletion) > 0 || len(h.AffinityNodeGone) > 0 {
		var names []string
		for _, a := range h.PendingDeletion {
			names = append(names, fmt.Sprintf("%s (%s, pendingDeletion)", a.Name, a.CIDR))
		}
		for _, a := range h.AffinityNodeGone {
			names = append(names, fmt.Sprintf("%s (node %s gone)", a.Name, a.Node))
		}
		out = append(out, Finding{ID: "ipam-health.affinities", Severity: Info, Subject: "BlockAffinity",
			Message: fmt.Sprintf("%d block affinities are being released or belong to deleted nodes: %s", len(names), textlist.Capped(names, listLimit))})
	}
	if len(h.Unaffine) > 0 {
		names := make([]string, len(h.Unaffine))
		for i, b := range h.Unaffine {
			names[i] = fmt.Sprintf("%s (%s, %d address(es))", b.Name, b.CIDR, len(b.Allocations))
		}
		out = append(out, Finding{ID: "ipam-health.unaffine-blocks", Severity: Info, Subject: "IPAMBlock",
			Message: fmt.Sprintf("%d block(s) have no affinity: %s", len(names), textlist.Capped(names, listLimit))})
	}
	if len(h.Handles) > 0 {
		out = append(out, Finding{ID: "ipam-health.handles", Severity: Info, Subject: "IPAMHandle",
			Message: fmt.Sprintf("%d handle(s) have no allocation in any block: %s", len(h.Handles), textlist.Capped(h.Handles, listLimit))})
	}
	if len(out) == 0 {
		out = append(out, Finding{ID: "ipam-health", Severity: Info, Message: "IPAM is consistent: no leaked addresses, orphaned blocks or stuck affinities"})
	}
	return out, nil
}
