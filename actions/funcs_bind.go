package actions

import (
	"context"

	"github.com/runbookdev/runbook/internal/calico"
)

// guardFuncs implements the cluster guard functions declared in funcs.go over the
// Calico client's informer cache: each evaluation reads memory, never the API. The
// Go types match the declared Protos exactly (the engine binds them by name). With
// no Calico access they report an empty cluster; the actions then fail with the
// reason.
func guardFuncs(cal calico.Client) map[string]any {
	read := func() ([]calico.Pool, calico.Reader) {
		if cal == nil {
			return nil, nil
		}
		// Errors name objects that could not be decoded; the rest is still the best
		// answer a guard can get. The actions re-check from the API server.
		pools, _ := cal.Pools(context.Background())
		return pools, cal
	}
	poolOf := func(name string) (*calico.Pool, calico.Reader) {
		pools, r := read()
		return calico.FindPool(pools, name), r
	}
	return map[string]any{
		"pool": func(name string) *Pool {
			p, _ := poolOf(name)
			if p == nil {
				return nil
			}
			v := poolView(p)
			return &v
		},
		"pools": func() []Pool {
			pools, _ := read()
			out := make([]Pool, len(pools))
			for i := range pools {
				out[i] = poolView(&pools[i])
			}
			return out
		},
		"podsInPool": func(name string) []PodRef {
			p, r := poolOf(name)
			if p == nil || !p.CIDR.IsValid() {
				return []PodRef{}
			}
			pods, _ := r.Pods(context.Background())
			in := calico.PodsIn(pods, p.CIDR)
			out := make([]PodRef, len(in))
			for i, pa := range in {
				out[i] = PodRef{Namespace: pa.Pod.Namespace, Name: pa.Pod.Name, Node: pa.Pod.Node, IP: pa.IP.String(),
					OwnerKind: pa.Pod.OwnerKind, OwnerName: pa.Pod.OwnerName}
			}
			return out
		},
		"allocations": func(name string) []Allocation {
			p, r := poolOf(name)
			if p == nil || !p.CIDR.IsValid() {
				return []Allocation{}
			}
			blocks, _ := r.Blocks(context.Background())
			allocs := calico.AllocationsIn(blocks, p.CIDR)
			out := make([]Allocation, len(allocs))
			for i, a := range allocs {
				out[i] = Allocation{IP: a.IP.String(), Kind: string(a.Kind), Namespace: a.Namespace, Pod: a.Pod, Node: a.Node, Handle: a.Handle}
			}
			return out
		},
		"tunnelAddresses": func(name string) []TunnelAddress {
			p, r := poolOf(name)
			if p == nil || !p.CIDR.IsValid() {
				return []TunnelAddress{}
			}
			nodes, _ := r.Nodes(context.Background())
			tun := calico.TunnelAddressesIn(nodes, p.CIDR)
			out := make([]TunnelAddress, len(tun))
			for i, t := range tun {
				out[i] = TunnelAddress{Node: t.Node, Type: string(t.Kind), IP: t.IP.String()}
			}
			return out
		},
	}
}

// poolView is the guard view of a pool.
func poolView(p *calico.Pool) Pool {
	uses := make([]string, len(p.Spec.AllowedUses))
	for i, u := range p.Spec.AllowedUses {
		uses[i] = string(u)
	}
	cidr := p.Spec.CIDR
	if p.CIDR.IsValid() {
		cidr = p.CIDR.String()
	}
	return Pool{Name: p.Name, CIDR: cidr, Disabled: p.Spec.Disabled, IPIPMode: string(p.Spec.IPIPMode), VXLANMode: string(p.Spec.VXLANMode),
		NATOutgoing: p.Spec.NATOutgoing, BlockSize: p.Spec.BlockSize, NodeSelector: p.Spec.NodeSelector, AllowedUses: uses,
		DisableBGPExport: p.Spec.DisableBGPExport, ManagedBy: p.Labels[calico.LabelManagedBy]}
}
