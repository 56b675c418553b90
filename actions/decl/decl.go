// Package decl holds what the runbook language knows of an action or a guard
// function: its declaration (parameters, outputs, permissions, inverse, the pools
// it acts on and how). It is plain data, so the language (runbooks, schema,
// validate) links no Kubernetes client: the behaviour behind a declaration lives
// in package actions, in the same file as the declaration.
package decl

import "github.com/runbookdev/runbook/internal/value"

// Param declares one key of an action's `with:` block.
type Param struct {
	Name string
	value.Spec
	// Pool, when set, says the parameter names an IP pool and what the step
	// does to it.
	Pool PoolRole
}

// Output declares one value an action publishes as steps.<id>.outputs.<name>.
type Output struct {
	Name        string
	Type        value.Type
	Description string
}

// Action is an action's declaration: what a step with `action: <Name>` takes,
// publishes, needs and does to the pools it names.
type Action struct {
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
	// cleanup) needs, on every Calico flavour (each Permission says which); an
	// action that calls no API declares an empty list, never nil. The preflight
	// checks those of the cluster's flavour before a run changes anything, and
	// deploy/rbac.yaml grants exactly the union over all flavours with the
	// frame's needs (actions.FrameNeeds; a test keeps the two in step).
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

// JournalNamespace stands for the namespace of the run journal (-n).
const JournalNamespace = "$journal"

// PoolRole says what a step does to the pool one of its parameters names. The
// planner and preflight read roles, never action names: a new pool action takes
// part in their checks by declaring its roles.
type PoolRole string

const (
	// PoolCreates: the step creates (or converges) the pool; its other
	// parameters are the pool's spec in ensurePool's shape (cidr, ipipMode,
	// vxlanMode, natOutgoing, blockSize, nodeSelector, allowedUses,
	// disableBGPExport, disabled, clusterCIDR).
	PoolCreates PoolRole = "creates"
	// PoolDisables: the step stops new allocations from the pool.
	PoolDisables PoolRole = "disables"
	// PoolMovesPodsFrom: the step recreates the pods holding addresses of the
	// pool, so they leave it.
	PoolMovesPodsFrom PoolRole = "movesPodsFrom"
	// PoolMovesPodsTo: the pool the moved pods must land in.
	PoolMovesPodsTo PoolRole = "movesPodsTo"
	// PoolMovesTunnelsFrom: the step moves the nodes' tunnel addresses out of
	// the pool.
	PoolMovesTunnelsFrom PoolRole = "movesTunnelsFrom"
	// PoolVerifies: the step proves new pods get addresses from the pool.
	PoolVerifies PoolRole = "verifies"
	// PoolDeletes: the step deletes the pool.
	PoolDeletes PoolRole = "deletes"
	// PoolReleasesLeaks: the step frees addresses of the pool no owner holds.
	PoolReleasesLeaks PoolRole = "releasesLeaks"
)

// PoolRoles lists every role, for tests and docs.
var PoolRoles = []PoolRole{PoolCreates, PoolDisables, PoolMovesPodsFrom, PoolMovesPodsTo, PoolMovesTunnelsFrom, PoolVerifies, PoolDeletes, PoolReleasesLeaks}

// Describe says in a reader's words what a step with this role does to the
// pool (runbook explain prints it).
func (r PoolRole) Describe() string {
	switch r {
	case PoolCreates:
		return "creates the pool, or converges it to the step's spec"
	case PoolDisables:
		return "stops new allocations from the pool"
	case PoolMovesPodsFrom:
		return "recreates the pods holding addresses of the pool, so they leave it"
	case PoolMovesPodsTo:
		return "the pool the moved pods must land in"
	case PoolMovesTunnelsFrom:
		return "moves the nodes' tunnel addresses out of the pool"
	case PoolVerifies:
		return "proves new pods get addresses from the pool"
	case PoolDeletes:
		return "deletes the pool"
	case PoolReleasesLeaks:
		return "frees addresses of the pool that no pod holds"
	}
	return string(r)
}

// Leaves reports whether a step with this role moves the migration away from
// the pool (the pool is an "old" pool).
func (r PoolRole) Leaves() bool {
	switch r {
	case PoolDisables, PoolMovesPodsFrom, PoolMovesTunnelsFrom, PoolDeletes:
		return true
	}
	return false
}

// Enters reports whether a step with this role moves the migration to the pool
// (the pool is a "new" pool).
func (r PoolRole) Enters() bool {
	switch r {
	case PoolCreates, PoolMovesPodsTo, PoolVerifies:
		return true
	}
	return false
}

// PoolParam is a parameter naming a pool, with the role the step plays on it.
type PoolParam struct {
	Param string
	Role  PoolRole
}

// PoolParams lists the parameters that name pools, in declaration order.
func (d *Action) PoolParams() []PoolParam {
	var out []PoolParam
	for _, p := range d.Params {
		if p.Pool != "" {
			out = append(out, PoolParam{Param: p.Name, Role: p.Pool})
		}
	}
	return out
}

// Param returns the declared parameter called name.
func (d *Action) Param(name string) (Param, bool) {
	for _, p := range d.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ParamNames lists the parameter names in declaration order.
func (d *Action) ParamNames() []string {
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return names
}
