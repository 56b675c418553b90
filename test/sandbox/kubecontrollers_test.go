package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/cni"
)

var (
	kubeControllersConfigs = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "kubecontrollersconfigurations"}
	blockAffinities        = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}
)

const gcScenario = `
apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: ipam-gc
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 2}
workloads:
- {name: web, namespace: shop, replicas: 2}
`

// The real calico-kube-controllers (v3.28.5, node controller) releases the
// address of a pod that vanished without a CNI DEL after the leak grace period
// (kube-controllers/pkg/controllers/node/ipam_allocation.go:171-186), never while
// ClusterInformation says the datastore is not ready (ipam.go:953-963), and a
// deleted node's tunnel address and block affinities (ipam.go:832-849).
func TestIPAMGarbageCollection(t *testing.T) {
	ic, ctx := startInline(t, gcScenario, 3*time.Minute)
	c, cs, calico := ic.Cluster, ic.kube, ic.calico
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	// The configuration has Calico's default (15m); shorten the grace period as
	// an admin would. kube-controllers restarts on the change (main.go:496-504)
	// and its supervisor starts it again.
	const grace = 2 * time.Second
	patch := []byte(`{"spec":{"controllers":{"node":{"leakGracePeriod":"2s"}}}}`)
	if _, err := dyn.Resource(kubeControllersConfigs).Patch(ctx, "default", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("KubeControllersConfiguration default: %v", err)
	}
	setDatastoreReady(ctx, t, calico, false)

	// A pod force-deleted while the CNI plugin is down leaks its address.
	victim := podsOf(ctx, t, cs, "shop", "app=web")[0]
	handle := "k8s-pod-network." + victim.Annotations[cni.AnnotationContainerID]
	if err := c.Component(sandbox.CNI).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if err := cs.CoreV1().Pods("shop").Delete(ctx, victim.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := c.Component(sandbox.CNI).Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(ipamHandles).Get(ctx, handle, metav1.GetOptions{}); err != nil {
		t.Fatalf("the force-deleted pod's handle %s should have leaked: %v", handle, err)
	}
	// Not while the datastore is not ready: three grace periods pass (passes run
	// every grace/2 and on every node heartbeat) and the leak stays.
	time.Sleep(3 * grace)
	if _, err := dyn.Resource(ipamHandles).Get(ctx, handle, metav1.GetOptions{}); err != nil {
		t.Fatalf("the leak was released while ClusterInformation had datastoreReady false: %v", err)
	}
	setDatastoreReady(ctx, t, calico, true)
	start := time.Now()
	poll(ctx, t, "the leaked address released", func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(ipamHandles).Get(ctx, handle, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	waited := time.Since(start)
	t.Logf("leaked address released %v after datastoreReady (grace period %v)", waited.Round(time.Millisecond), grace)
	if waited < grace-100*time.Millisecond {
		t.Errorf("released after %v, before the %v grace period", waited, grace)
	}

	// A drained and deleted node: its tunnel address and block affinities go.
	const node = "worker-2"
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	poll(ctx, t, "pods off "+node, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if !p.Spec.HostNetwork {
				return false, nil
			}
		}
		return true, nil
	})
	if err := cs.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	poll(ctx, t, node+"'s tunnel address and block affinities released", func(ctx context.Context) (bool, error) {
		if _, err := dyn.Resource(ipamHandles).Get(ctx, "ipip-tunnel-addr-"+node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		affinities, err := dyn.Resource(blockAffinities).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, a := range affinities.Items {
			if n, _, _ := unstructured.NestedString(a.Object, "spec", "node"); n == node {
				return false, nil
			}
		}
		return true, nil
	})
	t.Logf("%s's tunnel address and affinities released %v after the node was deleted", node, time.Since(deleted).Round(time.Millisecond))
}

// setDatastoreReady sets ClusterInformation default's datastoreReady, which
// calico-node and kube-controllers check before they act (an upgrade sets it
// false).
func setDatastoreReady(ctx context.Context, t *testing.T, calico clientv3.Interface, ready bool) {
	t.Helper()
	ci, err := calico.ClusterInformation().Get(ctx, "default", options.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ci.Spec.DatastoreReady = &ready
	if _, err := calico.ClusterInformation().Update(ctx, ci, options.SetOptions{}); err != nil {
		t.Fatalf("ClusterInformation default datastoreReady=%v: %v", ready, err)
	}
}
