package actions

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/runbookdev/runbook/internal/calico"
)

func node(name, zone string, mod ...func(*calico.Node)) calico.Node {
	n := calico.Node{Name: name, Ready: true, Labels: map[string]string{"kubernetes.io/hostname": name}}
	if zone != "" {
		n.Labels[zoneLabel] = zone
	}
	for _, m := range mod {
		m(&n)
	}
	return n
}

func nodeNames(ns []calico.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestPickNodes(t *testing.T) {
	pool := &calico.Pool{Name: "new", CIDR: netip.MustParsePrefix("10.0.0.0/16"), Spec: calico.WithDefaults(v3.IPPoolSpec{CIDR: "10.0.0.0/16"})}
	cpTaint := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	nodes := []calico.Node{
		node("cp", "", func(n *calico.Node) { n.Taints = []corev1.Taint{cpTaint} }),
		node("w1", ""), node("w2", ""),
		node("down", "", func(n *calico.Node) { n.Ready = false }),
		node("cordoned", "", func(n *calico.Node) { n.Unschedulable = true }),
		node("prefer", "", func(n *calico.Node) {
			n.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}}
		}),
	}
	picked, skipped := pickNodes(nodes, pool, nil, nil, 20)
	if got := nodeNames(picked); !reflect.DeepEqual(got, []string{"prefer", "w1", "w2"}) {
		t.Errorf("picked %v", got)
	}
	if got := strings.Join(skipped, "; "); !strings.Contains(got, "cp: taint node-role.kubernetes.io/control-plane=:NoSchedule is not tolerated") ||
		!strings.Contains(got, "down: not Ready") || !strings.Contains(got, "cordoned: cordoned") {
		t.Errorf("skipped %q", got)
	}
	tol := []corev1.Toleration{{Key: cpTaint.Key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	if picked, _ := pickNodes(nodes, pool, nil, tol, 20); len(picked) != 4 {
		t.Errorf("with the toleration: %v", nodeNames(picked))
	}
	if picked, _ := pickNodes(nodes, pool, map[string]string{"kubernetes.io/hostname": "w2"}, nil, 20); !reflect.DeepEqual(nodeNames(picked), []string{"w2"}) {
		t.Errorf("by label: %v", nodeNames(picked))
	}
	workers := *pool
	workers.Spec.NodeSelector = "kubernetes.io/hostname in {'w1'}"
	if picked, _ := pickNodes(nodes, &workers, nil, nil, 20); !reflect.DeepEqual(nodeNames(picked), []string{"w1"}) {
		t.Errorf("by pool nodeSelector: %v", nodeNames(picked))
	}
}

// TestPickNodesSamplesAcrossZones: a capped sample takes nodes round-robin from
// every zone instead of the first N names.
func TestPickNodesSamplesAcrossZones(t *testing.T) {
	pool := &calico.Pool{Name: "new", CIDR: netip.MustParsePrefix("10.0.0.0/16"), Spec: calico.WithDefaults(v3.IPPoolSpec{CIDR: "10.0.0.0/16"})}
	var nodes []calico.Node
	for _, z := range []string{"a", "b", "c"} {
		for i := 0; i < 10; i++ {
			nodes = append(nodes, node(fmt.Sprintf("%s-%02d", z, i), "zone-"+z))
		}
	}
	picked, _ := pickNodes(nodes, pool, nil, nil, 5)
	if got := nodeNames(picked); !reflect.DeepEqual(got, []string{"a-00", "a-01", "b-00", "b-01", "c-00"}) {
		t.Errorf("picked %v", got)
	}
}

func TestProbePodName(t *testing.T) {
	if got := probePodName("worker-1"); got != "probe-worker-1" {
		t.Errorf("short: %s", got)
	}
	long := strings.Repeat("n", 100) + ".example.com"
	if got := probePodName(long); len(got) > 63 || !strings.HasPrefix(got, "probe-") || got != probePodName(long) {
		t.Errorf("long: %s", got)
	}
}
