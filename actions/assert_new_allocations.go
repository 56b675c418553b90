package actions

import (
	"time"

	"github.com/runbookdev/runbook/internal/value"
)

var assertNewAllocationsDecl = &Decl{
	Name:    "assertNewAllocations",
	Summary: "Prove that new pods get addresses from the given pool, with temporary test pods.",
	Description: `Creates a temporary namespace labelled with the run id, one pod pinned to each selected node
(capped at maxNodes and sampled across zones on big clusters), waits for them to be Running and
asserts each IP lies in the pool. The namespace is always deleted (a cleanup hook that also runs
on failure, interrupt, and on resume after a crash). A check: it verifies again on every run and
changes nothing lasting.`,
	Params: []Param{
		p("pool", value.String, true, nil, "Pool the new addresses must come from."),
		p("namespace", value.String, false, "ippool-test", "Name of the temporary namespace (must not exist unless this run created it)."),
		p("image", value.String, false, "registry.k8s.io/pause:3.10", "Image of the test pods."),
		p("maxNodes", value.Int, false, 20, "Test at most this many nodes."),
		p("nodeSelector", value.Map, false, nil, "Only test nodes with these labels."),
		p("tolerations", value.List, false, nil, "Tolerations of the test pods."),
		p("imagePullSecrets", value.List, false, nil, "Names of image pull secrets for the test pods."),
		p("securityContext", value.Map, false, nil, "Pod securityContext of the test pods."),
		p("timeout", value.Duration, false, 5*time.Minute, "Give up (and fail the step) after this long."),
	},
	Outputs: []Output{
		{Name: "ips", Type: value.List, Description: "Addresses the test pods received."},
		{Name: "nodes", Type: value.Int, Description: "Nodes tested."},
	},
}
