package sandbox

import (
	"context"
	"fmt"
	"net/netip"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/scenarios"
)

// Node addresses follow kind's docker network: the first node gets 172.18.0.2.
var firstNodeIP = netip.MustParseAddr("172.18.0.2")

const controlPlaneRole = "node-role.kubernetes.io/control-plane"

// nodeObject is a scenario node as kubeadm + kubelet register it, annotated for kwok.
// Its InternalIP is set here because kwok keeps an address it finds.
func nodeObject(n scenarios.Node, ip netip.Addr) *corev1.Node {
	labels := map[string]string{
		"kubernetes.io/hostname": n.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	for k, v := range n.Labels {
		labels[k] = v
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        n.Name,
			Labels:      labels,
			Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
		},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeHostName, Address: n.Name},
		}},
	}
	if n.ControlPlane {
		node.Labels[controlPlaneRole] = ""
		node.Spec.Taints = []corev1.Taint{{Key: controlPlaneRole, Effect: corev1.TaintEffectNoSchedule}}
	}
	return node
}

// createNodes registers the scenario's nodes.
func createNodes(ctx context.Context, cs kubernetes.Interface, s *scenarios.Scenario) error {
	ip := firstNodeIP
	for _, n := range s.Nodes() {
		if err := createOrKeep(ctx, cs.CoreV1().Nodes().Create, nodeObject(n, ip), "node "+n.Name); err != nil {
			return err
		}
		ip = ip.Next()
	}
	return nil
}

// createWorkloads creates the scenario's namespaces, Deployments and PDBs.
func createWorkloads(ctx context.Context, cs kubernetes.Interface, s *scenarios.Scenario) error {
	declared := map[string]bool{}
	for _, ns := range s.Namespaces {
		declared[ns.Name] = true
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}}
		if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, obj, "namespace "+ns.Name); err != nil {
			return err
		}
	}
	for _, w := range s.Workloads {
		if !declared[w.Namespace] {
			declared[w.Namespace] = true
			obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}}
			if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, obj, "namespace "+w.Namespace); err != nil {
				return err
			}
		}
		d := deployment(w)
		if err := createOrKeep(ctx, cs.AppsV1().Deployments(w.Namespace).Create, d, "deployment "+w.Namespace+"/"+w.Name); err != nil {
			return err
		}
		if w.PDB == nil {
			continue
		}
		if err := createOrKeep(ctx, cs.PolicyV1().PodDisruptionBudgets(w.Namespace).Create, pdb(w), "PodDisruptionBudget "+w.Namespace+"/"+w.Name); err != nil {
			return err
		}
	}
	return nil
}

func deployment(w scenarios.Workload) *appsv1.Deployment {
	replicas := w.Replicas
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{Name: w.Name, Image: w.Image}},
	}
	if w.TolerateControlPlane {
		spec.Tolerations = []corev1.Toleration{{Key: controlPlaneRole, Effect: corev1.TaintEffectNoSchedule}}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name, Labels: w.Labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: w.Labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: w.Labels, Annotations: w.Annotations},
				Spec:       spec,
			},
		},
	}
}

func pdb(w scenarios.Workload) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: w.Labels},
			MinAvailable:   w.PDB.MinAvailable,
			MaxUnavailable: w.PDB.MaxUnavailable,
		},
	}
	if w.PDB.UnhealthyPodEvictionPolicy != "" {
		policy := policyv1.UnhealthyPodEvictionPolicyType(w.PDB.UnhealthyPodEvictionPolicy)
		p.Spec.UnhealthyPodEvictionPolicy = &policy
	}
	return p
}

// controlPlaneNode returns the first control-plane node (validation guarantees one).
func controlPlaneNode(s *scenarios.Scenario) (string, error) {
	for _, n := range s.Nodes() {
		if n.ControlPlane {
			return n.Name, nil
		}
	}
	return "", fmt.Errorf("scenario %s has no control-plane node", s.Name)
}
