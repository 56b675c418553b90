// Package podmove moves every pod off a Calico IP pool without disruption: it is the
// machinery behind the deletePodsInPool action.
//
// The design follows kubectl drain (k8s.io/kubectl/pkg/drain) — small pure filters
// that say "move or not, and why", eviction through policy/v1, aggregated errors —
// and differs where drain is slow or blind:
//
//   - Everything is read from shared informers: pods, PodDisruptionBudgets and the
//     workload controllers are watched, never polled, so a pod costs one API request
//     (its eviction) and deciding again after every change costs none.
//   - A pod is evicted only when its budget has room. The step mirrors the eviction
//     API's own arithmetic (status.disruptionsAllowed, the unhealthy-pod policy,
//     Pending pods that ignore budgets) and counts its own evictions the status does
//     not show yet, so it does not hammer the API server with 429s the way a
//     fixed-delay retry loop does, and it never asks twice for the same disruption.
//   - Unhealthy pods go first (they cost no budget), so a crashlooping pod never
//     holds up the healthy ones; owners without a budget lose at most maxUnavailable
//     Ready pods at a time.
//   - A move is finished when the owner is back: for a Deployment/ReplicaSet its Ready
//     pods in a target pool reach the desired count, for a StatefulSet the pod of the
//     same name with a new UID is Ready in a target pool, for a DaemonSet the pod on
//     the same node is. Replacements that land in the old pool again (re-enabled,
//     pinned by an annotation) or outside the target pools fail the step with the
//     list, at once.
//
// Progress lives in the cluster: a resumed step re-observes which pods still hold an
// address in the pool and carries on; nothing per pod is written to the run journal.
//
// The pure parts (which pod may go next, budget arithmetic, replaced-ness, the
// filters) take plain values and are unit-tested without a cluster; Mover wires them
// to informers and the API.
package podmove
