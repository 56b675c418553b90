package actions

import (
	"slices"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
)

// FlavoursOf names the flavours whose permissions a cluster needs, from what
// calico.Detect found: the pool API chosen, and the operator's when its
// Installation API is served (actions.Bind then gives the pool actions the
// operator path).
func FlavoursOf(det calico.Detection) []decl.Flavour {
	out := []decl.Flavour{decl.FlavourCRD}
	if det.Flavour == calico.FlavourV3 {
		out[0] = decl.FlavourV3
	}
	if det.Operator {
		out = append(out, decl.FlavourOperator)
	}
	return out
}

// poolPerms are verbs on IP pools, in the API the cluster's pool flavour reads
// and writes them through (internal/calico poolAPIOf): crd.projectcalico.org/v1,
// or projectcalico.org/v3 where it is served. Never both on one cluster.
func poolPerms(verbs []string, why string) []decl.Permission {
	return []decl.Permission{
		{Flavour: decl.FlavourCRD, Group: "crd.projectcalico.org", Resource: "ippools", Verbs: verbs, Why: why},
		{Flavour: decl.FlavourV3, Group: "projectcalico.org", Resource: "ippools", Verbs: verbs, Why: why + ", through projectcalico.org/v3"},
	}
}

// operatorNeeds are what the pool actions' operator path (actions/pool_operator.go)
// reads and writes on an operator install: pools listed in Installation default
// are changed through its list, only while the operator would apply the change.
var operatorNeeds = []decl.Permission{
	{Flavour: decl.FlavourOperator, Group: "operator.tigera.io", Resource: "installations", Names: []string{calico.InstallationName}, Verbs: []string{"get", "update"},
		Why: "operator-managed pools are changed through Installation default spec.calicoNetwork.ipPools, one update under a resourceVersion precondition (internal/calico/operator.go Installation, Update)"},
	{Flavour: decl.FlavourOperator, Group: "operator.tigera.io", Resource: "apiservers", Names: []string{calico.InstallationName}, Verbs: []string{"get"},
		Why: "the operator changes pools only while APIServer default is Ready (internal/calico/operator.go NotReady)"},
	{Flavour: decl.FlavourOperator, Group: "apiregistration.k8s.io", Resource: "apiservices", Names: []string{"v3.projectcalico.org"}, Verbs: []string{"get"},
		Why: "the operator writes pools only through the Calico API server, and never clears APIServer Ready: an outage shows on the APIService (internal/calico/operator.go NotReady)"},
	{Flavour: decl.FlavourOperator, Group: "operator.tigera.io", Resource: "tigerastatuses", Names: []string{"apiserver", "ippools"}, Verbs: []string{"get"},
		Why: "a Degraded apiserver or pool controller says why the operator is not applying pool changes (internal/calico/operator.go NotReady)"},
	{Flavour: decl.FlavourOperator, Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Names: []string{"installations.operator.tigera.io"}, Verbs: []string{"get"},
		Why: "whether this operator's Installation has ipPools[].disableNewAllocations, else pools are disabled by nodeSelector (internal/calico/operator.go SupportsDisableNewAllocations)"},
}

// The run lock: one Lease per cluster (its Calico IPAM), in a fixed namespace
// whatever -n, --state or the environment say (engine.Lock, cmd/runbook).
const (
	LockNamespace = "runbook-system"
	LockName      = "runbook-lock-calico-ipam"
)

// FrameNeeds are what the tool needs around the actions, by command.
var FrameNeeds = struct {
	// Bind: connecting the actions and guard functions to a cluster (plan, apply,
	// rollback) starts the Calico inventory's informers.
	Bind []decl.Permission
	// Plan reads the journal to see whether a run would be resumed.
	Plan []decl.Permission
	// Run: apply and rollback keep the journal, hold the lock and emit Events.
	Run []decl.Permission
	// Runs: status, history and approve read (approve updates) the journals.
	Runs []decl.Permission
	// Unlock breaks the lock.
	Unlock []decl.Permission
}{
	Bind: slices.Concat(poolPerms([]string{"list", "watch"}, "the pool inventory behind the guard functions (internal/calico/crd_cache.go)"), []decl.Permission{
		// Which server serves projectcalico.org/v3: a Calico API server, or native
		// v3 CRDs whose finalizer deletePool waits for.
		{Flavour: decl.FlavourV3, Group: "apiregistration.k8s.io", Resource: "apiservices", Names: []string{"v3.projectcalico.org"}, Verbs: []string{"get"},
			Why: "what serves projectcalico.org/v3, the Calico API server or native CRDs (internal/calico/detect.go Detect)"},
		{Group: "crd.projectcalico.org", Resource: "ipamblocks", Verbs: []string{"list", "watch"}, Why: "the allocation inventory behind allocations() (internal/calico/crd_cache.go)"},
		{Group: "crd.projectcalico.org", Resource: "blockaffinities", Verbs: []string{"list", "watch"}, Why: "the block affinities of the inventory (internal/calico/crd_cache.go)"},
		{Resource: "pods", Verbs: []string{"list", "watch"}, Why: "podsInPool() and the pod addresses of the inventory (internal/calico/crd_cache.go)"},
		{Resource: "nodes", Verbs: []string{"list", "watch"}, Why: "tunnel addresses of the inventory (internal/calico/crd_cache.go)"},
		{Resource: "configmaps", Namespace: "kube-system", Verbs: []string{"list", "watch"}, Why: "the cluster pod CIDR from kubeadm-config, kube-proxy, calico-config (internal/calico/crd_cache.go)"},
		// The preflight checks run by plan and apply (internal/preflight); a read they
		// are refused becomes a warning finding, not a failure.
		{Resource: "pods", Verbs: []string{"list"}, Why: "pool pins in pod annotations (internal/preflight/checks_pins.go)"},
		{Resource: "namespaces", Verbs: []string{"list"}, Why: "pool pins in namespace annotations (internal/preflight/checks_pins.go)"},
		{Resource: "configmaps", Namespace: "kube-system", Verbs: []string{"get"}, Why: "calico-config: IPAM type, CNI pool pins, BGP backend (internal/preflight/checks_install.go)"},
		{Group: "networking.k8s.io", Resource: "networkpolicies", Verbs: []string{"list"}, Why: "ipBlocks naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "networkpolicies", Verbs: []string{"list"}, Why: "rule nets naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "globalnetworkpolicies", Verbs: []string{"list"}, Why: "rule nets naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "networksets", Verbs: []string{"list"}, Why: "nets naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "globalnetworksets", Verbs: []string{"list"}, Why: "nets naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "bgpfilters", Verbs: []string{"list"}, Why: "filter rules naming the old CIDR (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "ipreservations", Verbs: []string{"list"}, Why: "reserved CIDRs inside the old pool (internal/preflight/checks_refs.go)"},
		{Group: "crd.projectcalico.org", Resource: "bgppeers", Verbs: []string{"list"}, Why: "whether BGP is in use, for the new pool's disableBGPExport (internal/preflight/checks_pools.go)"},
		{Group: "crd.projectcalico.org", Resource: "ipamhandles", Verbs: []string{"list"}, Why: "handles without allocations in the IPAM health report (internal/preflight/health.go)"},
		// Listed on every cluster: a list the API server does not serve is a 404
		// the check tolerates, a forbidden one a warning finding.
		{Group: "operator.tigera.io", Resource: "installations", Verbs: []string{"list"}, Why: "the operator's IPAM type and BGP setting (internal/preflight/checks_install.go)"},
	}),
	Plan: []decl.Permission{
		{Resource: "configmaps", Namespace: decl.JournalNamespace, Verbs: []string{"get"}, Why: "the run journal, to tell a resumed run (engine/store.go)"},
	},
	Run: []decl.Permission{
		{Resource: "namespaces", Verbs: []string{"get"}, Why: "whether the journal and lock namespaces exist (cmd/runbook ensureNamespace)"},
		{Resource: "configmaps", Namespace: decl.JournalNamespace, Verbs: []string{"get", "list", "create", "update"}, Why: "the run journal and its archive (engine/store.go)"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Verbs: []string{"create"}, Why: "the run lock, one per cluster (engine/lock.go)"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Names: []string{LockName}, Verbs: []string{"get", "update", "watch"}, Why: "the run lock: renewed, and watched so that a deleted lock stops the run at once (engine/lock.go; a watch selecting metadata.name is authorized by resourceName)"},
		{Resource: "events", Namespace: decl.JournalNamespace, Verbs: []string{"create"}, Why: "the Kubernetes Events of each step on the journal (cmd/runbook/kube_events.go)"},
	},
	Runs: []decl.Permission{
		{Resource: "configmaps", Namespace: decl.JournalNamespace, Verbs: []string{"get", "list", "update"}, Why: "status, history and approve read journals; approve records the approval (engine/approve.go)"},
	},
	Unlock: []decl.Permission{
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Names: []string{LockName}, Verbs: []string{"get", "delete"}, Why: "runbook unlock (engine/lock.go Unlock)"},
	},
}
