// Package scenarios defines the sandbox's workload scenarios: a small YAML format
// describing the cluster a test or demo starts from (nodes, Calico pools, workloads),
// and the named scenarios shipped next to this file (default.yaml, ...).
//
// The format is documented in README.md in this directory. Parsing is strict (unknown
// fields are errors) so a typo never silently yields a different cluster.
package scenarios

import (
	"net/netip"
	"strings"

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
	// PodSubnet is one CIDR, or an IPv4 and an IPv6 CIDR separated by a comma
	// (dual-stack), as kubeadm takes it.
	PodSubnet     string `json:"podSubnet"`
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
}

// PodSubnets returns the parsed pod subnet(s); valid after Parse.
func (c Cluster) PodSubnets() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range strings.Split(c.PodSubnet, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Calico holds the Calico configuration created at install time.
type Calico struct {
	// IPPools are created the way calico-node creates its default pool on first start
	// (from CALICO_IPV4POOL_* in a manifest install).
	IPPools []IPPool `json:"ipPools"`
	// CNI changes the calico plugin's "ipam" section of calico-config's
	// cni_network_config, as an admin edits the manifest before installing.
	CNI CNI `json:"cni,omitempty"`
}

// CNI is the part of the calico-ipam configuration a scenario sets.
type CNI struct {
	// IPv4Pools and IPv6Pools pin every pod of the cluster to these pools (names or
	// CIDRs): ipam.ipv4_pools / ipv6_pools.
	IPv4Pools []string `json:"ipv4Pools,omitempty"`
	IPv6Pools []string `json:"ipv6Pools,omitempty"`
	// AssignIPv6 gives every pod an IPv6 address too (ipam.assign_ipv6: "true"):
	// dual-stack, with an IPv6 pool and a dual-stack podSubnet.
	AssignIPv6 bool `json:"assignIPv6,omitempty"`
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
	// AllowedUses restricts the pool to Workload, Tunnel and/or LoadBalancer
	// addresses; default (empty) is Calico's: Workload and Tunnel.
	AllowedUses []string `json:"allowedUses,omitempty"`
}

// Pods holds the simulated container runtime's timing.
type Pods struct {
	// StartDelay is how long a pod takes from getting its IP (CNI ADD done) to
	// Running and Ready: the kwok pod-ready stage delay.
	StartDelay metav1.Duration `json:"startDelay,omitempty"`
	// ShutdownDelay is how long a pod's containers take to exit once the kubelet
	// sends SIGTERM (preStop hook, draining connections): the pod keeps running
	// with its addresses that long, bounded by its termination grace period, and
	// only then does the kubelet run CNI DEL. Default 0: containers exit at once.
	ShutdownDelay metav1.Duration `json:"shutdownDelay,omitempty"`
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
	// NotReady nodes start NotReady (their kubelet reports the CNI plugin not
	// initialised) and stay so until the fault is cleared.
	NotReady bool `json:"notReady,omitempty"`
}

// Node is one expanded node.
type Node struct {
	Name         string
	ControlPlane bool
	Labels       map[string]string
	NotReady     bool
}

// Namespace declares metadata for a namespace; namespaces used by workloads but not
// declared here are created bare.
type Namespace struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// IPv4Pools and IPv6Pools pin the namespace's pods to pools (names or CIDRs):
	// the cni.projectcalico.org/ipv4pools / ipv6pools annotations.
	IPv4Pools []string `json:"ipv4Pools,omitempty"`
	IPv6Pools []string `json:"ipv6Pools,omitempty"`
}

// Workload kinds.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindPod         = "Pod" // bare pods, no controller
)

// Pod faults a workload can carry (the kwok stages act them out).
const (
	FaultNeverReady = "NeverReady" // Running, readiness never passes
	FaultCrashLoop  = "CrashLoop"  // Running, the container keeps crashing (CrashLoopBackOff)
)

// Workload is a set of pods — a controller's or bare ones — with optional
// PodDisruptionBudgets and an admission webhook they serve.
type Workload struct {
	// Kind is Deployment (default), StatefulSet, DaemonSet, Job or Pod.
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Count > 1 stands for that many copies named <name>-1..<name>-<count>, each
	// with its own labels and budgets (Parse expands them; pdbs names get the same
	// suffix). Default 1.
	Count int `json:"count,omitempty"`
	// Replicas: Deployment and StatefulSet replicas; Job parallelism and completions;
	// the number of bare pods (named <name>, or <name>-1.. when more than one).
	// Not allowed for DaemonSets (one pod per node). Default 1 for Pod.
	Replicas int32  `json:"replicas,omitempty"`
	Image    string `json:"image,omitempty"`
	// Labels are the pod labels and the selector; default app: <name>.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations go on the pod template.
	Annotations map[string]string `json:"annotations,omitempty"`
	// IPv4Pools and IPv6Pools pin the pods to pools (names or CIDRs): the
	// cni.projectcalico.org/ipv4pools / ipv6pools pod annotations.
	IPv4Pools []string `json:"ipv4Pools,omitempty"`
	IPv6Pools []string `json:"ipv6Pools,omitempty"`
	// TolerateControlPlane lets the pods run on control-plane nodes, like coredns.
	TolerateControlPlane bool `json:"tolerateControlPlane,omitempty"`
	// HostNetwork pods use their node's address and never involve Calico IPAM.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// StartDelay overrides pods.startDelay for these pods (slow starts).
	StartDelay *metav1.Duration `json:"startDelay,omitempty"`
	// ShutdownDelay overrides pods.shutdownDelay for these pods (slow drains).
	ShutdownDelay *metav1.Duration `json:"shutdownDelay,omitempty"`
	// TerminationGracePeriodSeconds is the pod spec field (Kubernetes' default, 30,
	// when left out): a shutdown that takes longer is cut short by SIGKILL.
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// ReadinessDelay gives every container a readiness probe with this
	// initialDelaySeconds (whole seconds): the pod is Running but not Ready for
	// that long after its containers start, as a kubelet probing it would report.
	ReadinessDelay *metav1.Duration `json:"readinessDelay,omitempty"`
	// RunFor is how long a Job's pods run before they succeed; default: they
	// succeed as soon as they run.
	RunFor *metav1.Duration `json:"runFor,omitempty"`
	// Fault makes every pod misbehave: NeverReady or CrashLoop.
	Fault string `json:"fault,omitempty"`
	// PDB is a PodDisruptionBudget named after the workload; PDBs are more, each
	// with its own name (a pod covered by two budgets cannot be evicted at all).
	PDB  *PDB  `json:"pdb,omitempty"`
	PDBs []PDB `json:"pdbs,omitempty"`
	// Webhook makes the pods the backends of a validating admission webhook.
	Webhook *Webhook `json:"webhook,omitempty"`
}

// PDB is a policy/v1 PodDisruptionBudget selecting the workload's pods.
type PDB struct {
	// Name is required in pdbs; pdb is named after the workload.
	Name                       string              `json:"name,omitempty"`
	MinAvailable               *intstr.IntOrString `json:"minAvailable,omitempty"`
	MaxUnavailable             *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	UnhealthyPodEvictionPolicy string              `json:"unhealthyPodEvictionPolicy,omitempty"`
	// MatchLabels selects the pods; default the workload's labels.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Webhook is a ValidatingWebhookConfiguration whose Service is backed by the
// workload's pods. The sandbox has no pod network, so the webhook never answers:
// with failurePolicy Fail, every request it intercepts is refused — as on a real
// cluster once its backing pods are gone.
type Webhook struct {
	// FailurePolicy is Fail (default) or Ignore.
	FailurePolicy string `json:"failurePolicy,omitempty"`
	// NamespaceSelector chooses the namespaces whose pod creations and updates the
	// webhook intercepts. Default: namespaces labelled
	// sandbox.runbook.dev/webhook=<namespace>.<name>, so it intercepts nothing
	// until a test labels a namespace.
	NamespaceSelector map[string]string `json:"namespaceSelector,omitempty"`
}

// AllPDBs returns the workload's budgets, pdb first, each with its name.
func (w Workload) AllPDBs() []PDB {
	var out []PDB
	if w.PDB != nil {
		p := *w.PDB
		p.Name = w.Name
		out = append(out, p)
	}
	return append(out, w.PDBs...)
}

// Nodes expands the node groups into individual nodes, in file order.
func (s *Scenario) Nodes() []Node {
	var nodes []Node
	for _, g := range s.NodeGroups {
		if g.Count <= 1 {
			nodes = append(nodes, Node{Name: g.Name, ControlPlane: g.ControlPlane, Labels: g.Labels, NotReady: g.NotReady})
			continue
		}
		for i := 1; i <= g.Count; i++ {
			nodes = append(nodes, Node{Name: nodeName(g.Name, i), ControlPlane: g.ControlPlane, Labels: g.Labels, NotReady: g.NotReady})
		}
	}
	return nodes
}

// PodCount returns the number of pods the workloads ask for: replicas of every
// kind but DaemonSets, plus one DaemonSet pod per node it may run on (all nodes
// with tolerateControlPlane, else the nodes that are not control planes).
func (s *Scenario) PodCount() int {
	n := 0
	for _, w := range s.Workloads {
		if w.Kind != KindDaemonSet {
			n += int(w.Replicas)
			continue
		}
		for _, node := range s.Nodes() {
			if w.TolerateControlPlane || !node.ControlPlane {
				n++
			}
		}
	}
	return n
}
