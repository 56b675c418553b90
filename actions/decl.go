// Package actions holds what a runbook step can do. Each action declares itself once
// (parameters, outputs, whether it is a point of no return, what its inverse does) and
// that declaration is the single source of truth for validation, the JSON Schema,
// `runbook actions` and `runbook explain`. Behaviour lives beside the declaration, one
// file per action.
package actions

import (
	"slices"
	"sort"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/value"
)

// Param declares one key of an action's `with:` block.
type Param struct {
	Name string
	value.Spec
}

// Output declares one value an action publishes as steps.<id>.outputs.<name>.
type Output struct {
	Name        string
	Type        value.Type
	Description string
}

// Decl is an action's declaration.
type Decl struct {
	Name    string
	Summary string // one line, shown by `runbook actions`
	// Description explains behaviour, idempotency (when the action is satisfied,
	// including for absent objects) and safety checks; shown by `runbook explain`.
	Description string
	Params      []Param
	Outputs     []Output
	// PointOfNoReturn marks destructive actions: rollback never crosses them and a TTY
	// run asks for confirmation first.
	PointOfNoReturn bool
	// Inverse describes what `rollback: auto` does; empty means the action has none.
	Inverse string
	// Needs are the API permissions the action (its plan, apply, inverse and
	// cleanup) needs, on every Calico flavour (each Permission says which), set
	// from actionNeeds when the action is registered. The preflight checks those
	// of the cluster's flavour before a run changes anything, and deploy/rbac.yaml
	// grants exactly the union over all flavours with the frame's needs below (a
	// test keeps the two in step).
	Needs []Permission
}

// Permission is one set of API verbs on one resource.
type Permission struct {
	Group    string // "" for the core group
	Resource string // plural, with the subresource if any: "pods/eviction"
	Verbs    []string
	// Names restricts it to these objects (RBAC resourceNames), for calls that
	// name the object they read or write; empty means every object. Only with
	// verbs that act on one named object (get, update, patch, delete): RBAC
	// cannot restrict list, watch or create by name.
	Names []string
	// Namespace scopes it: "" cluster-wide (every namespace for namespaced
	// resources), a fixed name such as kube-system, or JournalNamespace.
	Namespace string
	// Flavour is the Calico install whose code path makes the call; "" for every
	// cluster. The preflight asks only about the flavours FlavoursOf the cluster,
	// so a manifest install is never asked about projectcalico.org.
	Flavour Flavour
	Why     string // the code path that needs it, named when it is missing
}

// Flavour names a kind of Calico install whose code paths make API calls the
// others do not.
type Flavour string

const (
	// AllFlavours: the call is made on every cluster.
	AllFlavours Flavour = ""
	// FlavourCRD: pools read and written through crd.projectcalico.org/v1 (a
	// manifest install, or --calico-api crd).
	FlavourCRD Flavour = "crd"
	// FlavourV3: pools read and written through projectcalico.org/v3 (the Calico
	// API server or native v3 CRDs); IPAM stays crd.projectcalico.org/v1.
	FlavourV3 Flavour = "v3"
	// FlavourOperator: the tigera-operator's Installation API is served; the pool
	// actions read it and change operator-managed pools through it, whatever the
	// pool API.
	FlavourOperator Flavour = "operator"
)

// Flavours lists every flavour a Permission may name.
var Flavours = []Flavour{FlavourCRD, FlavourV3, FlavourOperator}

// FlavoursOf names the flavours whose permissions a cluster needs, from what
// calico.Detect found: the pool API chosen, and the operator's when its
// Installation API is served (actions.Bind then gives the pool actions the
// operator path).
func FlavoursOf(det calico.Detection) []Flavour {
	out := []Flavour{FlavourCRD}
	if det.Flavour == calico.FlavourV3 {
		out[0] = FlavourV3
	}
	if det.Operator {
		out = append(out, FlavourOperator)
	}
	return out
}

// poolPerms are verbs on IP pools, in the API the cluster's pool flavour reads
// and writes them through (internal/calico poolAPIOf): crd.projectcalico.org/v1,
// or projectcalico.org/v3 where it is served. Never both on one cluster.
func poolPerms(verbs []string, why string) []Permission {
	return []Permission{
		{Flavour: FlavourCRD, Group: "crd.projectcalico.org", Resource: "ippools", Verbs: verbs, Why: why},
		{Flavour: FlavourV3, Group: "projectcalico.org", Resource: "ippools", Verbs: verbs, Why: why + ", through projectcalico.org/v3"},
	}
}

// operatorNeeds are what the pool actions' operator path (actions/pool_operator.go)
// reads and writes on an operator install: pools listed in Installation default
// are changed through its list, only while the operator would apply the change.
var operatorNeeds = []Permission{
	{Flavour: FlavourOperator, Group: "operator.tigera.io", Resource: "installations", Names: []string{calico.InstallationName}, Verbs: []string{"get", "update"},
		Why: "operator-managed pools are changed through Installation default spec.calicoNetwork.ipPools, one update under a resourceVersion precondition (internal/calico/operator.go Installation, Update)"},
	{Flavour: FlavourOperator, Group: "operator.tigera.io", Resource: "apiservers", Names: []string{calico.InstallationName}, Verbs: []string{"get"},
		Why: "the operator changes pools only while APIServer default is Ready (internal/calico/operator.go NotReady)"},
	{Flavour: FlavourOperator, Group: "apiregistration.k8s.io", Resource: "apiservices", Names: []string{"v3.projectcalico.org"}, Verbs: []string{"get"},
		Why: "the operator writes pools only through the Calico API server, and never clears APIServer Ready: an outage shows on the APIService (internal/calico/operator.go NotReady)"},
	{Flavour: FlavourOperator, Group: "operator.tigera.io", Resource: "tigerastatuses", Names: []string{"apiserver", "ippools"}, Verbs: []string{"get"},
		Why: "a Degraded apiserver or pool controller says why the operator is not applying pool changes (internal/calico/operator.go NotReady)"},
	{Flavour: FlavourOperator, Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Names: []string{"installations.operator.tigera.io"}, Verbs: []string{"get"},
		Why: "whether this operator's Installation has ipPools[].disableNewAllocations, else pools are disabled by nodeSelector (internal/calico/operator.go SupportsDisableNewAllocations)"},
}

// JournalNamespace stands for the namespace of the run journal (-n).
const JournalNamespace = "$journal"

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
	Bind []Permission
	// Plan reads the journal to see whether a run would be resumed.
	Plan []Permission
	// Run: apply and rollback keep the journal, hold the lock and emit Events.
	Run []Permission
	// Runs: status, history and approve read (approve updates) the journals.
	Runs []Permission
	// Unlock breaks the lock.
	Unlock []Permission
}{
	Bind: slices.Concat(poolPerms([]string{"list", "watch"}, "the pool inventory behind the guard functions (internal/calico/crd_cache.go)"), []Permission{
		// Which server serves projectcalico.org/v3: a Calico API server, or native
		// v3 CRDs whose finalizer deletePool waits for.
		{Flavour: FlavourV3, Group: "apiregistration.k8s.io", Resource: "apiservices", Names: []string{"v3.projectcalico.org"}, Verbs: []string{"get"},
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
	Plan: []Permission{
		{Resource: "configmaps", Namespace: JournalNamespace, Verbs: []string{"get"}, Why: "the run journal, to tell a resumed run (engine/store.go)"},
	},
	Run: []Permission{
		{Resource: "namespaces", Verbs: []string{"get"}, Why: "whether the journal and lock namespaces exist (cmd/runbook ensureNamespace)"},
		{Resource: "configmaps", Namespace: JournalNamespace, Verbs: []string{"get", "list", "create", "update"}, Why: "the run journal and its archive (engine/store.go)"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Verbs: []string{"create"}, Why: "the run lock, one per cluster (engine/lock.go)"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Names: []string{LockName}, Verbs: []string{"get", "update", "watch"}, Why: "the run lock: renewed, and watched so that a deleted lock stops the run at once (engine/lock.go; a watch selecting metadata.name is authorized by resourceName)"},
		{Resource: "events", Namespace: JournalNamespace, Verbs: []string{"create"}, Why: "the Kubernetes Events of each step on the journal (cmd/runbook/kube_events.go)"},
	},
	Runs: []Permission{
		{Resource: "configmaps", Namespace: JournalNamespace, Verbs: []string{"get", "list", "update"}, Why: "status, history and approve read journals; approve records the approval (engine/approve.go)"},
	},
	Unlock: []Permission{
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: LockNamespace, Names: []string{LockName}, Verbs: []string{"get", "delete"}, Why: "runbook unlock (engine/lock.go Unlock)"},
	},
}

// actionNeeds declares each built-in action's permissions; registering an action
// without an entry here is a programming error (a test checks every action).
var actionNeeds = map[string][]Permission{
	"pause": nil,
	"ensurePool": slices.Concat(
		poolPerms([]string{"get", "create", "patch", "delete"}, "create or converge the pool; the inverse deletes the pool this run created (internal/calico/crd_write.go, crd_delete.go)"),
		[]Permission{{Resource: "configmaps", Namespace: "kube-system", Verbs: []string{"get"}, Why: "the cluster pod CIDR the pool must lie in (internal/calico/crd_live.go)"}},
		operatorNeeds),
	"disablePool": slices.Concat(
		poolPerms([]string{"patch"}, "set spec.disabled; the inverse re-enables (internal/calico/crd_write.go)"),
		operatorNeeds),
	"deletePodsInPool": {
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
	"moveTunnelAddresses": slices.Concat(
		poolPerms([]string{"list"}, "the pool and the pools that take the addresses (internal/calico/crd_live.go)"),
		[]Permission{
			{Resource: "nodes", Verbs: []string{"list", "watch"}, Why: "the nodes' tunnel addresses, watched while calico-node restarts (internal/tunnelmove)"},
			{Resource: "pods", Verbs: []string{"list", "watch", "delete"}, Why: "restart calico-node: delete its pod on one node, watch the replacement (internal/tunnelmove)"},
		}),
	"assertNewAllocations": {
		{Resource: "namespaces", Verbs: []string{"get", "list", "watch", "create", "delete"}, Why: "the verification namespace, created and deleted (actions/probe_namespace.go)"},
		{Resource: "pods", Verbs: []string{"get", "create"}, Why: "the test pods (actions/assert_new_allocations.go, probe_wait.go)"},
		{Resource: "events", Verbs: []string{"list"}, Why: "why a test pod did not start (actions/probe_wait.go)"},
	},
	"releaseLeakedAddresses": {
		{Group: "crd.projectcalico.org", Resource: "ipamblocks", Verbs: []string{"list", "patch"}, Why: "free a leaked address in its block, with a resourceVersion precondition (actions/release_leaked.go)"},
		{Group: "crd.projectcalico.org", Resource: "ipamhandles", Verbs: []string{"get", "patch", "delete"}, Why: "decrement the released address's handle (actions/release_leaked.go)"},
		{Resource: "pods", Verbs: []string{"get", "list"}, Why: "re-check that the owner is gone and no pod holds the address (actions/release_leaked.go)"},
	},
	"deletePool": slices.Concat(
		// patch: DeletePool disables a pool that is still enabled before it
		// releases the blocks (a runbook need not run disablePool first).
		poolPerms([]string{"get", "patch", "delete"}, "disable and delete the pool (internal/calico/crd_delete.go)"),
		[]Permission{
			{Group: "crd.projectcalico.org", Resource: "ipamblocks", Verbs: []string{"get", "patch", "delete"}, Why: "release the pool's empty blocks as calicoctl does (internal/calico/crd_delete.go)"},
			{Group: "crd.projectcalico.org", Resource: "blockaffinities", Verbs: []string{"get", "patch", "delete"}, Why: "release the empty blocks' affinities (internal/calico/crd_delete.go)"},
		},
		operatorNeeds),
}

// Param returns the declared parameter called name.
func (d *Decl) Param(name string) (Param, bool) {
	for _, p := range d.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamNames lists the parameter names in declaration order.
func (d *Decl) ParamNames() []string {
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return names
}

// Registry is the set of known actions and guard functions.
type Registry struct {
	decls map[string]*Decl
	funcs map[string]*Func
}

// NewRegistry returns an empty registry; tests build their own, the CLI uses Default.
func NewRegistry() *Registry {
	return &Registry{decls: map[string]*Decl{}, funcs: map[string]*Func{}}
}

// Add registers an action declaration; a duplicate name is a programming error.
func (r *Registry) Add(d *Decl) {
	if _, dup := r.decls[d.Name]; dup {
		panic("actions: duplicate action " + d.Name)
	}
	if d.Needs == nil {
		d.Needs = actionNeeds[d.Name]
	}
	r.decls[d.Name] = d
}

// AddFunc registers a guard function.
func (r *Registry) AddFunc(f *Func) {
	if _, dup := r.funcs[f.Name]; dup {
		panic("actions: duplicate function " + f.Name)
	}
	r.funcs[f.Name] = f
}

// Action returns the declaration of the action called name.
func (r *Registry) Action(name string) (*Decl, bool) {
	d, ok := r.decls[name]
	return d, ok
}

// Actions lists all declarations sorted by name.
func (r *Registry) Actions() []*Decl {
	out := make([]*Decl, 0, len(r.decls))
	for _, d := range r.decls {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Funcs lists all guard functions sorted by name.
func (r *Registry) Funcs() []*Func {
	out := make([]*Func, 0, len(r.funcs))
	for _, f := range r.funcs {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Default is the registry of the built-in actions and functions.
var Default = func() *Registry {
	r := NewRegistry()
	for _, d := range builtinDecls() {
		r.Add(d)
	}
	for _, f := range builtinFuncs() {
		r.AddFunc(f)
	}
	return r
}()

func builtinDecls() []*Decl {
	return []*Decl{ensurePoolDecl, disablePoolDecl, deletePodsInPoolDecl, moveTunnelAddressesDecl, assertNewAllocationsDecl, releaseLeakedAddressesDecl, deletePoolDecl, pauseDecl}
}

// checked gives a declared parameter a value rule beyond its type
// (internal/value/check): value.Spec.Resolve then refuses a value that breaks it
// wherever the value becomes known (a literal at validate, a param bound from
// -f/--set before plan or apply touch the cluster, a template when its step runs).
func checked(pr Param, rule value.Check) Param {
	pr.Check = rule
	return pr
}

// p is shorthand for declaring parameters compactly in the action files.
func p(name string, t value.Type, required bool, def any, desc string, enum ...any) Param {
	return Param{Name: name, Spec: value.Spec{Type: t, Required: required, Default: def, Enum: enum, Description: desc}}
}
