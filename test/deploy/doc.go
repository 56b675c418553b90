// Package deploy checks deploy/ against the local test cluster: the manifests pass a
// server-side dry run, the binary's in-cluster configuration works with a service
// account token and CA as a pod sees them, the ServiceAccount's RBAC is exactly what
// a full migration uses on every Calico flavour (a manifest install, the Calico API
// server, a tigera-operator install), and the Argo Workflows template is valid
// against Argo's own CRD schema.
package deploy
