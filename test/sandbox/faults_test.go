package sandbox_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/faultproxy"
)

// A node goes NotReady the way a node without a working calico-node does, the
// controller manager taints it, and both go away when the fault is cleared.
func TestNodeGoesNotReady(t *testing.T) {
	c, cs, _, ctx := clients(t)
	const node = "worker-2"
	if err := c.SetNodeReady(ctx, node, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.SetNodeReady(context.Background(), node, true) })
	poll(ctx, t, node+" NotReady and tainted not-ready", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := readyCondition(n)
		return ready != nil && ready.Status == corev1.ConditionFalse &&
			strings.Contains(ready.Message, "cni plugin not initialized") && hasTaint(n, "node.kubernetes.io/not-ready"), nil
	})
	if err := c.SetNodeReady(ctx, node, true); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, node+" Ready and untainted", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready := readyCondition(n)
		return ready != nil && ready.Status == corev1.ConditionTrue && !hasTaint(n, "node.kubernetes.io/not-ready"), nil
	})
}

// etcd and the apiserver restart on demand under the running cluster; the
// cluster then works as before.
func TestEtcdAndAPIServerRestart(t *testing.T) {
	c, cs, _, ctx := clients(t)
	for _, name := range []string{sandbox.Etcd, sandbox.APIServer} {
		down, err := c.Restart(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s restarted in %v", name, down.Round(time.Millisecond))
		poll(ctx, t, "the apiserver serving after the "+name+" restart", func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		})
	}
	const ns = "after-etcd-restart"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	createDeployment(ctx, t, cs, ns, "web", nil)
	waitDeploymentAvailable(ctx, t, cs, ns, "web")
}

// The fault proxy makes client-go see what a flaky apiserver or load balancer
// does: 5xx answers, throttling it retries, resets, latency and cut watches.
func TestFaultProxy(t *testing.T) {
	c, _, _, ctx := clients(t)
	p, err := c.StartFaultProxy()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(p.Config())
	pods := regexp.MustCompile(`/pods$`)

	if _, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("through the proxy without faults: %v", err)
	}

	p.Set(faultproxy.Fault{Status: 503, Path: pods, Times: 1})
	if _, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("503 fault: err = %v, want ServiceUnavailable", err)
	}

	// client-go waits out a 429 with Retry-After and retries.
	p.Set(faultproxy.Fault{Status: 429, RetryAfter: time.Second, Path: pods, Times: 1})
	start := time.Now()
	if _, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err != nil || time.Since(start) < time.Second {
		t.Errorf("429 with Retry-After: err = %v after %v; want a retried success after >= 1s", err, time.Since(start))
	}

	// A reset is retried for GETs by client-go, and surfaces for writes.
	p.Set(faultproxy.Fault{Reset: true, Methods: []string{"POST"}, Times: 1})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fault-proxy-probe"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Errorf("reset on POST: err = %v, want connection reset by peer", err)
	}
	p.Set(faultproxy.Fault{Reset: true, Methods: []string{"GET"}, Times: 1})
	if _, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("reset on GET: err = %v, want client-go to retry", err)
	}

	p.Set(faultproxy.Fault{Latency: 500 * time.Millisecond, Path: pods})
	start = time.Now()
	if _, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{}); err != nil || time.Since(start) < 500*time.Millisecond {
		t.Errorf("latency: err = %v after %v", err, time.Since(start))
	}
	p.Set()

	w, err := cs.CoreV1().Pods("shop").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if n := p.DropConnections(); n == 0 {
		t.Fatal("no connection to drop")
	}
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.ResultChan():
		case <-timeout:
			t.Fatal("watch still open after DropConnections")
		}
	}
	t.Logf("proxy stats %+v", p.Stats())
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
