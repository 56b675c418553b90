// Package preflight finds, read-only and before anything changes, the known ways a
// Calico pool migration goes wrong: an install where Calico IPAM is not in use, a
// new pool outside the cluster CIDR, too small, or not covering the nodes whose
// pods must move, nodes losing their tunnel address, pods and namespaces pinned to
// the old pool, policies and sets that name the old CIDR, a new pool not exported
// over BGP, and IPAM state that is not healthy (leaked addresses, orphaned blocks).
//
// A check reports Findings. A finding of severity block makes `runbook plan` refuse
// (exit code refused) and `runbook apply` refuse before it writes anything; warn
// and info findings are shown and recorded.
//
// Where findings come from:
//
//   - Cluster-level checks, registered in this package and run once per plan or
//     apply over the steps still to run (Run). They learn which pools are old and
//     which are new from the pool roles the steps' actions declare and their
//     rendered `with:` (see Migration), so they need
//     no parameters of their own.
//   - Action-level findings, which an action's Planner returns in Planned.Findings
//     (actions package): what only that action knows.
//
// Adding a check is one line in an init function of this package:
//
//	func init() { Register(Check{ID: "rbac", Roles: nil, Run: checkRBAC}) }
//
// where checkRBAC is a func(context.Context, *Input) ([]Finding, error). Input
// gives the cluster (typed, dynamic and discovery clients, Calico's live reader),
// the steps, the Migration derived from them, and memoised lists shared by all
// checks (Input.Pods, Input.Namespaces, Input.ConfigMap, Input.List). Roles, when
// set, limits the check to runs in which a step still to run plays one of those
// roles on a pool (decl.PoolRole, declared by the actions; a check never knows
// action names): that is how a resumed run re-runs only the checks relevant to its
// remaining steps. A check that cannot read what it needs does not fail the plan:
// Run turns its error into a warn finding naming the check, so a missing RBAC
// permission on, say, BGPFilters is visible rather than fatal.
package preflight
