package sandbox

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
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
	if n.NotReady {
		node.Annotations[AnnotationNodeNotReady] = "true"
	}
	if n.ControlPlane {
		node.Labels[controlPlaneRole] = ""
		node.Spec.Taints = []corev1.Taint{{Key: controlPlaneRole, Effect: corev1.TaintEffectNoSchedule}}
	}
	return node
}

// createNodes registers the scenario's nodes.
func createNodes(ctx context.Context, cs kubernetes.Interface, s *scenarios.Scenario) error {
	for _, node := range nodeObjects(s) {
		if err := createOrKeep(ctx, cs.CoreV1().Nodes().Create, node, "node "+node.Name); err != nil {
			return err
		}
	}
	return nil
}

// nodeObjects are the scenario's nodes, numbered from firstNodeIP in file order.
func nodeObjects(s *scenarios.Scenario) []*corev1.Node {
	var nodes []*corev1.Node
	ip := firstNodeIP
	for _, n := range s.Nodes() {
		nodes = append(nodes, nodeObject(n, ip))
		ip = ip.Next()
	}
	return nodes
}

// createWorkloads creates the scenario's namespaces and workloads with their
// budgets, Services and webhooks.
func createWorkloads(ctx context.Context, cs kubernetes.Interface, s *scenarios.Scenario) error {
	declared := map[string]bool{}
	for _, ns := range s.Namespaces {
		declared[ns.Name] = true
		if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, namespaceObject(ns), "namespace "+ns.Name); err != nil {
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
		if err := createWorkload(ctx, cs, w); err != nil {
			return err
		}
	}
	return nil
}

// createWorkload creates one workload. Budgets and the webhook come first, so that
// they are in force when the first pod appears.
func createWorkload(ctx context.Context, cs kubernetes.Interface, w scenarios.Workload) error {
	key := w.Namespace + "/" + w.Name
	for _, p := range pdbs(w) {
		if err := createOrKeep(ctx, cs.PolicyV1().PodDisruptionBudgets(w.Namespace).Create, p, "PodDisruptionBudget "+w.Namespace+"/"+p.Name); err != nil {
			return err
		}
	}
	if w.Webhook != nil {
		svc, vwc := webhookObjects(w)
		if err := createOrKeep(ctx, cs.CoreV1().Services(w.Namespace).Create, svc, "webhook Service "+w.Namespace+"/"+svc.Name); err != nil {
			return err
		}
		if err := createOrKeep(ctx, cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create, vwc, "ValidatingWebhookConfiguration "+vwc.Name); err != nil {
			return err
		}
	}
	switch w.Kind {
	case scenarios.KindDeployment:
		return createOrKeep(ctx, cs.AppsV1().Deployments(w.Namespace).Create, deployment(w), "Deployment "+key)
	case scenarios.KindStatefulSet:
		if err := createOrKeep(ctx, cs.CoreV1().Services(w.Namespace).Create, headlessService(w), "Service "+key); err != nil {
			return err
		}
		return createOrKeep(ctx, cs.AppsV1().StatefulSets(w.Namespace).Create, statefulSet(w), "StatefulSet "+key)
	case scenarios.KindDaemonSet:
		return createOrKeep(ctx, cs.AppsV1().DaemonSets(w.Namespace).Create, daemonSet(w), "DaemonSet "+key)
	case scenarios.KindJob:
		return createOrKeep(ctx, cs.BatchV1().Jobs(w.Namespace).Create, job(w), "Job "+key)
	case scenarios.KindPod:
		for _, p := range barePods(w) {
			if err := createOrKeep(ctx, cs.CoreV1().Pods(w.Namespace).Create, p, "Pod "+w.Namespace+"/"+p.Name); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("workload %s: kind %q is not supported", key, w.Kind)
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
