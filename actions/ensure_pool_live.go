package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/textlist"
)

// checkLiveChange refuses a patch that changes the network of a pool holding
// addresses (issue #15 item 2: converging default-ipv4-ippool with defaults turned
// ipipMode Always -> Never and natOutgoing true -> false under 10 pods and 3
// tunnels, which cuts cross-node pod traffic and egress), unless the step says
// allowLiveChange. It names what the pool holds, so the reviewer sees the blast
// radius in the plan.
func (a *ensurePoolImpl) checkLiveChange(ctx context.Context, cal calico.Client, v *ensureVerdict, in ensureInput) error {
	var changing []string
	for _, d := range v.diffs {
		if liveFields[d.field] {
			changing = append(changing, d.String())
		}
	}
	if len(changing) == 0 {
		return nil
	}
	blocks, err := cal.Live().Blocks(ctx)
	if err != nil {
		return fmt.Errorf("reading IPAM blocks to see what pool %s holds: %w", in.name, err)
	}
	var pods, nodes, other []string
	for _, b := range blocks {
		for _, al := range b.Allocations {
			if !v.existing.CIDR.Contains(al.IP) {
				continue
			}
			switch al.Kind {
			case calico.OwnerPod:
				pods = append(pods, al.Namespace+"/"+al.Pod)
			case calico.OwnerTunnel:
				nodes = append(nodes, al.Node)
			default:
				other = append(other, al.IP.String())
			}
		}
	}
	if len(pods)+len(nodes)+len(other) == 0 {
		return nil // nothing lives in it yet: the change disrupts nobody
	}
	sort.Strings(pods)
	sort.Strings(nodes)
	held := fmt.Sprintf("%d pod(s) (%s) and %d node tunnel address(es) (%s)", len(pods), textlist.Capped(pods, maxListed), len(nodes), textlist.Capped(nodes, maxListed))
	if len(other) > 0 {
		held += fmt.Sprintf(" and %d other address(es)", len(other))
	}
	msg := fmt.Sprintf("changing %s on pool %s, which holds %s, changes their network (cross-node traffic, egress, allocation)",
		strings.Join(changing, ", "), in.name, held)
	if in.allowLive {
		v.warnings = append(v.warnings, msg+": allowed by allowLiveChange")
		return nil
	}
	v.problems = append(v.problems, msg+"; leave those fields out to keep the pool as it is, or set allowLiveChange: true if this is intended")
	return nil
}
