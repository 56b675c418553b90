package preflight

import (
	"context"
	"fmt"
	"strings"
)

func init() {
	Register(Check{ID: "pool-behaviour", Roles: migrationRoles, Run: onMigration(checkBehaviour)})
}

// checkBehaviour: the moved pods take the new pool's network behaviour with them.
// A new pool that differs from the old one in natOutgoing or encapsulation changes
// how the moved pods reach the world and each other — rarely what a migration
// meant, so each difference is named (issue #15). BGP export is checkBGPExport's:
// it matters only where BGP is in use.
func checkBehaviour(_ context.Context, _ *Input, m *Migration) ([]Finding, error) {
	var out []Finding
	for _, n := range m.New {
		for _, o := range m.Old {
			if o.Family() != n.Family() {
				continue
			}
			var diffs, effects []string
			if o.Spec.NATOutgoing != n.Spec.NATOutgoing {
				diffs = append(diffs, fmt.Sprintf("natOutgoing %v → %v", o.Spec.NATOutgoing, n.Spec.NATOutgoing))
				if o.Spec.NATOutgoing {
					effects = append(effects, "traffic to destinations outside every pool leaves with the pods' own addresses (no SNAT): egress to the internet or other networks breaks unless they route the pool")
				} else {
					effects = append(effects, "traffic to destinations outside every pool is SNATed to the node: peers that allowed the pods' addresses see the nodes' instead")
				}
			}
			if o.Spec.IPIPMode != n.Spec.IPIPMode || o.Spec.VXLANMode != n.Spec.VXLANMode {
				diffs = append(diffs, fmt.Sprintf("encapsulation ipipMode %s/vxlanMode %s → ipipMode %s/vxlanMode %s",
					o.Spec.IPIPMode, o.Spec.VXLANMode, n.Spec.IPIPMode, n.Spec.VXLANMode))
				effects = append(effects, "cross-node traffic of the moved pods is encapsulated differently from the pods still in the old pool; while both pools hold pods every node needs both tunnel kinds, and the network must pass the new one (IPIP is IP protocol 4, VXLAN UDP 4789)")
			}
			if len(diffs) == 0 {
				continue
			}
			out = append(out, Finding{Severity: Warn, Step: n.Step, Subject: "IPPool " + n.Name,
				Message: fmt.Sprintf("differs from the old pool %s in %s: %s", o.Name, strings.Join(diffs, ", "), strings.Join(effects, "; ")),
				Fix:     fmt.Sprintf("give the new pool the old pool's settings (natOutgoing %v, ipipMode %s, vxlanMode %s) unless the change is the point of the migration", o.Spec.NATOutgoing, o.Spec.IPIPMode, o.Spec.VXLANMode)})
		}
	}
	return out, nil
}
