package actions

import "github.com/runbookdev/runbook/internal/value"

var disablePoolDecl = &Decl{
	Name:    "disablePool",
	Summary: "Stop new allocations from a Calico IP pool (spec.disabled: true).",
	Description: `Patches only spec.disabled. Existing pods keep their addresses; only new allocations stop.
Satisfied when the pool is already disabled or does not exist.

Disabling moves node tunnel addresses at once: calico-node re-addresses tunl0/vxlan.calico from
another enabled pool with matching encapsulation and Tunnel in allowedUses that selects the node,
or removes them. The plan announces this, and the action refuses when some node would be left
without a tunnel address.`,
	Params: []Param{
		p("name", value.String, true, nil, "Name of the IPPool to disable."),
	},
	Outputs: []Output{
		{Name: "wasDisabled", Type: value.Bool, Description: "Whether the pool was already disabled before this step."},
	},
	Inverse: "Re-enables the pool, only if this run disabled it.",
}
