package actions

import (
	"time"

	"github.com/runbookdev/runbook/internal/value"
)

var deletePodsInPoolDecl = &Decl{
	Name:    "deletePodsInPool",
	Summary: "Recreate every pod whose IP is in a pool so its controller reschedules it onto another pool.",
	Description: `Selects pods whose status.podIPs fall in the pool (both families; hostNetwork pods ignored),
cluster-wide or by namespace/label selector, and moves them owner by owner within each owner's
disruption budget: PodDisruptionBudgets are watched (status.disruptionsAllowed) rather than
retried blindly, unhealthy pods go first, owners without a PDB lose at most maxUnavailable pods
at a time. A pod counts as replaced when its owner is back to its desired Ready count in a target
pool (Deployment/ReplicaSet), when a pod of the same name with a new UID is Ready in a target pool
(StatefulSet), or when the (DaemonSet, node) pod is Ready in a target pool. The set is listed
again until no pod of the pool remains. Satisfied when no pod is in the pool.

Refused up front: bare and static/mirror pods (unless unmanagedPods says otherwise), pods with
emptyDir data (unless allowLocalData), pods covered by several PDBs (they can never be evicted).`,
	Params: []Param{
		p("pool", value.String, true, nil, "Name of the pool to empty."),
		p("targetPool", value.String, false, nil, "Pool the pods must land in; default: any enabled pool other than this one."),
		p("namespace", value.String, false, nil, "Only pods in this namespace."),
		p("selector", value.String, false, nil, "Only pods matching this label selector."),
		p("strategy", value.String, false, "evict", "How to recreate pods.", "evict", "delete", "rolloutRestart"),
		p("maxUnavailable", value.Int, false, 1, "Pods of one owner moved at a time when no PDB covers it."),
		p("concurrency", value.Int, false, 50, "Pods moved at a time, cluster-wide."),
		p("perNodeConcurrency", value.Int, false, 10, "Pods moved at a time on one node (the CNI serialises IPAM per node)."),
		p("unmanagedPods", value.String, false, "refuse", "What to do with bare and static pods.", "refuse", "delete", "skip"),
		p("jobs", value.String, false, "wait", "Pods of Jobs are never evicted: wait for them to finish, or skip them.", "wait", "skip"),
		p("allowLocalData", value.Bool, false, false, "Allow moving pods that use emptyDir volumes (their data is lost)."),
		p("timeout", value.Duration, false, 30*time.Minute, "Give up (and fail the step) after this long."),
	},
	Outputs: []Output{
		{Name: "moved", Type: value.Int, Description: "Pods recreated by this step."},
		{Name: "skipped", Type: value.List, Description: "Pods left in place (namespace/name), by unmanagedPods or jobs: skip."},
	},
}
