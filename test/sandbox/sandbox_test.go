package sandbox_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/cni"
)

func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }

var ipamHandles = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamhandles"}

func clients(t *testing.T) (*sandbox.Cluster, kubernetes.Interface, dynamic.Interface, context.Context) {
	t.Helper()
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c, kubernetes.NewForConfigOrDie(c.RESTConfig()), dynamic.NewForConfigOrDie(c.RESTConfig()), ctx
}

// The default scenario comes up with every workload pod Running on an address of
// default-ipv4-ippool, and host-network pods on their node's address.
func TestDefaultScenarioPodsHavePoolAddresses(t *testing.T) {
	c, cs, _, ctx := clients(t)
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("192.168.0.0/16")
	workloads := 0
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s/%s: %s, IP %q", p.Namespace, p.Name, p.Status.Phase, p.Status.PodIP)
			continue
		}
		if p.Spec.HostNetwork == pool.Contains(ip) {
			t.Errorf("pod %s/%s hostNetwork=%v has IP %s", p.Namespace, p.Name, p.Spec.HostNetwork, ip)
		}
		if !p.Spec.HostNetwork {
			workloads++
			if p.Annotations[cni.AnnotationPodIP] != ip.String()+"/32" || p.Annotations[cni.AnnotationContainerID] == "" {
				t.Errorf("pod %s/%s lacks Calico's annotations: %v", p.Namespace, p.Name, p.Annotations)
			}
		}
	}
	// The scenario's pods plus calico-kube-controllers from calico.yaml.
	if want := c.Scenario().PodCount() + 1; workloads != want {
		t.Errorf("%d pods on the pool network, want %d", workloads, want)
	}
}

// A kubeadm cluster publishes its pod CIDR in three places; tools read them.
func TestClusterCIDRIsPublishedLikeKubeadm(t *testing.T) {
	c, cs, _, ctx := clients(t)
	podSubnet := c.Scenario().Cluster.PodSubnet
	kubeadm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kubeadm.Data["ClusterConfiguration"], "podSubnet: "+podSubnet) {
		t.Errorf("kubeadm-config ClusterConfiguration lacks podSubnet %s:\n%s", podSubnet, kubeadm.Data["ClusterConfiguration"])
	}
	proxy, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(proxy.Data["config.conf"], "clusterCIDR: "+podSubnet) {
		t.Errorf("kube-proxy config.conf lacks clusterCIDR %s", podSubnet)
	}
	kcm, err := cs.CoreV1().Pods("kube-system").Get(ctx, "kube-controller-manager-control-plane", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(kcm.Spec.Containers[0].Command, " "), "--cluster-cidr="+podSubnet) {
		t.Errorf("KCM mirror pod command lacks --cluster-cidr: %v", kcm.Spec.Containers[0].Command)
	}
	calicoConfig, err := cs.CoreV1().ConfigMaps(cni.ConfigMapNamespace).Get(ctx, cni.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := cni.ParseNetConf(calicoConfig.Data[cni.ConfigMapKey])
	if err != nil || conf.IPAM.Type != "calico-ipam" {
		t.Errorf("calico-config: %+v, %v; want calico-ipam", conf, err)
	}
}

// Deleting a pod releases its IPAM handle (CNI DEL) before kwok removes it, and
// the replacement gets a new address under a new handle.
func TestDeletedPodReleasesItsHandle(t *testing.T) {
	_, cs, dyn, ctx := clients(t)
	pods, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("cart pods: %v, %v", pods, err)
	}
	victim := pods.Items[0]
	handle := "k8s-pod-network." + victim.Annotations[cni.AnnotationContainerID]
	if _, err := dyn.Resource(ipamHandles).Get(ctx, handle, metav1.GetOptions{}); err != nil {
		t.Fatalf("handle %s of a running pod: %v", handle, err)
	}
	if err := cs.CoreV1().Pods("shop").Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "the handle released and the pod gone", func(ctx context.Context) (bool, error) {
		_, herr := dyn.Resource(ipamHandles).Get(ctx, handle, metav1.GetOptions{})
		_, perr := cs.CoreV1().Pods("shop").Get(ctx, victim.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(herr) && apierrors.IsNotFound(perr), nil
	})
	waitDeploymentAvailable(ctx, t, cs, "shop", "cart")
}

// A pod pinned to a pool that does not exist stays Pending with the CNI plugin's
// error as a kubelet event, and starts once the pin is fixed.
func TestPinnedToMissingPoolFailsLikeCalico(t *testing.T) {
	_, cs, _, ctx := clients(t)
	ns := "pinned"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        ns,
		Annotations: map[string]string{cni.AnnotationIPv4Pools: `["10.9.0.0/16"]`},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	createDeployment(ctx, t, cs, ns, "web", nil)
	const want = `plugin type="calico" failed (add): the given pool (10.9.0.0/16) does not exist, or is not enabled`
	var pod string
	poll(ctx, t, "the FailedCreatePodSandBox event", func(ctx context.Context) (bool, error) {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if strings.Contains(e.Message, want) && e.Source.Component == "kubelet" {
				pod = e.InvolvedObject.Name
				return true, nil
			}
		}
		return false, nil
	})
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending || p.Annotations[cni.AnnotationPodIP] != "" {
		t.Fatalf("pod %s: phase %s, IP %q; want Pending without an address", pod, p.Status.Phase, p.Annotations[cni.AnnotationPodIP])
	}
	// Pinning by pool name works: the kubelet's retry picks the fix up.
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Annotations[cni.AnnotationIPv4Pools] = `["default-ipv4-ippool"]`
	if _, err := cs.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeploymentAvailable(ctx, t, cs, ns, "web")
}

// Components stop and start again under a running cluster: the CNI stand-in
// catches up on pods created while it was down, the apiserver comes back with the
// same address and credentials, and the controller manager resumes.
func TestComponentRestarts(t *testing.T) {
	c, cs, _, ctx := clients(t)
	restart := func(name string, whileDown func()) {
		t.Helper()
		comp := c.Component(name)
		if comp == nil {
			t.Fatalf("no component %s", name)
		}
		start := time.Now()
		if err := comp.Stop(ctx); err != nil {
			t.Fatalf("stopping %s: %v", name, err)
		}
		if comp.Running() {
			t.Fatalf("%s still running after Stop", name)
		}
		if whileDown != nil {
			whileDown()
		}
		if err := comp.Start(ctx); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		t.Logf("%s restarted in %v", name, time.Since(start).Round(time.Millisecond))
	}

	const ns = "restarts"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	restart(sandbox.CNI, func() {
		createDeployment(ctx, t, cs, ns, "during-cni-outage", nil)
		time.Sleep(time.Second)
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.PodIP != "" {
				t.Errorf("pod %s got %s with the CNI stand-in down", p.Name, p.Status.PodIP)
			}
		}
	})
	waitDeploymentAvailable(ctx, t, cs, ns, "during-cni-outage")

	restart(sandbox.APIServer, nil)
	restart(sandbox.ControllerManager, nil)
	createDeployment(ctx, t, cs, ns, "after-restarts", nil)
	waitDeploymentAvailable(ctx, t, cs, ns, "after-restarts")
}

func createDeployment(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, annotations map[string]string) {
	t.Helper()
	replicas := int32(1)
	labels := map[string]string{"app": name}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func waitDeploymentAvailable(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	poll(ctx, t, "deployment "+ns+"/"+name+" available", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // the apiserver may be restarting
		}
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == *d.Spec.Replicas && d.Status.Replicas == *d.Spec.Replicas, nil
	})
}

func poll(ctx context.Context, t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}
