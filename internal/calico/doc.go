// Package calico is runbook's access to Calico IP pools and IPAM state.
//
// One interface (Client) covers every way Calico can be installed; each install
// flavour is served by it (New, from the Detection). Pools are read and written
// through the flavour's pool API: the crd.projectcalico.org/v1 CRDs of a manifest
// install, or projectcalico.org/v3 where the Calico API server serves it; IPAM state
// always comes from the v1 CRDs. Pools the tigera-operator manages are changed
// through the Installation's spec.calicoNetwork.ipPools instead (operator.go).
//
// Reads come from shared informers (the guard functions of a runbook evaluate them on
// every cache change, so they must cost no API call) or, for decisions that must not
// act on a lagging cache, straight from the API server (Client.Live). What the
// readers return is plain data; the questions asked of it (which pods, allocations,
// tunnel addresses are inside a CIDR, which pool serves a node's tunnel) are pure
// functions in this package, tested without a cluster.
//
// Writes patch only the fields runbook owns and use fieldValidation=Strict, so a
// field the installed Calico does not know is an error rather than silently pruned.
// DESIGN.md explains the choice of the dynamic client with projectcalico/api types
// over libcalico-go's clientv3, with measured costs.
package calico
