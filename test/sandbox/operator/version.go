package operator

// Version is a tigera-operator release the stand-in models. Everything else in
// this package is shared by the releases: at v1.34.13 and v1.40.0 the pool
// controller (pkg/controller/ippool/pool_controller.go:144-394), the defaulting
// and validation of pools (defaults.go, validation.go), the apiserver
// controller's readiness (pkg/controller/apiserver/apiserver_controller.go
// l.505-513) and the status manager's Deployment check
// (pkg/controller/status/status.go:478-505) differ only where a field says so.
type Version struct {
	// Name is the release tag (and the tigera-operator image tag).
	Name string
	// Calico is the Calico release that ships this operator
	// (config/calico_versions.yml).
	Calico string
	// DisableNewAllocations: Installation ipPools[] has disableNewAllocations,
	// mapped to the pool's spec.disabled by ToProjectCalicoV1 and back by
	// FromProjectCalicoV1, which then also reports natOutgoing false as
	// "Disabled" instead of "". All three came with tigera/operator commit
	// 6eeefb15 (PR #3472), first released in v1.36.0. Before it
	// (api/v1/installation_types.go:680-777 at v1.34.13) the field does not exist
	// (the CRD prunes it), spec.disabled is never written — so a direct
	// `disabled: true` on a managed pool is reverted by the next update — and an
	// unlabelled pool with natOutgoing false never equals a defaulted entry
	// (NATOutgoing "Disabled"), so it is never adopted.
	DisableNewAllocations bool
	// LoadBalancerUse: ValidatePools knows the LoadBalancer allowed use and its
	// rules (v1.40.0 pkg/controller/ippool/validation.go:45-61, 75-79, 93-96,
	// 133-134); v1.34.13's validation.go has none of them.
	LoadBalancerUse bool
}

// The releases the sandbox's operator flavours model.
var (
	// V1_34_13 is the operator the pinned Calico (v3.28.5) ships
	// (charts/tigera-operator/values.yaml:62-64 of the pinned calico module),
	// tag v1.34.13 = commit 8a7bc333c9a4d678baa31f6046cd73df0ccb260b.
	V1_34_13 = Version{Name: "v1.34.13", Calico: "v3.28.5"}
	// V1_40_0 is a newer operator (it ships Calico v3.31.0), with
	// disableNewAllocations: the release the sandbox modelled first.
	V1_40_0 = Version{Name: "v1.40.0", Calico: "v3.31.0", DisableNewAllocations: true, LoadBalancerUse: true}
)
