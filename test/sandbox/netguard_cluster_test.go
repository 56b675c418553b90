package sandbox

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/scenarios"
)

// guardScenario has a range of every kind, both families, a non-default Service
// subnet (the guard derives, not hard-codes) and a webhook nothing serves.
const guardScenario = `apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: netguard
description: every kind of guarded range, both families, a webhook nothing serves
cluster: {podSubnet: "10.0.0.0/16,fd00:10::/56", serviceSubnet: 10.128.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
  - {name: default-ipv6-ippool, cidr: 'fd00:192:168::/48'}
  cni: {assignIPv6: true}
pods: {startDelay: 200ms}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker}
workloads:
- {name: policy, namespace: policy-system, replicas: 1, webhook: {failurePolicy: Fail}}
`

func loadGuardScenario(t *testing.T) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Parse([]byte(guardScenario))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// With the routes up, every guarded range is unreachable from the host (and a
// webhook call fails at once with EHOSTUNREACH); after Stop the route table is
// what it was before Start.
func TestNetworkGuardRoutes(t *testing.T) {
	requireTools(t, Options{})
	s := loadGuardScenario(t)
	cidrs, err := guardedCIDRs(s, FlavourCRD)
	if err != nil {
		t.Fatal(err)
	}
	if table, reason := routesPossible(cidrs); table == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true runs as root on a plain host, but routes mode is not possible (%s): the network guard's routes are not tested", reason)
		}
		t.Skipf("routes mode is not possible here (%s); TestNetworkGuardEgressProxy covers this machine", reason)
	}
	t.Setenv(NetworkGuardEnv, GuardRoutes) // fail rather than fall back
	before := routeTables(t)

	c := StartForTest(t, Options{Scenario: s})
	g := c.NetworkGuard()
	t.Logf("network guard: %s", g)
	if g.Mode != GuardRoutes {
		t.Fatalf("mode %s (%s), want routes", g.Mode, g.Reason)
	}
	// The ranges of the scenario, each guarded (read here off the scenario itself).
	want := []string{"192.168.0.0/16", "fd00:192:168::/48", "10.0.0.0/16", "fd00:10::/56", "10.128.0.0/16", "172.18.0.0/16"}
	if got := joinPrefixes(g.CIDRs); got != strings.Join(want, ", ") {
		t.Errorf("guarded %s, want %s", got, strings.Join(want, ", "))
	}
	for _, p := range g.CIDRs {
		addr := p.Addr().Next()
		if slices.Contains(g.PreExisting, p) {
			t.Logf("%s: a pre-existing route of someone else's, left alone", p)
			continue
		}
		out, err := exec.Command("ip", "route", "get", addr.String()).CombinedOutput()
		if !(err != nil && strings.Contains(string(out), "No route to host")) && !strings.HasPrefix(string(out), "unreachable") {
			t.Errorf("ip route get %s (in %s): %s (%v); want unreachable", addr, p, strings.TrimSpace(string(out)), err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	err = createUnderWebhook(ctx, t, cs)
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "policy.policy-system.sandbox.runbook.dev"`) || !strings.Contains(err.Error(), "no route to host") {
		t.Errorf("pod creation under the webhook: %v; want the call to fail with no route to host", err)
	}
	// The apiserver answers 500 without the cause; its log has the dial's outcome.
	if node, err := kubeletLogs(ctx, t, cs); err == nil || !apiserverLogged(t, c, "dial tcp "+node+":10250: connect: no route to host") {
		t.Errorf("logs of a pod (the apiserver dials the kubelet at %s): %v; want no route to host in the apiserver's log", node, err)
	}
	checkClusterDialTargets(ctx, t, c)

	stopCtx, cancelStop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStop()
	if err := c.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	compareRouteTables(t, before, routeTables(t))
}

// Without routes (as without root), nothing the apiserver dials leaves loopback:
// the egress proxy refuses the webhook's ClusterIP and the kubelet, and carries
// the aggregated Calico API — also across an apiserver restart.
func TestNetworkGuardEgressProxy(t *testing.T) {
	requireTools(t, Options{})
	t.Setenv(NetworkGuardEnv, GuardEgressProxy)
	s := loadGuardScenario(t)
	c := StartForTest(t, Options{Scenario: s, Flavour: FlavourAPIServer})
	g := c.NetworkGuard()
	t.Logf("network guard: %s", g)
	if g.Mode != GuardEgressProxy {
		t.Fatalf("mode %s, want %s", g.Mode, GuardEgressProxy)
	}
	if owners, _ := filepath.Glob(filepath.Join(routeStateDir, "*.json")); len(owners) > 0 {
		for _, o := range owners {
			if data, err := os.ReadFile(o); err == nil && strings.Contains(string(data), jsonString(c.workDir)) {
				t.Errorf("egress-proxy mode took routes: %s", data)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	v3Pools := schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	for round := range 2 {
		refused := c.guard.egress.Refused()
		err := createUnderWebhook(ctx, t, cs)
		if err == nil || !strings.Contains(err.Error(), `failed calling webhook "policy.policy-system.sandbox.runbook.dev"`) || !strings.Contains(err.Error(), "sandbox network guard") {
			t.Errorf("round %d: pod creation under the webhook: %v; want the call refused by the network guard", round, err)
		}
		if node, err := kubeletLogs(ctx, t, cs); err == nil || !apiserverLogged(t, c, "sandbox network guard: "+node+":10250 is not on this machine") {
			t.Errorf("round %d: logs of a pod (the apiserver dials the kubelet at %s): %v; want the dial refused by the network guard", round, node, err)
		}
		if c.guard.egress.Refused() <= refused {
			t.Errorf("round %d: the egress proxy refused nothing", round)
		}
		if l, err := dyn.Resource(v3Pools).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 2 {
			t.Errorf("round %d: v3 pools through the aggregated API (the egress proxy to loopback): %v", round, err)
		}
		if round == 0 {
			checkClusterDialTargets(ctx, t, c)
			if _, err := c.Restart(ctx, APIServer); err != nil {
				t.Fatal(err)
			}
			if err := waitAPIServiceAvailable(ctx, c.admin, calicoAPIServiceName, calicoAPIReadyTimeout); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Everything the package's shared cluster is configured to dial is loopback or
// guarded.
func TestDialTargets(t *testing.T) {
	c := ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Logf("network guard: %s", c.NetworkGuard())
	checkClusterDialTargets(ctx, t, c)
}

// checkClusterDialTargets takes the inventory of a running cluster and checks
// every entry.
func checkClusterDialTargets(ctx context.Context, t *testing.T, c *Cluster) {
	t.Helper()
	inv, err := clusterDialTargets(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]int{}
	for _, tg := range inv.targets {
		from[tg.From]++
		t.Logf("dials: %s", tg)
	}
	for _, name := range []string{Etcd, APIServer, ControllerManager, Scheduler, Kwok, "in-process stand-ins and tests"} {
		if from[name] == 0 {
			t.Errorf("the inventory has nothing %s dials: %v", name, from)
		}
	}
	t.Logf("%d dial targets (%v); egress contexts through the guard's proxy: %v", len(inv.targets), from, inv.proxied)
	for _, err := range checkDialTargets(inv, c.NetworkGuard()) {
		t.Error(err)
	}
}

// createUnderWebhook creates a pod in a namespace the scenario's webhook guards.
func createUnderWebhook(ctx context.Context, t *testing.T, cs kubernetes.Interface) error {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "guarded", Labels: map[string]string{LabelWebhook: "policy-system.policy"}}}
	if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, ns, "namespace guarded"); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}
	_, err := cs.CoreV1().Pods("guarded").Create(ctx, pod, metav1.CreateOptions{})
	return err
}

// kubeletLogs asks for the logs of a scenario pod, for which the apiserver dials
// the kubelet of the pod's node; it returns the node's address.
func kubeletLogs(ctx context.Context, t *testing.T, cs kubernetes.Interface) (string, error) {
	t.Helper()
	pods, err := cs.CoreV1().Pods("policy-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("policy pods: %v (%d)", err, len(pods.Items))
	}
	p := pods.Items[0]
	_, err = cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return p.Status.HostIP, err
}

// apiserverLogged reports whether the apiserver's log has the text.
func apiserverLogged(t *testing.T, c *Cluster, text string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.LogDir(), APIServer+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), text)
}

// routeTables is `ip route show` and `ip -6 route show` in full.
func routeTables(t *testing.T) string {
	t.Helper()
	var out []string
	for _, family := range []string{"-4", "-6"} {
		b, err := exec.Command("ip", family, "route", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s route show: %v: %s", family, err, b)
		}
		out = append(out, string(b))
	}
	return strings.Join(out, "--- IPv6 ---\n")
}

// compareRouteTables wants after == before. Other sandboxes of the host may start
// or stop meanwhile: a difference in the guard's own routes is accepted only if
// the routes left are exactly those their live owners account for.
func compareRouteTables(t *testing.T, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	ourProto := "proto " + strconv.Itoa(routeProto)
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, ourProto) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(before) != strip(after) {
		t.Fatalf("route table after Stop:\n%s\nwant as before Start:\n%s", after, before)
	}
	owners, err := liveOwners(routeStateDir)
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[string]bool{}
	for _, o := range owners {
		for _, c := range o.CIDRs {
			claimed[c] = true
		}
	}
	for _, l := range strings.Split(after, "\n") {
		if f := strings.Fields(l); strings.Contains(l, ourProto) && len(f) > 1 && !claimed[hostPrefix(f[1])] {
			t.Errorf("route %q left after Stop, and no live sandbox claims it", l)
		}
	}
	t.Logf("other sandboxes changed the guard's routes meanwhile (%d live owners); the rest of the table is as before", len(owners))
}

// hostPrefix writes ip's host-route form ("10.1.2.3") as a prefix.
func hostPrefix(s string) string {
	if strings.Contains(s, "/") {
		return s
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return s
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
