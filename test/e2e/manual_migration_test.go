package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
)

func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }

var (
	oldPool = netip.MustParsePrefix("192.168.0.0/16")
	newPool = netip.MustParsePrefix("10.0.0.0/16")

	ippools    = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	ipamblocks = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
)

// TestManualMigration performs the Calico doc "Migrate from one IP pool to another"
// by hand on the default scenario, and checks that every pod ends up in the new
// pool and that the old pool leaves nothing behind in IPAM. It migrates the whole
// cluster, so it runs on a cluster of its own, not the package's shared one.
func TestManualMigration(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	calico, err := c.NewCalicoClient()
	if err != nil {
		t.Fatal(err)
	}

	before := podsIn(ctx, t, cs, oldPool)
	if len(before) == 0 {
		t.Fatal("the default scenario should start with pods in the old pool")
	}
	t.Logf("start: %d pods in %s", len(before), oldPool)

	// 1. Add the new pool.
	_, err = calico.IPPools().Create(ctx, &v3.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "new-pool"},
		Spec: v3.IPPoolSpec{
			CIDR:         newPool.String(),
			IPIPMode:     v3.IPIPModeAlways,
			VXLANMode:    v3.VXLANModeNever,
			NATOutgoing:  true,
			BlockSize:    26,
			NodeSelector: "all()",
		},
	}, options.SetOptions{})
	if err != nil {
		t.Fatalf("step 1, create new-pool: %v", err)
	}

	// 2. Disable the old pool, patching only spec.disabled (the doc's own
	// export/edit/apply round trip would rewrite the whole spec).
	if _, err := dyn.Resource(ippools).Patch(ctx, "default-ipv4-ippool", types.MergePatchType,
		[]byte(`{"spec":{"disabled":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("step 2, disable default-ipv4-ippool: %v", err)
	}

	// 3. Delete every pod with an address in the old pool; their controllers
	// recreate them, and IPAM now only hands out addresses from new-pool.
	for _, p := range podsIn(ctx, t, cs, oldPool) {
		if err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("step 3, delete pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	waitFor(ctx, t, "every pod Running in the new pool", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Spec.HostNetwork {
				continue
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || !newPool.Contains(ip) || !ready(&p) {
				return false, nil
			}
		}
		return true, nil
	})

	// 4. Verify with a fresh deployment in a test namespace, then remove it.
	verifyNewAllocations(ctx, t, cs)

	// 5. Delete the old pool through clientv3, Calico's own path (disable, release
	// the block affinities, delete).
	if _, err := calico.IPPools().Delete(ctx, "default-ipv4-ippool", options.DeleteOptions{}); err != nil {
		t.Fatalf("step 5, delete default-ipv4-ippool: %v", err)
	}

	if left := podsIn(ctx, t, cs, oldPool); len(left) > 0 {
		t.Errorf("pods still in %s: %v", oldPool, names(left))
	}
	blocks, err := dyn.Resource(ipamblocks).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks.Items {
		cidr, _, _ := unstructured.NestedString(b.Object, "spec", "cidr")
		if p, err := netip.ParsePrefix(cidr); err == nil && oldPool.Overlaps(p) {
			t.Errorf("IPAM block %s of the deleted pool is left behind", cidr)
		}
	}
	t.Logf("end: %d pods in %s, CNI stand-in %+v", len(podsIn(ctx, t, cs, newPool)), newPool, c.CNIStats())
	events, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreatePodSandBox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		t.Logf("event: %s/%s: %s", e.InvolvedObject.Namespace, e.InvolvedObject.Name, e.Message)
	}
}

// verifyNewAllocations is the doc's step 4: an nginx deployment in ippool-test
// must get an address from the new pool.
func verifyNewAllocations(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	const ns = "ippool-test"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("step 4, create namespace: %v", err)
	}
	replicas := int32(1)
	labels := map[string]string{"app": "nginx"}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("step 4, create deployment: %v", err)
	}
	var ip netip.Addr
	waitFor(ctx, t, "the test pod Running", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil || len(pods.Items) != 1 || !ready(&pods.Items[0]) {
			return false, err
		}
		ip, err = netip.ParseAddr(pods.Items[0].Status.PodIP)
		return err == nil, err
	})
	if !newPool.Contains(ip) {
		t.Fatalf("step 4: test pod got %s, not an address of %s", ip, newPool)
	}
	t.Logf("step 4: test pod got %s", ip)
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("step 4, delete namespace: %v", err)
	}
	waitFor(ctx, t, "the test namespace gone", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// podsIn lists the pods with an address in prefix.
func podsIn(ctx context.Context, t *testing.T, cs kubernetes.Interface, prefix netip.Prefix) []corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var in []corev1.Pod
	for _, p := range pods.Items {
		for _, pip := range p.Status.PodIPs {
			if ip, err := netip.ParseAddr(pip.IP); err == nil && prefix.Contains(ip) {
				in = append(in, p)
				break
			}
		}
	}
	return in
}

func waitFor(ctx context.Context, t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil
		}
	}
	return false
}

func names(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, fmt.Sprintf("%s/%s(%s)", p.Namespace, p.Name, p.Status.PodIP))
	}
	return strings.Join(out, ", ")
}
