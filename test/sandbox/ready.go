package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// waitReady waits until every node is Ready, every Deployment and DaemonSet in the
// cluster has all its replicas available and every pod is Ready (so has its IP). On timeout
// the error lists what was still missing.
func waitReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		pending, err = notReady(ctx, cs)
		if err != nil {
			pending = []string{err.Error()} // transient (apiserver busy): report, keep waiting
			return false, nil
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("cluster not ready after %v: %s: %w", timeout, strings.Join(pending, "; "), err)
	}
	return nil
}

// notReady describes everything that is not ready yet.
func notReady(ctx context.Context, cs kubernetes.Interface) ([]string, error) {
	var pending []string
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			pending = append(pending, "node "+n.Name+" not Ready")
		}
	}
	deployments, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	for _, d := range deployments.Items {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
			pending = append(pending, fmt.Sprintf("deployment %s/%s %d/%d available", d.Namespace, d.Name, st.AvailableReplicas, want))
		}
	}
	daemonSets, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing daemonsets: %w", err)
	}
	for _, ds := range daemonSets.Items {
		st := ds.Status
		if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled != st.DesiredNumberScheduled || st.NumberAvailable != st.DesiredNumberScheduled {
			pending = append(pending, fmt.Sprintf("daemonset %s/%s %d/%d available", ds.Namespace, ds.Name, st.NumberAvailable, st.DesiredNumberScheduled))
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded && !podReady(&p) {
			pending = append(pending, fmt.Sprintf("pod %s/%s %s", p.Namespace, p.Name, p.Status.Phase))
		}
	}
	return pending, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
