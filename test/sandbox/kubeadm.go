package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/runbookdev/runbook/test/scenarios"
)

// kubernetesVersion is the version the tools are built at (hack/build-tools.sh).
const kubernetesVersion = "v1.37.2"

// kubeadmConfigMaps are the ConfigMaps `kubeadm init` leaves in kube-system, which
// is where tools (and calico-node) read the cluster's pod CIDR from.
func kubeadmConfigMaps(c scenarios.Cluster, apiserverHost string) []*corev1.ConfigMap {
	clusterConfig := fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: kubernetes
controlPlaneEndpoint: %s
kubernetesVersion: %s
networking:
  dnsDomain: cluster.local
  podSubnet: %s
  serviceSubnet: %s
`, apiserverHost, kubernetesVersion, c.PodSubnet, c.ServiceSubnet)
	proxyConfig := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clusterCIDR: %s
mode: iptables
`, c.PodSubnet)
	return []*corev1.ConfigMap{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "kubeadm-config"},
			Data:       map[string]string{"ClusterConfiguration": clusterConfig},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "kube-proxy", Labels: map[string]string{"app": "kube-proxy"}},
			Data:       map[string]string{"config.conf": proxyConfig},
		},
	}
}

// mirrorPod is what the kubelet publishes for a static control-plane pod: a
// host-network pod in kube-system named <component>-<node>, whose command line is
// the running process's, so `--cluster-cidr` can be read off the API as on a
// kubeadm cluster.
func mirrorPod(component, node string, command []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: metav1.NamespaceSystem,
			Name:      component + "-" + node,
			Labels:    map[string]string{"component": component, "tier": "control-plane"},
			Annotations: map[string]string{
				corev1.MirrorPodAnnotationKey:     "sandbox",
				"kubernetes.io/config.source":     "file",
				"kubernetes.io/config.hash":       "sandbox",
				"kubernetes.io/config.seen":       "sandbox",
				"kubeadm.kubernetes.io/component": component,
			},
		},
		Spec: corev1.PodSpec{
			NodeName:          node,
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Tolerations:       []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			Containers: []corev1.Container{{
				Name:    component,
				Image:   "registry.k8s.io/" + component + ":" + kubernetesVersion,
				Command: command,
			}},
		},
	}
}

// createOrKeep creates obj unless it exists (a restarted sandbox keeps its state).
func createOrKeep[T any](ctx context.Context, create func(context.Context, T, metav1.CreateOptions) (T, error), obj T, what string) error {
	if _, err := create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s: %w", what, err)
	}
	return nil
}

// installKubeadmObjects publishes the kubeadm-side configuration and the
// controller-manager's and scheduler's mirror pods on the control-plane node.
func installKubeadmObjects(ctx context.Context, cs kubernetes.Interface, c scenarios.Cluster, apiserverHost, controlPlaneNode string, mirrors map[string][]string) error {
	for _, cm := range kubeadmConfigMaps(c, apiserverHost) {
		if err := createOrKeep(ctx, cs.CoreV1().ConfigMaps(cm.Namespace).Create, cm, "ConfigMap "+cm.Name); err != nil {
			return err
		}
	}
	if err := waitNodeManaged(ctx, cs, controlPlaneNode); err != nil {
		return err
	}
	for component, command := range mirrors {
		pod := mirrorPod(component, controlPlaneNode, command)
		if err := createOrKeep(ctx, cs.CoreV1().Pods(pod.Namespace).Create, pod, "mirror pod "+pod.Name); err != nil {
			return err
		}
	}
	return nil
}

// nodeManagedTimeout bounds the wait for kwok to take a node on.
const nodeManagedTimeout = time.Minute

// waitNodeManaged waits until kwok has played the node's stages (it has a Ready
// condition), which it does only once its own cache shows it holding the node's
// Lease. Pods bound to the node before that may never be played: kwok v0.8.0
// re-lists a node's pods as soon as it has *created* the Lease
// (pkg/kwok/controllers/node_lease_controller.go, sync → onNodeManaged), but
// decides per pod with readOnly(), which reads the Lease from its informer cache
// (controller.go, readOnlyFunc → NodeLeaseController.Held). When that cache lags
// the create, the re-list and the pods' watch events are all skipped as "read
// only", and a pod nothing modifies later — the mirror pods — stays Pending for
// ever (issue #24: a sandbox start that timed out with both mirror pods Pending).
// Pods the scheduler binds later are not affected: the binding is a new event.
func waitNodeManaged(ctx context.Context, cs kubernetes.Interface, node string) error {
	ctx, cancel := context.WithTimeout(ctx, nodeManagedTimeout)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", node).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Nodes().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Nodes().Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		if !ok {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s: kwok did not take it on (no Ready condition) within %v: %w", node, nodeManagedTimeout, err)
	}
	return nil
}
