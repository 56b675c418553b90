package actions

import (
	"time"

	"github.com/runbookdev/runbook/internal/value"
)

var deletePoolDecl = &Decl{
	Name:    "deletePool",
	Summary: "Delete a Calico IP pool once nothing is left allocated in it (point of no return).",
	Description: `Refuses while any pod, IPAM allocation or node tunnel address is in the pool (listing them),
or while no other enabled pool serves the pool's address family. Calico's own delete path does
not check for addresses in use, so these checks are the only safety; used addresses are never
force-released. Satisfied when the pool does not exist.`,
	Params: []Param{
		p("name", value.String, true, nil, "Name of the IPPool to delete."),
		p("timeout", value.Duration, false, 2*time.Minute, "How long to wait for Calico to release the pool's blocks."),
	},
	Outputs: []Output{
		{Name: "deleted", Type: value.Bool, Description: "Whether this step deleted the pool (false when it was already gone)."},
	},
	PointOfNoReturn: true,
}
