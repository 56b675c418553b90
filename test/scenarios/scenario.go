// Package scenarios defines the sandbox's workload scenarios: a small YAML format
// describing the cluster a test or demo starts from (nodes, Calico pools, workloads),
// and the named scenarios shipped next to this file (default.yaml, ...).
//
// The format is documented in README.md in this directory. Parsing is strict (unknown
// fields are errors) so a typo never silently yields a different cluster.
package scenarios

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// APIVersion and Kind identify a scenario file.
const (
	APIVersion = "sandbox.runbook.dev/v1alpha1"
	Kind       = "Scenario"
)

// Scenario is one parsed scenario file. Parse fills in defaults, so every field a
// consumer reads has its effective value.
type Scenario struct {
	APIVersion  string `json:"apiVersion"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`

	Cluster    Cluster     `json:"cluster"`
	Calico     Calico      `json:"calico"`
	Pods       Pods        `json:"pods"`
	NodeGroups []NodeGroup `json:"nodes"`
	Namespaces []Namespace `json:"namespaces,omitempty"`
	Workloads  []Workload  `json:"workloads,omitempty"`
}

// Cluster holds the Kubernetes-side network configuration, published where real
// clusters publish it: kubeadm-config networking.podSubnet/serviceSubnet,
// kube-controller-manager --cluster-cidr/--service-cluster-ip-range and kube-proxy
// clusterCIDR.
type Cluster struct {
	PodSubnet     string `json:"podSubnet"`
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
}

// Calico holds the Calico configuration created at install time.
type Calico struct {
	// IPPools are created the way calico-node creates its default pool on first start
	// (from CALICO_IPV4POOL_* in a manifest install).
	IPPools []IPPool `json:"ipPools"`
}

// IPPool is the subset of the crd.projectcalico.org/v1 IPPool spec a scenario sets.
type IPPool struct {
	Name         string `json:"name"`
	CIDR         string `json:"cidr"`
	IPIPMode     string `json:"ipipMode,omitempty"`
	VXLANMode    string `json:"vxlanMode,omitempty"`
	NATOutgoing  bool   `json:"natOutgoing,omitempty"`
	BlockSize    int    `json:"blockSize,omitempty"`
	NodeSelector string `json:"nodeSelector,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
}

// Pods holds the simulated container runtime's timing.
type Pods struct {
	// StartDelay is how long a pod takes from getting its IP (CNI ADD done) to
	// Running and Ready: the kwok pod-ready stage delay.
	StartDelay metav1.Duration `json:"startDelay,omitempty"`
}

// NodeGroup is one entry of the nodes list: Count nodes named Name-1..Name-Count,
// or one node named Name when Count is 1.
type NodeGroup struct {
	Name  string `json:"name"`
	Count int    `json:"count,omitempty"`
	// ControlPlane nodes carry the node-role label and NoSchedule taint kubeadm sets,
	// and the first one hosts the control plane's mirror pods.
	ControlPlane bool              `json:"controlPlane,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
}

// Node is one expanded node.
type Node struct {
	Name         string
	ControlPlane bool
	Labels       map[string]string
}

// Namespace declares metadata for a namespace; namespaces used by workloads but not
// declared here are created bare.
type Namespace struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Workload is a controller with replicas and an optional PodDisruptionBudget.
type Workload struct {
	// Kind is Deployment (the only kind so far).
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Replicas  int32  `json:"replicas"`
	Image     string `json:"image,omitempty"`
	// Labels are the pod labels and the selector; default app: <name>.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations go on the pod template, e.g. cni.projectcalico.org/ipv4pools.
	Annotations map[string]string `json:"annotations,omitempty"`
	// TolerateControlPlane lets the pods run on control-plane nodes, like coredns.
	TolerateControlPlane bool `json:"tolerateControlPlane,omitempty"`
	PDB                  *PDB `json:"pdb,omitempty"`
}

// PDB is a policy/v1 PodDisruptionBudget selecting the workload's pods.
type PDB struct {
	MinAvailable               *intstr.IntOrString `json:"minAvailable,omitempty"`
	MaxUnavailable             *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	UnhealthyPodEvictionPolicy string              `json:"unhealthyPodEvictionPolicy,omitempty"`
}

// Nodes expands the node groups into individual nodes, in file order.
func (s *Scenario) Nodes() []Node {
	var nodes []Node
	for _, g := range s.NodeGroups {
		if g.Count <= 1 {
			nodes = append(nodes, Node{Name: g.Name, ControlPlane: g.ControlPlane, Labels: g.Labels})
			continue
		}
		for i := 1; i <= g.Count; i++ {
			nodes = append(nodes, Node{Name: nodeName(g.Name, i), ControlPlane: g.ControlPlane, Labels: g.Labels})
		}
	}
	return nodes
}

// PodCount returns the number of pods the workloads ask for.
func (s *Scenario) PodCount() int {
	n := 0
	for _, w := range s.Workloads {
		n += int(w.Replicas)
	}
	return n
}
