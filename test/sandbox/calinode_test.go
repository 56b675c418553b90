package sandbox_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	"github.com/projectcalico/calico/libcalico-go/lib/ipam"
	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

const (
	ipipAnnotation  = "projectcalico.org/IPv4IPIPTunnelAddr"
	vxlanAnnotation = "projectcalico.org/IPv4VXLANTunnelAddr"
	bgpAnnotation   = "projectcalico.org/IPv4Address"
)

const tunnelScenario = `
apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: tunnels
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: old, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 2}
`

// The calico-node stand-in keeps every node's tunnel address where calico-node's
// allocateip keeps it: in an enabled pool with matching encapsulation. It moves the
// moment its pool is disabled, and goes when no pool fits.
func TestTunnelAddressesFollowThePools(t *testing.T) {
	s, err := scenarios.Parse([]byte(tunnelScenario))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	calico, err := c.NewCalicoClient()
	if err != nil {
		t.Fatal(err)
	}
	old, next := netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.0.0.0/16")

	// Ready means every node has its address already, with calico-node's handle and
	// attributes, and its BGP address.
	nodes := nodesNow(ctx, t, cs)
	before := map[string]netip.Addr{}
	for _, n := range nodes {
		ip := tunnelIn(t, n, ipipAnnotation, old)
		checkAllocation(ctx, t, calico, ip, n.Name, ipam.AttributeTypeIPIP)
		if n.Annotations[bgpAnnotation] == "" {
			t.Errorf("node %s has no %s", n.Name, bgpAnnotation)
		}
		before[n.Name] = ip
	}

	// A second IPIP pool changes nothing: the addresses are still valid.
	createPool(ctx, t, calico, "new", next.String(), v3.IPIPModeAlways, v3.VXLANModeNever)
	time.Sleep(500 * time.Millisecond) // give a wrong reaction time to happen
	for _, n := range nodesNow(ctx, t, cs) {
		if got := tunnelIn(t, n, ipipAnnotation, old); got != before[n.Name] {
			t.Errorf("node %s: address moved from %s to %s although its pool still serves it", n.Name, before[n.Name], got)
		}
	}

	// Disabling the old pool moves every address into the new one, releasing the old.
	updatePool(ctx, t, calico, "old", func(p *v3.IPPool) { p.Spec.Disabled = true })
	waitNodes(ctx, t, cs, "tunnel addresses in "+next.String(), func(n *corev1.Node) bool {
		ip, err := netip.ParseAddr(n.Annotations[ipipAnnotation])
		return err == nil && next.Contains(ip)
	})
	for _, n := range nodesNow(ctx, t, cs) {
		checkAllocation(ctx, t, calico, tunnelIn(t, n, ipipAnnotation, next), n.Name, ipam.AttributeTypeIPIP)
		checkReleased(ctx, t, calico, before[n.Name])
	}

	// Switching the new pool to VXLAN: no pool fits IPIP any more, so the IPIP
	// addresses go; every node gets a VXLAN address instead.
	updatePool(ctx, t, calico, "new", func(p *v3.IPPool) {
		p.Spec.IPIPMode, p.Spec.VXLANMode = v3.IPIPModeNever, v3.VXLANModeAlways
	})
	waitNodes(ctx, t, cs, "IPIP addresses gone, VXLAN addresses in "+next.String(), func(n *corev1.Node) bool {
		ip, err := netip.ParseAddr(n.Annotations[vxlanAnnotation])
		_, hasIPIP := n.Annotations[ipipAnnotation]
		return err == nil && next.Contains(ip) && !hasIPIP
	})
	for _, n := range nodesNow(ctx, t, cs) {
		checkAllocation(ctx, t, calico, tunnelIn(t, n, vxlanAnnotation, next), n.Name, ipam.AttributeTypeVXLAN)
		if n.Annotations[bgpAnnotation] == "" {
			t.Errorf("node %s lost its BGP address with its IPIP address", n.Name)
		}
	}
	if st := c.CalicoNodeStats(); st.Assigned < 9 || st.Released < 6 {
		t.Errorf("stats %+v: want >= 9 assigned (3 nodes x 3), >= 6 released", st)
	}
}

func nodesNow(ctx context.Context, t *testing.T, cs kubernetes.Interface) []corev1.Node {
	t.Helper()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func tunnelIn(t *testing.T, n corev1.Node, annotation string, pool netip.Prefix) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(n.Annotations[annotation])
	if err != nil || !pool.Contains(ip) {
		t.Fatalf("node %s: %s = %q, want an address in %s", n.Name, annotation, n.Annotations[annotation], pool)
	}
	return ip
}

// checkAllocation checks the IPAM record of a tunnel address: calico-node's handle
// and attributes.
func checkAllocation(ctx context.Context, t *testing.T, calico clientv3.Interface, ip netip.Addr, node, attrType string) {
	t.Helper()
	attrs, handle, err := calico.IPAM().GetAssignmentAttributes(ctx, cnet.MustParseIP(ip.String()))
	if err != nil {
		t.Fatalf("allocation of %s: %v", ip, err)
	}
	prefix := map[string]string{ipam.AttributeTypeIPIP: "ipip", ipam.AttributeTypeVXLAN: "vxlan"}[attrType]
	if handle == nil || *handle != prefix+"-tunnel-addr-"+node || attrs[ipam.AttributeType] != attrType || attrs[ipam.AttributeNode] != node {
		t.Errorf("allocation of %s: handle %v, attributes %v; want %s-tunnel-addr-%s, type %s", ip, handle, attrs, prefix, node, attrType)
	}
}

func checkReleased(ctx context.Context, t *testing.T, calico clientv3.Interface, ip netip.Addr) {
	t.Helper()
	if attrs, _, err := calico.IPAM().GetAssignmentAttributes(ctx, cnet.MustParseIP(ip.String())); err == nil {
		t.Errorf("old tunnel address %s still allocated (%v)", ip, attrs)
	}
}

func createPool(ctx context.Context, t *testing.T, calico clientv3.Interface, name, cidr string, ipip v3.IPIPMode, vxlan v3.VXLANMode) {
	t.Helper()
	_, err := calico.IPPools().Create(ctx, &v3.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v3.IPPoolSpec{CIDR: cidr, IPIPMode: ipip, VXLANMode: vxlan, NATOutgoing: true, NodeSelector: "all()"},
	}, options.SetOptions{})
	if err != nil {
		t.Fatalf("creating pool %s: %v", name, err)
	}
}

func updatePool(ctx context.Context, t *testing.T, calico clientv3.Interface, name string, change func(*v3.IPPool)) {
	t.Helper()
	p, err := calico.IPPools().Get(ctx, name, options.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(p)
	if _, err := calico.IPPools().Update(ctx, p, options.SetOptions{}); err != nil {
		t.Fatalf("updating pool %s: %v", name, err)
	}
}

// waitNodes watches the nodes until cond holds for every one of them.
func waitNodes(ctx context.Context, t *testing.T, cs kubernetes.Interface, what string, cond func(*corev1.Node) bool) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	state := map[string]bool{}
	allTrue := func() bool {
		for _, ok := range state {
			if !ok {
				return false
			}
		}
		return len(state) > 0
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, func(store cache.Store) (bool, error) {
		for _, obj := range store.List() {
			n := obj.(*corev1.Node)
			state[n.Name] = cond(n)
		}
		return allTrue(), nil
	}, func(e watch.Event) (bool, error) {
		n, ok := e.Object.(*corev1.Node)
		if !ok {
			return false, fmt.Errorf("unexpected watch event %v", e.Type)
		}
		if e.Type == watch.Deleted {
			delete(state, n.Name)
		} else {
			state[n.Name] = cond(n)
		}
		return allTrue(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (per node: %v)", what, err, state)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}
