package sandbox_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

func startScenario(t *testing.T, name string) (*sandbox.Cluster, kubernetes.Interface, context.Context) {
	t.Helper()
	s, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c, kubernetes.NewForConfigOrDie(c.RESTConfig()), ctx
}

// inlineCluster is a sandbox started from a scenario written in the test, with the
// clients the tests use.
type inlineCluster struct {
	*sandbox.Cluster
	kube   kubernetes.Interface
	calico clientv3.Interface
}

// startInline starts a sandbox from scenarioYAML; ctx ends after timeout or with
// the test.
func startInline(t *testing.T, scenarioYAML string, timeout time.Duration) (inlineCluster, context.Context) {
	t.Helper()
	s, err := scenarios.Parse([]byte(scenarioYAML))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	calico, err := c.NewCalicoClient()
	if err != nil {
		t.Fatal(err)
	}
	return inlineCluster{Cluster: c, kube: kubernetes.NewForConfigOrDie(c.RESTConfig()), calico: calico}, ctx
}

// podsOf lists the pods with a label selector, failing the test on errors.
func podsOf(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, selector string) []corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func evict(ctx context.Context, cs kubernetes.Interface, p corev1.Pod) error {
	return cs.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}})
}

// The workloads scenario brings up every kind of pod a migration meets, each
// behaving as on a real cluster.
func TestWorkloadsScenario(t *testing.T) {
	_, cs, ctx := startScenario(t, "workloads")
	pool := netip.MustParsePrefix("192.168.0.0/16")

	all, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s/%s: %s, IP %q", p.Namespace, p.Name, p.Status.Phase, p.Status.PodIP)
			continue
		}
		if p.Spec.HostNetwork == pool.Contains(ip) {
			t.Errorf("pod %s/%s hostNetwork=%v has IP %s", p.Namespace, p.Name, p.Spec.HostNetwork, ip)
		}
	}

	t.Run("controllers", func(t *testing.T) {
		if n := len(podsOf(ctx, t, cs, "shop", "app=db")); n != 3 {
			t.Errorf("%d StatefulSet pods, want 3", n)
		}
		if _, err := cs.CoreV1().Pods("shop").Get(ctx, "db-2", metav1.GetOptions{}); err != nil {
			t.Errorf("StatefulSet pod names: %v", err)
		}
		if n := len(podsOf(ctx, t, cs, "kube-system", "app=node-agent")); n != 4 {
			t.Errorf("%d node-agent DaemonSet pods, want one per node (4)", n)
		}
		if n := len(podsOf(ctx, t, cs, "monitoring", "app=node-exporter")); n != 4 {
			t.Errorf("%d host-network DaemonSet pods, want 4", n)
		}
		for _, p := range podsOf(ctx, t, cs, "batch", "app=report") {
			if p.Status.Phase != corev1.PodRunning || p.Annotations[sandbox.AnnotationRunFor] != "1h0m0s" {
				t.Errorf("Job pod %s: %s, run-for %q; want Running for an hour", p.Name, p.Status.Phase, p.Annotations[sandbox.AnnotationRunFor])
			}
		}
		debug, err := cs.CoreV1().Pods("default").Get(ctx, "debug", metav1.GetOptions{})
		if err != nil || len(debug.OwnerReferences) != 0 {
			t.Errorf("bare pod: %v, owners %v", err, debug.OwnerReferences)
		}
	})

	t.Run("pinned pools", func(t *testing.T) {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil || ns.Annotations[cni.AnnotationIPv4Pools] != `["default-ipv4-ippool"]` {
			t.Errorf("namespace legacy: %v, annotations %v", err, ns.Annotations)
		}
		for _, p := range podsOf(ctx, t, cs, "shop", "app=pinned-by-pod") {
			if p.Annotations[cni.AnnotationIPv4Pools] != `["default-ipv4-ippool"]` {
				t.Errorf("pod %s annotations %v", p.Name, p.Annotations)
			}
		}
	})

	t.Run("slow start", func(t *testing.T) {
		for _, p := range podsOf(ctx, t, cs, "shop", "app=slow") {
			ready := condition(p, corev1.PodReady)
			if ready == nil || ready.LastTransitionTime.Sub(p.CreationTimestamp.Time) < 2*time.Second {
				t.Errorf("slow pod %s Ready %v after creation at %v; want >= 3s (2s with timestamp rounding)", p.Name, ready, p.CreationTimestamp)
			}
		}
	})

	t.Run("faults", func(t *testing.T) {
		for _, p := range podsOf(ctx, t, cs, "shop", "app=stuck") {
			if podIsReady(p) || p.Status.PodIP == "" {
				t.Errorf("NeverReady pod %s: Ready=%v IP=%q", p.Name, podIsReady(p), p.Status.PodIP)
			}
		}
		for _, p := range podsOf(ctx, t, cs, "shop", "app=crashy") {
			st := p.Status.ContainerStatuses
			if len(st) != 1 || st[0].State.Waiting == nil || st[0].State.Waiting.Reason != "CrashLoopBackOff" || st[0].RestartCount < 1 {
				t.Errorf("CrashLoop pod %s: %+v", p.Name, st)
			}
		}
	})

	t.Run("budgets", func(t *testing.T) {
		// Two budgets over one pod: the eviction API refuses with 500.
		web := podsOf(ctx, t, cs, "shop", "app=web")
		err := evict(ctx, cs, web[0])
		if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "more than one PodDisruptionBudget") {
			t.Errorf("evicting a pod under two budgets: %v; want 500 'more than one PodDisruptionBudget'", err)
		}
		// Never-Ready pods with minAvailable 1: the budget is unhealthy, so
		// IfHealthyBudget refuses (429) and AlwaysAllow lets the eviction through.
		waitPDBObserved(ctx, t, cs, "shop", "stuck", "stuck-always")
		err = evict(ctx, cs, podsOf(ctx, t, cs, "shop", "app=stuck")[0])
		if !apierrors.IsTooManyRequests(err) {
			t.Errorf("evicting a never-Ready pod under an IfHealthyBudget budget: %v; want 429", err)
		}
		if err := evict(ctx, cs, podsOf(ctx, t, cs, "shop", "app=stuck-always")[0]); err != nil {
			t.Errorf("evicting a never-Ready pod under an AlwaysAllow budget: %v; want it evicted", err)
		}
	})

	t.Run("webhook", func(t *testing.T) {
		vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "policy-system.policy.sandbox.runbook.dev", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hook := vwc.Webhooks[0]
		if *hook.FailurePolicy != "Fail" || hook.ClientConfig.Service.Name != "policy-webhook" {
			t.Errorf("webhook %+v", hook)
		}
		// The Service's endpoints are the policy pods.
		slices, err := cs.DiscoveryV1().EndpointSlices("policy-system").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=policy-webhook"})
		if err != nil || len(slices.Items) == 0 || len(slices.Items[0].Endpoints) != 2 {
			t.Errorf("webhook endpoints: %v %+v", err, slices)
		}
		// A namespace that opts in has its pod creations refused: nothing answers.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "guarded", Labels: map[string]string{sandbox.LabelWebhook: "policy-system.policy"}}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
		_, err = cs.CoreV1().Pods("guarded").Create(ctx, pod, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `failed calling webhook "policy.policy-system.sandbox.runbook.dev"`) {
			t.Errorf("creating a pod under the webhook: %v; want the webhook call to fail", err)
		}
	})
}

// The dual-stack scenario gives every pod an address of each family, from the
// IPv4 and the IPv6 pool.
func TestDualStackScenario(t *testing.T) {
	_, cs, ctx := startScenario(t, "dualstack")
	v4, v6 := netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fd00:192:168::/48")
	pods := podsOf(ctx, t, cs, "shop", "app=web")
	if len(pods) != 3 {
		t.Fatalf("%d pods, want 3", len(pods))
	}
	for _, p := range pods {
		if len(p.Status.PodIPs) != 2 {
			t.Errorf("pod %s podIPs %v, want two", p.Name, p.Status.PodIPs)
			continue
		}
		a, errA := netip.ParseAddr(p.Status.PodIPs[0].IP)
		b, errB := netip.ParseAddr(p.Status.PodIPs[1].IP)
		if errA != nil || errB != nil || !v4.Contains(a) || !v6.Contains(b) || p.Status.PodIP != a.String() {
			t.Errorf("pod %s podIP %s podIPs %v; want IPv4 from %s first, then IPv6 from %s", p.Name, p.Status.PodIP, p.Status.PodIPs, v4, v6)
		}
		if n := strings.Count(p.Annotations[cni.AnnotationPodIPs], ","); n != 1 {
			t.Errorf("pod %s %s = %q", p.Name, cni.AnnotationPodIPs, p.Annotations[cni.AnnotationPodIPs])
		}
	}
	nodes := nodesNow(ctx, t, cs)
	for _, n := range nodes {
		if len(n.Spec.PodCIDRs) != 2 {
			t.Errorf("node %s podCIDRs %v, want one per family (dual-stack --cluster-cidr)", n.Name, n.Spec.PodCIDRs)
		}
	}
}

func condition(p corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func podIsReady(p corev1.Pod) bool {
	c := condition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// waitPDBObserved waits until the disruption controller has computed the budgets.
func waitPDBObserved(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		poll(ctx, t, "PDB "+ns+"/"+name+" observed", func(ctx context.Context) (bool, error) {
			p, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.ObservedGeneration >= p.Generation && p.Status.ExpectedPods > 0, nil
		})
	}
}
