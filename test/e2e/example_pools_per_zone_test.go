package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

var (
	zonesRunbook = filepath.Join("..", "..", "examples", "pools-per-zone", "runbook.yaml")
	zonesValues  = filepath.Join("..", "..", "examples", "pools-per-zone", "values", "sandbox.yaml")
	// The zone pools of values/sandbox.yaml.
	zoneCIDRs = map[string]netip.Prefix{"zone-a": netip.MustParsePrefix("10.0.0.0/18"), "zone-b": netip.MustParsePrefix("10.0.64.0/18")}
)

// TestExamplePoolsPerZone runs examples/pools-per-zone on the zones scenario
// (Calico's "assign IP addresses based on topology"): one ensurePool and one
// assertNewAllocations per zone from a list param (forEach). Items that make
// a bad step are refused before the cluster is touched; the plan names one
// step per zone; apply is killed with SIGKILL while the first zone is being
// verified and resumed; every pod ends in its node's zone pool, the test
// namespaces are gone, and applying again changes nothing. On a manifest
// install and on an operator install (pools through the Installation).
func TestExamplePoolsPerZone(t *testing.T) {
	for _, flavour := range []string{sandbox.FlavourCRD, sandbox.FlavourOperator} {
		t.Run(flavour, func(t *testing.T) { testPoolsPerZone(t, flavour) })
	}
}

func testPoolsPerZone(t *testing.T, flavour string) {
	s, err := scenarios.Load("zones")
	if err != nil {
		t.Fatal(err)
	}
	r := newScenarioRig(t, flavour, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Items that would make two steps of one id, or a pool Calico refuses: exit 11,
	// nothing created.
	res, _ := r.cli(t, "plan", zonesRunbook, "--set", "zones={x,X}")
	res.Must(t, 11, `gives step id "add-zone-pool-x", already the id of`, "steps[0].forEach")
	res, _ = r.cli(t, "apply", zonesRunbook, "--set", "zones={zone-a}", "--yes")
	res.Must(t, 11, "steps[0].with.cidr", `the item is "zone-a", not a map`)
	// A zone left out: its nodes would have no pool once the shared one is disabled.
	oneZone := filepath.Join(t.TempDir(), "one-zone.yaml")
	if err := os.WriteFile(oneZone, []byte("zones:\n  - {name: zone-a, cidr: 10.0.0.0/18}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, _ = r.cli(t, "apply", zonesRunbook, "-f", oneZone, "--yes")
	res.Must(t, 11, "selected by no new pool", "worker-b-1", "worker-b-2")
	for zone := range zoneCIDRs {
		if _, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "pool-"+zone, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("pool-%s after refused runs: %v", zone, err)
		}
	}

	res, _ = r.cli(t, "plan", zonesRunbook, "-f", zonesValues)
	res.Must(t, 4, "+ add-zone-pool-zone-a:", "+ add-zone-pool-zone-b:",
		"pool-zone-a 10.0.0.0/18", "topology.kubernetes.io/zone == 'zone-a'",
		"move to pool-zone-a (10.0.0.0/18), pool-zone-b (10.0.64.0/18)",
		"? verify-zone-zone-a:", "? verify-zone-zone-b:",
		`label topology.kubernetes.io/zone is not "zone-a"`,
		"6 step(s) would change the cluster")
	if strings.Contains(res.Stdout, "BLOCK") {
		t.Errorf("plan refused:\n%s", res.Output())
	}
	requirePlanOutput(t, "plan-pools-per-zone-"+flavour+".golden", res.Stdout)

	// Killed while the first zone is verified: that instance and the second are left.
	r.applyKilledWhen(ctx, t, "zone-a's test namespace", func(ctx context.Context) (bool, error) {
		_, err := r.kube.CoreV1().Namespaces().Get(ctx, "zone-test-zone-a", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}, zonesRunbook, "-f", zonesValues)

	res, rep := r.cli(t, "apply", zonesRunbook, "-f", zonesValues, "--yes")
	res.Must(t, 0, "resuming run")
	for _, id := range []string{"add-zone-pool-zone-a", "add-zone-pool-zone-b", "move-pods", "verify-zone-zone-a", "verify-zone-zone-b"} {
		if st := step(t, rep, id); st.Status != "done" {
			t.Errorf("resumed run: step %s %s: %s", id, st.Status, st.Error)
		}
	}
	if st := step(t, rep, "delete-old-pool"); st.Status != "done" || !st.Changed {
		t.Errorf("resumed run: delete-old-pool %s changed=%t: %s", st.Status, st.Changed, st.Error)
	}
	requirePodsInZonePools(ctx, t, r)
	for zone := range zoneCIDRs {
		if ns, err := r.kube.CoreV1().Namespaces().Get(ctx, "zone-test-"+zone, metav1.GetOptions{}); err == nil && ns.DeletionTimestamp == nil {
			t.Errorf("test namespace zone-test-%s left behind", zone)
		}
	}

	res, _ = r.cli(t, "plan", zonesRunbook, "-f", zonesValues)
	res.Must(t, 0, "0 step(s) would change the cluster")
	res, rep = r.cli(t, "apply", zonesRunbook, "-f", zonesValues, "--yes")
	res.Must(t, 0)
	requireStepsUnchanged(t, rep, 8) // 6 steps, two of them for each of 2 zones
}

// requirePodsInZonePools: every pod with a pool address has it from its node's
// zone pool.
func requirePodsInZonePools(ctx context.Context, t *testing.T, r *flavourRig) {
	t.Helper()
	nodes, err := r.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zoneOf := map[string]string{}
	for _, n := range nodes.Items {
		zoneOf[n.Name] = n.Labels["topology.kubernetes.io/zone"]
	}
	moved := 0
	for _, p := range podsIn(ctx, t, r.kube, netip.MustParsePrefix("0.0.0.0/0")) {
		if p.Spec.HostNetwork || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		ip := netip.MustParseAddr(p.Status.PodIP)
		want := zoneCIDRs[zoneOf[p.Spec.NodeName]]
		if !want.Contains(ip) {
			t.Errorf("pod %s/%s on %s (%s) has %s, not in %s", p.Namespace, p.Name, p.Spec.NodeName, zoneOf[p.Spec.NodeName], ip, want)
			continue
		}
		moved++
	}
	if moved < 8 {
		t.Errorf("only %d pod(s) in the zone pools", moved)
	}
	t.Logf("%d pod(s), each in its node's zone pool", moved)
}
