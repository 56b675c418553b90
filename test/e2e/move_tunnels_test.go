package e2e

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/internal/tunnelmove"
	"github.com/runbookdev/runbook/test/sandbox"
)

const addTunnelPoolRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: add-tunnel-pool}
steps:
  - id: add
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: true}
`

const moveTunnelsRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: move-tunnels}
steps:
  - id: move-tunnels
    action: moveTunnelAddresses
    with: {pool: default-ipv4-ippool, nodeTimeout: 2m}
    assert: len(tunnelAddresses("default-ipv4-ippool")) == 0
`

// TestMoveTunnelAddresses is the tigera-operator v1.34 situation on the real
// calico-node tunnel allocator (allocateip, one process per node tied to its
// calico-node pod): a pool "disabled" by nodeSelector "!all()" keeps every
// node's tunnel address — the stall a stand-in reacting to any pool change hid —
// and moveTunnelAddresses moves them by restarting calico-node one node at a time.
func TestMoveTunnelAddresses(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	before := tunnelsIn(ctx, t, r, oldPool)
	if len(before) == 0 {
		t.Fatal("no node has a tunnel address in the old pool: is calico-node running?")
	}
	if _, err := r.run(ctx, t, addTunnelPoolRunbook, runOpts{}); err != nil {
		t.Fatalf("add new-pool: %v", err)
	}
	pods := calicoNodePodUIDs(ctx, t, r)

	t.Run("refused while the pool still serves the addresses: nothing restarted", func(t *testing.T) {
		rep, err := r.run(ctx, t, moveTunnelsRunbook, runOpts{journal: "refused"})
		if exitcode.Of(err) != exitcode.StepFailed || rep == nil {
			t.Fatalf("want a refusal, got %v", err)
		}
		mustContain(t, "refusal", step(t, rep, "move-tunnels").Error, actions.ErrRefused.Error(),
			"pool default-ipv4-ippool still serves", "disable it first")
		if now := calicoNodePodUIDs(ctx, t, r); !sameUIDs(now, pods) {
			t.Errorf("calico-node pods changed on a refusal: %v -> %v", pods, now)
		}
	})

	// What tigera-operator v1.34 writes for "disable" (it has no disableNewAllocations).
	if _, err := r.dyn.Resource(ippools).Patch(ctx, "default-ipv4-ippool", types.MergePatchType, []byte(`{"spec":{"nodeSelector":"!all()"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Run("a nodeSelector change moves no tunnel address", func(t *testing.T) {
		time.Sleep(8 * time.Second) // real allocateip reacts to a pool event within a second when it does
		if now := tunnelsIn(ctx, t, r, oldPool); len(now) != len(before) {
			t.Fatalf("tunnel addresses in the old pool went from %d to %d without a restart: the sandbox's calico-node is not Calico 3.28's", len(before), len(now))
		}
	})

	t.Run("restarts calico-node node by node until none is left", func(t *testing.T) {
		watch := watchCalicoNodes(ctx, t, r)
		rep, err := r.run(ctx, t, moveTunnelsRunbook, runOpts{})
		watch.stop()
		if err != nil {
			t.Fatalf("apply: %v (%+v)", err, rep)
		}
		s := step(t, rep, "move-tunnels")
		t.Logf("move-tunnels: %s in %s", s.Message, s.Duration)
		mustContain(t, "message", s.Message, "restarted calico-node on", "one at a time")
		if !s.Changed {
			t.Error("move-tunnels reported no change")
		}
		if left := tunnelsIn(ctx, t, r, oldPool); len(left) != 0 {
			t.Errorf("tunnel addresses left in the old pool: %v", left)
		}
		newPool := netip.MustParsePrefix("10.0.0.0/16")
		for node := range before {
			if got := tunnelsIn(ctx, t, r, newPool)[node]; !got.IsValid() {
				t.Errorf("node %s has no tunnel address in new-pool", node)
			}
		}
		now := calicoNodePodUIDs(ctx, t, r)
		for node := range before {
			if now[node] == pods[node] {
				t.Errorf("calico-node on %s was not restarted", node)
			}
		}
		if watch.maxDown > 1 {
			t.Errorf("up to %d nodes were without a Ready calico-node at once, want 1", watch.maxDown)
		}
		if watch.maxGap > 0 {
			t.Errorf("a node published no tunnel address for %s", watch.maxGap)
		}
		t.Logf("restarted %d calico-node pods; at most %d node without a Ready one at a time; longest time without a tunnel address %s", len(before), watch.maxDown, watch.maxGap)
	})

	t.Run("again: unchanged", func(t *testing.T) {
		uids := calicoNodePodUIDs(ctx, t, r)
		rep, err := r.run(ctx, t, moveTunnelsRunbook, runOpts{journal: "again"})
		if err != nil || rep.Status != engine.StatusDone {
			t.Fatalf("re-run: %v", err)
		}
		if s := step(t, rep, "move-tunnels"); s.Changed {
			t.Errorf("re-run changed something: %s", s.Message)
		}
		if now := calicoNodePodUIDs(ctx, t, r); !sameUIDs(now, uids) {
			t.Errorf("re-run restarted calico-node: %v -> %v", uids, now)
		}
	})
}

// tunnelsIn maps each node with an IPIP tunnel address in prefix to it.
func tunnelsIn(ctx context.Context, t *testing.T, r *poolRig, prefix netip.Prefix) map[string]netip.Addr {
	t.Helper()
	nodes, err := r.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netip.Addr{}
	for i := range nodes.Items {
		n := calico.NodeFromObject(&nodes.Items[i])
		if ip := n.Tunnels[calico.TunnelIPIP]; ip.IsValid() && prefix.Contains(ip) {
			out[n.Name] = ip
		}
	}
	return out
}

func calicoNodePodUIDs(ctx context.Context, t *testing.T, r *poolRig) map[string]types.UID {
	t.Helper()
	pods, err := tunnelmove.CalicoNodePods(ctx, r.kube)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for node, p := range pods {
		out[node] = p.UID
	}
	return out
}

func sameUIDs(a, b map[string]types.UID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// nodeWatch records, from watches, how many nodes at once had no Ready
// calico-node pod and the longest time a node published no IPIP tunnel address.
type nodeWatch struct {
	mu      sync.Mutex
	maxDown int
	maxGap  time.Duration
	stop    func()
}

func watchCalicoNodes(ctx context.Context, t *testing.T, r *poolRig) *nodeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &nodeWatch{}
	pw, err := r.kube.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: tunnelmove.PodLabel})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := r.kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ready := map[string]map[types.UID]bool{} // node -> pod -> Ready
		for ev := range pw.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Spec.NodeName == "" {
				continue // a DaemonSet's new pod is scheduled onto its node after it is created
			}
			if ready[p.Spec.NodeName] == nil {
				ready[p.Spec.NodeName] = map[types.UID]bool{}
			}
			if ev.Type == watch.Deleted || p.DeletionTimestamp != nil {
				delete(ready[p.Spec.NodeName], p.UID)
			} else {
				ready[p.Spec.NodeName][p.UID] = kubeclient.PodReady(p)
			}
			down := 0
			for _, pods := range ready {
				up := false
				for _, r := range pods {
					up = up || r
				}
				if !up {
					down++
				}
			}
			w.mu.Lock()
			w.maxDown = max(w.maxDown, down)
			w.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		since := map[string]time.Time{}
		for ev := range nw.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				continue
			}
			has := calico.NodeFromObject(n).Tunnels[calico.TunnelIPIP].IsValid()
			from, open := since[n.Name]
			switch {
			case !has && !open:
				since[n.Name] = time.Now()
			case has && open:
				w.mu.Lock()
				w.maxGap = max(w.maxGap, time.Since(from))
				w.mu.Unlock()
				delete(since, n.Name)
			}
		}
	}()
	w.stop = func() {
		cancel()
		pw.Stop()
		nw.Stop()
		wg.Wait()
	}
	return w
}
