package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/preflight"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

var (
	dualstackRunbook = filepath.Join("..", "..", "examples", "migrate-ippool-dualstack", "runbook.yaml")
	dualstackValues  = filepath.Join("..", "..", "examples", "migrate-ippool-dualstack", "values", "sandbox.yaml")
)

// TestDualStackExample applies the dual-stack example, unchanged, on the dualstack
// scenario: every pod ends with its IPv4 address in the new IPv4 pool and its IPv6
// address in the new IPv6 pool, both old pools are gone, and applying it again
// is a new run in which every step is unchanged.
func TestDualStackExample(t *testing.T) {
	s, err := scenarios.Load("dualstack")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	t.Logf("dualstack sandbox ready in %s", time.Since(start).Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)

	// The plan moves both families and nothing blocks.
	_, p := planJSON(t, c, dualstackRunbook, "-f", dualstackValues)
	if b := preflight.Blocking(p.Preflight); len(b) > 0 {
		t.Fatalf("blocking findings: %v", b)
	}
	for _, f := range p.Preflight {
		t.Logf("preflight %s %s", f.Severity, f)
	}

	start = time.Now()
	runCLI(t, c, "apply", dualstackRunbook, "-f", dualstackValues, "--yes").Must(t, 0)
	t.Logf("dual-stack migration applied in %s", time.Since(start).Round(100*time.Millisecond))

	new4, new6 := netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00:10::/56")
	pods, err := r.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, pod := range pods.Items {
		if pod.Spec.HostNetwork || pod.Status.Phase != "Running" {
			continue
		}
		var has4, has6 bool
		for _, ip := range pod.Status.PodIPs {
			a := netip.MustParseAddr(ip.IP)
			has4 = has4 || new4.Contains(a)
			has6 = has6 || new6.Contains(a)
		}
		if !has4 || !has6 {
			t.Errorf("pod %s/%s has %v, want one address in %s and one in %s", pod.Namespace, pod.Name, pod.Status.PodIPs, new4, new6)
		}
		moved++
	}
	if moved == 0 {
		t.Fatal("no running pod to check")
	}
	for _, old := range []string{"default-ipv4-ippool", "default-ipv6-ippool"} {
		if _, err := r.dyn.Resource(ippools).Get(ctx, old, metav1.GetOptions{}); err == nil {
			t.Errorf("pool %s still exists", old)
		}
	}
	t.Logf("%d running pods, each with both addresses in the new pools", moved)

	// Applying again: a new run, every step unchanged.
	report := filepath.Join(t.TempDir(), "again.json")
	runCLI(t, c, "apply", dualstackRunbook, "-f", dualstackValues, "--yes", "--report", report).Must(t, 0)
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep engine.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != engine.StatusDone || rep.Resumed || len(rep.Steps) != 12 {
		t.Fatalf("re-apply: %+v", rep)
	}
	for _, st := range rep.Steps {
		if st.Changed || (st.Status != engine.StatusDone && st.Status != engine.StatusSkipped) {
			t.Errorf("re-apply: step %s %s changed=%v: %s", st.ID, st.Status, st.Changed, st.Message)
		}
	}
}
