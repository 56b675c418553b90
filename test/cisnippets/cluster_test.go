package cisnippets

import (
	"context"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
)

// requireMigrated checks the cluster after an apply: no pod left with an address
// in the old pool (192.168.0.0/16, the scenario's default pool).
func requireMigrated(t *testing.T, c *sandbox.Cluster) {
	t.Helper()
	old := netip.MustParsePrefix("192.168.0.0/16")
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	pods, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.Status.PodIP == "" {
			continue
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil {
			continue
		}
		if old.Contains(ip) {
			t.Errorf("pod %s/%s still has %s in the old pool", p.Namespace, p.Name, ip)
		} else {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no pod with an address at all")
	}
}
