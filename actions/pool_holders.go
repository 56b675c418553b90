package actions

import (
	"context"
	"fmt"

	"github.com/runbookdev/runbook/internal/calico"
)

// maxListed caps how many pods, addresses or nodes a refusal names.
const maxListed = 10

// poolHolders lists what still holds an address in a pool, one line per kind:
// pods (by status.podIPs), IPAM allocations (with owners from block attributes,
// which also catches leaked addresses no pod reports), and node tunnel addresses.
// An IPAM block that cannot be read is an error: then emptiness is not shown.
func poolHolders(ctx context.Context, r calico.Reader, p *calico.Pool) ([]string, error) {
	if !p.CIDR.IsValid() {
		return nil, fmt.Errorf("pool %s has an invalid cidr %q", p.Name, p.Spec.CIDR)
	}
	pods, err := r.Pods(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pods: %w", err)
	}
	blocks, err := r.Blocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot read every IPAM block, so the pool cannot be shown empty: %w", err)
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	var out []string
	if in := calico.PodsIn(pods, p.CIDR); len(in) > 0 {
		names := make([]string, len(in))
		for i, pa := range in {
			names[i] = fmt.Sprintf("%s/%s (%s on %s)", pa.Pod.Namespace, pa.Pod.Name, pa.IP, pa.Pod.Node)
		}
		out = append(out, fmt.Sprintf("%d pod(s) still have addresses in pool %s (%s): %s", len(in), p.Name, p.CIDR, capped(names, maxListed)))
	}
	if allocs := calico.AllocationsIn(blocks, p.CIDR); len(allocs) > 0 {
		out = append(out, fmt.Sprintf("%d IPAM allocation(s) in %s: %s", len(allocs), p.CIDR, calico.DescribeAllocations(allocs, maxListed)))
	}
	if tun := calico.TunnelAddressesIn(nodes, p.CIDR); len(tun) > 0 {
		names := make([]string, len(tun))
		for i, t := range tun {
			names[i] = fmt.Sprintf("node %s %s %s", t.Node, t.Kind, t.IP)
		}
		out = append(out, fmt.Sprintf("%d node tunnel address(es) in %s: %s", len(tun), p.CIDR, capped(names, maxListed)))
	}
	return out, nil
}
