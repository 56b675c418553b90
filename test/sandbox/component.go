package sandbox

import "context"

// Component is one part of the cluster that can be stopped and started again while
// the rest keeps running (fault tests restart the apiserver, the controller manager,
// the CNI stand-in, ...). Start on a running component and Stop on a stopped one are
// no-ops.
type Component interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Running() bool
}

// Component names, usable with Cluster.Component.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	CNI               = "cni"
	CalicoNode        = "calico-node"
	KubeControllers   = "calico-kube-controllers" // IPAM garbage collection
	CalicoAPIServer   = "calico-apiserver"        // flavours apiserver and operator
	Operator          = "tigera-operator"         // flavour operator
)
