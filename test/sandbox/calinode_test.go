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

// calico-node's real allocateip (v3.28.5, one process per node) keeps every
// node's tunnel address in an enabled pool with matching encapsulation. It moves
// the moment its pool is disabled (a v1-model field, allocateip.go:169-219), and
// goes when no pool fits.
func TestTunnelAddressesFollowThePools(t *testing.T) {
	ic, ctx := startInline(t, tunnelScenario, 2*time.Minute)
	c, cs, calico := ic.Cluster, ic.kube, ic.calico
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

	// allocateip's trigger is lossy: a pool change that arrives while a
	// reconciliation runs is dropped (allocateip.go:211-216, a non-blocking send on
	// the unbuffered channel of l.98-105), and after writing the IPIP address it
	// still rewrites the node for VXLAN and VXLAN v6 (l.262-276). So let every
	// node's reconciliation finish before the next change, as an operator pausing
	// between steps would; a change made sooner is missed on a loaded node until
	// its calico-node restarts.
	time.Sleep(5 * time.Second)

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
	if st := c.CalicoNodeStats(); st.RunOnce < 3 || st.DaemonStarts < 3 || st.RunOnceFailed != 0 {
		t.Errorf("calico-node %+v: want a run-once allocation and a daemon per node, no failure", st)
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

// The stall the old stand-in hid: on Calico 3.28 a pool's nodeSelector and
// allowedUses are not in the v1 pool model allocateip's syncer compares
// (libcalico-go/lib/backend/model/ippool.go:98-107), so neither change moves a
// tunnel address. Restarting calico-node on a node (deleting its pod) does, on
// that node only, and the node is never without an address: the Node keeps the
// old one until the new one is written (allocateip.go:518-563).
func TestTunnelAddressesStallUntilCalicoNodeRestarts(t *testing.T) {
	ic, ctx := startInline(t, tunnelScenario, 3*time.Minute)
	c, cs, calico := ic.Cluster, ic.kube, ic.calico
	old, next := netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("10.0.0.0/16")
	// A new pool is a change every daemon reconciles on; the changes below must come
	// after those reconciliations, or one of them may read them.
	decided := c.CalicoNodeStats().Decisions
	createPool(ctx, t, calico, "new", next.String(), v3.IPIPModeAlways, v3.VXLANModeNever)
	awaitDecisions(ctx, t, c, decided)
	before := map[string]netip.Addr{}
	for _, n := range nodesNow(ctx, t, cs) {
		before[n.Name] = tunnelIn(t, n, ipipAnnotation, old)
	}

	// Each change makes the old pool unfit for the nodes' tunnels, and none is
	// seen by calico-node: every address stays where it is.
	for _, tc := range []struct {
		name   string
		change func(*v3.IPPool)
	}{
		{"allowedUses without Tunnel", func(p *v3.IPPool) { p.Spec.AllowedUses = []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload} }},
		{"nodeSelector !all()", func(p *v3.IPPool) { p.Spec.NodeSelector = "!all()" }},
	} {
		updatePool(ctx, t, calico, "old", tc.change)
		if moved := nodeChanges(ctx, t, cs, 5*time.Second, func(n *corev1.Node) bool {
			return n.Annotations[ipipAnnotation] != before[n.Name].String()
		}); len(moved) > 0 {
			t.Errorf("%s: tunnel addresses moved on %v; calico-node 3.28 does not react to it", tc.name, moved)
		}
	}

	// Restarting calico-node on worker-1 moves its address, and only its.
	const node = "worker-1"
	podsBefore := calicoNodePods(ctx, t, cs)
	victim := podsBefore[node]
	startNode, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := cs.CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	moved, without := watchTunnelMove(ctx, t, cs, startNode, next)
	t.Logf("%s: tunnel address %s -> %s %v after its calico-node pod was deleted; without a tunnel address for %v",
		node, before[node], moved.addr, moved.at.Sub(deleted).Round(time.Millisecond), without)
	if without != 0 {
		t.Errorf("%s was without a tunnel address for %v; allocateip writes the new address over the old", node, without)
	}
	checkAllocation(ctx, t, calico, moved.addr, node, ipam.AttributeTypeIPIP)
	checkReleased(ctx, t, calico, before[node])
	for _, n := range nodesNow(ctx, t, cs) {
		if n.Name != node && n.Annotations[ipipAnnotation] != before[n.Name].String() {
			t.Errorf("node %s: tunnel address %s, want %s: only %s's calico-node restarted", n.Name, n.Annotations[ipipAnnotation], before[n.Name], node)
		}
	}
	// The DaemonSet's new pod is what runs calico-node now, and it is Ready.
	poll(ctx, t, "a new Ready calico-node pod on "+node, func(ctx context.Context) (bool, error) {
		p, ok := calicoNodePods(ctx, t, cs)[node]
		return ok && p.UID != victim.UID && isReady(p), nil
	})
	// The new pod's run-once allocation wrote the address; then its daemon starts.
	poll(ctx, t, "calico-node's daemon running again on "+node, func(context.Context) (bool, error) {
		return c.CalicoNodeStats().DaemonStarts == 4, nil
	})
	if st := c.CalicoNodeStats(); st.PodsStopped != 1 || st.RunOnce != 4 || st.RunOnceFailed != 0 || st.DaemonExits != 0 {
		t.Errorf("calico-node %+v: want one pod stopped, four run-once allocations (three nodes, one restart), no failure", st)
	}
}

// awaitDecisions waits until every node's calico-node daemon has logged a
// tunnel-address decision since the counts in before: the reconciliation a pool
// change kicked off is over.
func awaitDecisions(ctx context.Context, t *testing.T, c *sandbox.Cluster, before map[string]int) {
	t.Helper()
	nodes := c.Scenario().Nodes()
	poll(ctx, t, "every calico-node daemon reconciled", func(context.Context) (bool, error) {
		now := c.CalicoNodeStats().Decisions
		for _, n := range nodes {
			if now[n.Name] <= before[n.Name] {
				return false, nil
			}
		}
		return true, nil
	})
}

// calicoNodePods returns the calico-node pods by node.
func calicoNodePods(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string]corev1.Pod {
	t.Helper()
	list, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=calico-node"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = p
		}
	}
	return out
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeChanges watches the nodes for d and returns those for which changed held
// at some point.
func nodeChanges(ctx context.Context, t *testing.T, cs kubernetes.Interface, d time.Duration, changed func(*corev1.Node) bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	seen := map[string]bool{}
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, func(store cache.Store) (bool, error) {
		for _, obj := range store.List() {
			if n := obj.(*corev1.Node); changed(n) {
				seen[n.Name] = true
			}
		}
		return false, nil
	}, func(e watch.Event) (bool, error) {
		if n, ok := e.Object.(*corev1.Node); ok && changed(n) {
			seen[n.Name] = true
		}
		return false, nil
	})
	if err != nil && ctx.Err() == nil {
		t.Fatalf("watching nodes: %v", err)
	}
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	return out
}

type tunnelSighting struct {
	addr netip.Addr
	at   time.Time
}

// watchTunnelMove follows one node from resource version rv (read before the
// restart, so that no intermediate state is missed) until its IPIP tunnel address
// lies in pool, and returns it and how long the node had no address meanwhile.
func watchTunnelMove(ctx context.Context, t *testing.T, cs kubernetes.Interface, start *corev1.Node, pool netip.Prefix) (tunnelSighting, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		without   time.Duration
		lostSince time.Time
		got       tunnelSighting
	)
	check := func(n *corev1.Node) bool {
		now := time.Now()
		ip, err := netip.ParseAddr(n.Annotations[ipipAnnotation])
		switch {
		case err != nil && lostSince.IsZero():
			lostSince = now
		case err == nil && !lostSince.IsZero():
			without += now.Sub(lostSince)
			lostSince = time.Time{}
		}
		if err == nil && pool.Contains(ip) {
			got = tunnelSighting{addr: ip, at: now}
			return true
		}
		return false
	}
	if check(start) {
		return got, without
	}
	w, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", start.Name).String(),
		ResourceVersion: start.ResourceVersion,
	})
	if err != nil {
		t.Fatalf("watching node %s: %v", start.Name, err)
	}
	defer w.Stop()
	for e := range w.ResultChan() {
		if n, ok := e.Object.(*corev1.Node); ok && check(n) {
			return got, without
		}
	}
	t.Fatalf("waiting for %s's tunnel address in %s: %v (watch closed)", start.Name, pool, ctx.Err())
	return got, without
}

// A run-once allocation that fails ends the calico-node container
// (rc.local:24 `|| exit 1`; allocateip.go:486 logs Fatal when AutoAssign finds no
// address): the pod goes NotReady in CrashLoopBackOff, and the node keeps its old
// address in the Node although IPAM released it (allocateip.go:391-400 releases
// before it assigns). Here the only pool left for tunnels has one address, which
// worker-1's restart takes; worker-2's restart then fails.
func TestCalicoNodeRunOnceFailureKeepsPodNotReady(t *testing.T) {
	ic, ctx := startInline(t, tunnelScenario, 3*time.Minute)
	c, cs, calico := ic.Cluster, ic.kube, ic.calico
	decided := c.CalicoNodeStats().Decisions
	_, err := calico.IPPools().Create(ctx, &v3.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: "tiny"},
		Spec: v3.IPPoolSpec{CIDR: "10.0.0.0/32", BlockSize: 32, IPIPMode: v3.IPIPModeAlways,
			VXLANMode: v3.VXLANModeNever, NATOutgoing: true, NodeSelector: "all()"},
	}, options.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Every daemon reconciles on the new pool (and keeps its address in old); only
	// then may old stop selecting the nodes, or a reconciliation still under way
	// would read that and take tiny's one address.
	awaitDecisions(ctx, t, c, decided)
	updatePool(ctx, t, calico, "old", func(p *v3.IPPool) { p.Spec.NodeSelector = "!all()" })
	tiny := netip.MustParsePrefix("10.0.0.0/32")

	restart := func(node string) corev1.Pod {
		t.Helper()
		victim := calicoNodePods(ctx, t, cs)[node]
		if err := cs.CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		return victim
	}
	restart("worker-1")
	waitNodes(ctx, t, cs, "worker-1's tunnel address in the one-address pool", func(n *corev1.Node) bool {
		ip, err := netip.ParseAddr(n.Annotations[ipipAnnotation])
		return n.Name != "worker-1" || (err == nil && tiny.Contains(ip))
	})

	oldAddr := nodeAnnotationOf(ctx, t, cs, "worker-2", ipipAnnotation)
	victim := restart("worker-2")
	start := time.Now()
	var failed corev1.Pod
	poll(ctx, t, "worker-2's new calico-node pod NotReady in CrashLoopBackOff", func(ctx context.Context) (bool, error) {
		p, ok := calicoNodePods(ctx, t, cs)["worker-2"]
		if !ok || p.UID == victim.UID || isReady(p) {
			return false, nil
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.Name == "calico-node" && st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff" {
				failed = p
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("worker-2's calico-node NotReady %v after its pod was deleted: %s", time.Since(start).Round(time.Millisecond), failed.Status.ContainerStatuses[0].LastTerminationState.Terminated.Message)
	if got := nodeAnnotationOf(ctx, t, cs, "worker-2", ipipAnnotation); got != oldAddr {
		t.Errorf("worker-2's tunnel annotation %q, want the old %q kept by the failed allocation", got, oldAddr)
	}
	checkReleased(ctx, t, calico, netip.MustParseAddr(oldAddr))
	if st := c.CalicoNodeStats(); st.RunOnceFailed == 0 {
		t.Errorf("calico-node %+v: want a failed run-once allocation", st)
	}
}

func nodeAnnotationOf(ctx context.Context, t *testing.T, cs kubernetes.Interface, node, key string) string {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Annotations[key]
}
