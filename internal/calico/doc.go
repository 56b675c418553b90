// Package calico is runbook's access to Calico IP pools and IPAM state.
//
// One interface (Client) covers every way Calico can be installed; each install
// flavour implements it. This package implements the manifest install, where pools
// and IPAM live in crd.projectcalico.org/v1 CRDs (NewCRD); the Calico API server
// (projectcalico.org/v3) and operator (Installation) flavours come later and only
// differ in how pools are written and deleted.
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
