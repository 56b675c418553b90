package actions

import (
	"context"
	"fmt"
	"strings"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/poolsahead"
	"github.com/runbookdev/runbook/internal/textlist"
)

// maxListed caps how many pods, addresses or nodes a refusal names.
const maxListed = 10

// holders is what still holds an address in a pool: pods (by status.podIPs), IPAM
// allocations (owners from block attributes, which also catches leaked addresses no
// pod reports), and node tunnel addresses (as the nodes publish them).
type holders struct {
	pool    *calico.Pool
	pods    []calico.PodAddress
	allocs  []calico.Allocation
	tunnels []calico.TunnelAddress
}

// poolHolders reads what holds addresses in p. An IPAM block that cannot be read is
// an error: then the pool cannot be shown empty.
func poolHolders(ctx context.Context, r calico.Reader, p *calico.Pool) (holders, error) {
	h := holders{pool: p}
	if !p.CIDR.IsValid() {
		return h, fmt.Errorf("pool %s has an invalid cidr %q", p.Name, p.Spec.CIDR)
	}
	pods, err := r.Pods(ctx)
	if err != nil {
		return h, fmt.Errorf("read pods: %w", err)
	}
	blocks, err := r.Blocks(ctx)
	if err != nil {
		return h, fmt.Errorf("cannot read every IPAM block, so the pool cannot be shown empty: %w", err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return h, fmt.Errorf("read nodes: %w", err)
	}
	h.pods = calico.PodsIn(pods, p.CIDR)
	h.allocs = calico.AllocationsIn(blocks, p.CIDR)
	h.tunnels = calico.TunnelAddressesIn(nodes, p.CIDR)
	return h, nil
}

func (h holders) empty() bool { return len(h.pods) == 0 && len(h.allocs) == 0 && len(h.tunnels) == 0 }

// onlyTunnels reports whether node tunnel addresses are all that holds the pool:
// calico-node moves those by itself once the pool is disabled.
func (h holders) onlyTunnels() bool {
	if len(h.pods) > 0 {
		return false
	}
	for _, a := range h.allocs {
		if a.Kind != calico.OwnerTunnel {
			return false
		}
	}
	return true
}

// leaving splits the holders by what the earlier steps of a plan do to the
// pool (fut; nil at apply, or when no earlier step touches it): pods and their
// allocations an earlier step moves out, and tunnel addresses calico-node moves
// once an earlier step disables the pool or moves them, are left for apply to
// check again (later, one line); what none of them removes stays in rest, a
// holders whose lines refuse the step now.
func (h holders) leaving(fut *poolsahead.Pool) (rest holders, later string) {
	if fut == nil {
		return h, ""
	}
	rest = holders{pool: h.pool}
	var gone []string
	podsLeave := fut.EmptiedBy != ""
	tunnelsLeave := fut.DisabledBy != "" || fut.TunnelsMovedBy != ""
	if podsLeave && len(h.pods) > 0 {
		gone = append(gone, fmt.Sprintf("%d pod(s)", len(h.pods)))
	} else {
		rest.pods = h.pods
	}
	if tunnelsLeave && len(h.tunnels) > 0 {
		gone = append(gone, fmt.Sprintf("%d node tunnel address(es)", len(h.tunnels)))
	} else {
		rest.tunnels = h.tunnels
	}
	for _, a := range h.allocs {
		if a.Kind == calico.OwnerPod && podsLeave || a.Kind == calico.OwnerTunnel && tunnelsLeave {
			continue
		}
		rest.allocs = append(rest.allocs, a)
	}
	if len(gone) > 0 {
		later = fmt.Sprintf("now %s hold addresses in pool %s; the earlier steps move them out (pool %s), and apply checks it is empty", strings.Join(gone, " and "), h.pool.Name, fut.Why())
		if tunnelsLeave && len(h.tunnels) > 0 && fut.TunnelsMovedBy == "" {
			later += "; calico-node moves the tunnel addresses some time after the pool is disabled: without a moveTunnelAddresses step before this one, apply may still find them and refuse"
		}
	}
	return rest, later
}

// lines describes the holders, one line per kind.
func (h holders) lines() []string {
	var out []string
	if len(h.pods) > 0 {
		names := make([]string, len(h.pods))
		for i, pa := range h.pods {
			names[i] = fmt.Sprintf("%s/%s (%s on %s)", pa.Pod.Namespace, pa.Pod.Name, pa.IP, pa.Pod.Node)
		}
		out = append(out, fmt.Sprintf("%d pod(s) still have addresses in pool %s (%s): %s", len(h.pods), h.pool.Name, h.pool.CIDR, textlist.Capped(names, maxListed)))
	}
	if len(h.allocs) > 0 {
		out = append(out, fmt.Sprintf("%d IPAM allocation(s) in %s: %s", len(h.allocs), h.pool.CIDR, calico.DescribeAllocations(h.allocs, maxListed)))
	}
	if len(h.tunnels) > 0 {
		names := make([]string, len(h.tunnels))
		for i, t := range h.tunnels {
			names[i] = fmt.Sprintf("node %s %s %s", t.Node, t.Kind, t.IP)
		}
		out = append(out, fmt.Sprintf("%d node tunnel address(es) in %s: %s (calico-node moves them once the pool no longer serves them: on a pool disabled by nodeSelector only after it restarts, which a moveTunnelAddresses step does node by node)", len(h.tunnels), h.pool.CIDR, textlist.Capped(names, maxListed)))
	}
	return out
}
