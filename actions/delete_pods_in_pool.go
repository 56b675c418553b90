package actions

import (
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/podmove"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var deletePodsInPool = Definition{
	Decl: &decl.Action{
		Name:    "deletePodsInPool",
		Summary: "Recreate every pod whose IP is in a pool so its controller reschedules it onto another pool.",
		Description: `Selects pods whose status.podIPs fall in the pool (both families; hostNetwork pods ignored),
cluster-wide or by namespace/label selector, and moves them owner by owner within each owner's
disruption budget. Evictions (policy/v1) are sent only when the PodDisruptionBudget has room:
its status (disruptionsAllowed, the unhealthy-pod policy) is watched, together with the step's own
evictions the status does not show yet, instead of retrying 429s blindly. Not-Ready pods go first
(they cost no budget, so a crashlooping pod never holds up the healthy ones); owners without a PDB
lose at most maxUnavailable Ready pods at a time. Pods backing admission webhooks (failurePolicy
Fail) and APIServices move first, one at a time, each Ready again before the next.

A pod counts as replaced when its owner is back to its desired Ready count in a target pool
(Deployment/ReplicaSet), when a pod of the same name with a new UID is Ready in a target pool
(StatefulSet), or when the (DaemonSet, node) pod is Ready in a target pool. A target pool is
targetPool, or any other enabled pool of the same family. Pods are re-listed from a watch until
none holds an address in the pool (pods created before the step but addressed late are caught
too); terminating pods are waited for. A pod created after the step began that gets an address in
the old pool (re-enabled, or pinned by an annotation) or outside the target pools fails the step
at once, with the list.

Satisfied (unchanged) when no pod in scope is in the pool, or the pool does not exist. Progress
lives in the cluster: a resumed step re-observes what is left and evicts nothing twice.

Refused up front, naming every pod: bare and orphaned pods (unless unmanagedPods), static pods
(deleting a mirror pod restarts nothing: skip them or restart them on their node), pods with
emptyDir data (unless allowLocalData), pods covered by several PDBs (the eviction API can never
evict them), pods under a PDB that can never allow an eviction as the workload stands, owners a
rollout restart would not recreate (paused Deployments, StatefulSets with a partition or
OnDelete, DaemonSets with OnDelete), an old pool still enabled, and no target pool. Job pods are
never evicted: the step waits for them (jobs: wait) or leaves them (jobs: skip).

rolloutRestart patches the pod template like kubectl rollout restart and waits for the rollout:
it bypasses PDBs (the owner's own rolling update decides) and shows as drift in GitOps tools.
singleReplica: rolloutRestart uses it only for single-replica Deployments, which then surge
instead of going down while their only pod restarts. The step's API client uses the CLI's
--kube-qps/--kube-burst.`,
		Params: []decl.Param{
			poolRole(checked(p("pool", value.String, true, nil, "Name of the pool to empty."), check.PoolName), decl.PoolMovesPodsFrom),
			poolRole(checked(p("targetPool", value.String, false, nil, "Pool the pods must land in; default: any enabled pool of the same family other than this one."), check.Optional(check.PoolName)), decl.PoolMovesPodsTo),
			checked(p("namespace", value.String, false, nil, "Only pods in this namespace."), check.Optional(check.NamespaceName)),
			checked(p("selector", value.String, false, nil, "Only pods matching this label selector."), check.LabelSelector),
			p("strategy", value.String, false, "evict", "How to recreate pods.", "evict", "delete", "rolloutRestart"),
			p("singleReplica", value.String, false, "evict", "How to move single-replica Deployments: like the rest, or by a rollout restart that surges.", "evict", "rolloutRestart"),
			checked(p("maxUnavailable", value.Int, false, podmove.DefaultMaxUnavailable, "Ready pods of one owner moved at a time when no PDB covers it."), check.AtLeast(1)),
			checked(p("concurrency", value.Int, false, podmove.DefaultConcurrency, "Pods in flight cluster-wide (evicted and not yet Ready again); budgets usually bind first."), check.AtLeast(1)),
			checked(p("perNodeConcurrency", value.Int, false, podmove.DefaultPerNodeConcurrency, "Pods moving on one node at a time, leaving it or arriving and waiting for an address (its CNI handles one pod at a time)."), check.AtLeast(1)),
			p("unmanagedPods", value.String, false, "refuse", "What to do with bare, orphaned and static pods.", "refuse", "delete", "skip"),
			p("jobs", value.String, false, "wait", "Pods of Jobs are never evicted: wait for them to finish, or skip them.", "wait", "skip"),
			p("allowLocalData", value.Bool, false, false, "Allow moving pods that use emptyDir volumes (their data is lost)."),
			p("timeout", value.Duration, false, podmove.DefaultTimeout, "Give up (and fail the step, naming what blocks it) after this long."),
		},
		Outputs: []decl.Output{
			{Name: "moved", Type: value.Int, Description: "Pods evicted or deleted by this invocation of the step."},
			{Name: "skipped", Type: value.List, Description: "Pods left in place (namespace/name), by unmanagedPods or jobs: skip."},
		},
		Needs: []decl.Permission{
			{Resource: "pods", Verbs: []string{"delete"}, Why: "bare pods and strategy: delete (internal/podmove/api.go)"},
			{Resource: "pods/eviction", Verbs: []string{"create"}, Why: "PDB-aware evictions (internal/podmove/api.go)"},
			{Resource: "namespaces", Verbs: []string{"list", "watch"}, Why: "terminating namespaces are skipped (internal/podmove/cache.go)"},
			{Resource: "events", Verbs: []string{"list"}, Why: "why a pod does not come back: its latest Warning event (internal/podmove/api.go)"},
			{Resource: "services", Verbs: []string{"get"}, Why: "the pods behind admission webhooks and APIServices move first (internal/podmove/critical.go)"},
			{Group: "policy", Resource: "poddisruptionbudgets", Verbs: []string{"list", "watch"}, Why: "evict only when the budget has room (internal/podmove/cache.go)"},
			{Group: "apps", Resource: "replicasets", Verbs: []string{"list", "watch"}, Why: "replacements are judged per owner (internal/podmove/cache.go)"},
			{Group: "apps", Resource: "deployments", Verbs: []string{"list", "watch", "patch"}, Why: "owners' ready counts; singleReplica: rolloutRestart (internal/podmove)"},
			{Group: "apps", Resource: "statefulsets", Verbs: []string{"list", "watch", "patch"}, Why: "owners' ready counts; singleReplica: rolloutRestart (internal/podmove)"},
			{Group: "apps", Resource: "daemonsets", Verbs: []string{"list", "watch", "patch"}, Why: "owners' ready counts; singleReplica: rolloutRestart (internal/podmove)"},
			{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Verbs: []string{"list"}, Why: "pods backing webhooks move first, one at a time (internal/podmove/critical.go)"},
			{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verbs: []string{"list"}, Why: "pods backing webhooks move first, one at a time (internal/podmove/critical.go)"},
			{Group: "apiregistration.k8s.io", Resource: "apiservices", Verbs: []string{"list"}, Why: "pods backing APIServices move first, one at a time (internal/podmove/critical.go)"},
		},
	},
	New: func(b *binding) Impl { return newDeletePodsInPool(b.ctx, b.env, b.cluster) },
}
