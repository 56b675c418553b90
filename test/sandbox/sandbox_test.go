package sandbox_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
)

func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }

// The default scenario comes up with every workload pod Running on an address of
// default-ipv4-ippool, and host-network pods on their node's address.
func TestDefaultScenarioPodsHavePoolAddresses(t *testing.T) {
	c := sandbox.ForTest(t)
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("192.168.0.0/16")
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil {
			t.Errorf("pod %s/%s: no IP (%q)", p.Namespace, p.Name, p.Status.PodIP)
			continue
		}
		if p.Spec.HostNetwork != !pool.Contains(ip) {
			t.Errorf("pod %s/%s hostNetwork=%v has IP %s", p.Namespace, p.Name, p.Spec.HostNetwork, ip)
		}
	}
	t.Logf("%d pods, CNI stats %+v", len(pods.Items), c.CNIStats())
}
