package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/test/sandbox"
)

// movePodsRunbook is the migration up to the move: add the new pool, disable the
// old one (both with rollback: auto), move the pods with the given extra `with:`.
func movePodsRunbook(name, with string) string {
	return fmt.Sprintf(`apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: %s}
onFailure: rollback
steps:
  - id: add-new-pool
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: true}
    rollback: auto
  - id: disable-old-pool
    action: disablePool
    with: {name: default-ipv4-ippool}
    rollback: auto
  - id: move-pods
    action: deletePodsInPool
    with: {pool: default-ipv4-ippool, targetPool: new-pool%s}
`, name, with)
}

// podEvents collects deletePodsInPool's live events.
type podEvents struct {
	mu  sync.Mutex
	all []actions.PodMoveEvent
}

func (e *podEvents) ctx(ctx context.Context, t *testing.T) context.Context {
	return actions.WithPodMoveEvents(ctx, func(step string, ev actions.PodMoveEvent) {
		e.mu.Lock()
		e.all = append(e.all, ev)
		e.mu.Unlock()
		if ev.Type != "pod.evicted" && ev.Type != "pod.replaced" {
			t.Logf("%s: %s %s %s moved=%d/%d replaced=%d inFlight=%d waitingOnPDB=%d", step, ev.Type, ev.Pod, ev.Message, ev.Moved, ev.Total, ev.Replaced, ev.InFlight, ev.WaitingOnPDB)
		}
	})
}

func (e *podEvents) count(typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// availability watches Deployments' pods and records, per Deployment, the fewest
// Ready (and not terminating) pods seen: what a PDB protects.
type availability struct {
	mu    sync.Mutex
	ready map[string]map[string]bool // deployment -> pod -> ready
	min   map[string]int
	stop  context.CancelFunc
}

func watchAvailability(ctx context.Context, t *testing.T, cs kubernetes.Interface) *availability {
	t.Helper()
	a := &availability{ready: map[string]map[string]bool{}, min: map[string]int{}}
	ctx, a.stop = context.WithCancel(ctx)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.CoreV1().Pods("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Pods("").Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	update := func(obj any, gone bool) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				p, _ = d.Obj.(*corev1.Pod)
			}
		}
		if p == nil || len(p.OwnerReferences) == 0 || p.OwnerReferences[0].Kind != "ReplicaSet" {
			return
		}
		rs := p.OwnerReferences[0].Name
		dep := p.Namespace + "/" + rs[:strings.LastIndexByte(rs, '-')]
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.ready[dep] == nil {
			a.ready[dep] = map[string]bool{}
		}
		a.ready[dep][p.Name] = !gone && ready(p)
		n := 0
		for _, r := range a.ready[dep] {
			if r {
				n++
			}
		}
		if m, ok := a.min[dep]; !ok || n < m {
			a.min[dep] = n
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { update(o, false) },
		UpdateFunc: func(_, o any) { update(o, false) },
		DeleteFunc: func(o any) { update(o, true) },
	})
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("availability watch did not sync")
	}
	a.mu.Lock()
	for dep, pods := range a.ready { // start from the synced state, not the first pod added
		n := 0
		for _, r := range pods {
			if r {
				n++
			}
		}
		a.min[dep] = n
	}
	a.mu.Unlock()
	return a
}

// requireAtLeast fails for every Deployment that dipped below want(deployment).
func (a *availability) requireAtLeast(t *testing.T, want map[string]int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var deps []string
	for d := range want {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	for _, d := range deps {
		if a.min[d] < want[d] {
			t.Errorf("Deployment %s dropped to %d Ready pods, its budget needs %d", d, a.min[d], want[d])
		} else {
			t.Logf("Deployment %s: at least %d Ready throughout (budget %d)", d, a.min[d], want[d])
		}
	}
}

// TestDeletePodsInPoolMigratesTheDocCluster runs the migration of the Calico doc's
// cluster (default scenario) through the engine: every pod ends up in the new pool,
// no Deployment ever drops below what its PodDisruptionBudget allows, and a second
// run changes nothing.
func TestDeletePodsInPoolMigratesTheDocCluster(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	before := podsIn(ctx, t, r.kube, oldPool)
	if len(before) == 0 {
		t.Fatal("no pod in the old pool to start with")
	}
	av := watchAvailability(ctx, t, r.kube)
	defer av.stop()
	var ev podEvents
	src := movePodsRunbook("migrate", ", timeout: 2m")
	rep, err := r.run(ev.ctx(ctx, t), t, src, runOpts{})
	if err != nil {
		t.Fatalf("run: %v\n%+v", err, rep)
	}
	st := step(t, rep, "move-pods")
	t.Logf("move-pods: %s in %v", st.Message, st.Duration)
	if left := podsIn(ctx, t, r.kube, oldPool); len(left) > 0 {
		t.Fatalf("pods left in the old pool: %s", names(left))
	}
	if n := ev.count("pod.evicted"); n != len(before) {
		t.Errorf("%d evictions for %d pods", n, len(before))
	}
	// coredns and cart: maxUnavailable 1 of 2; frontend: minAvailable 2 of 3; ledger:
	// minAvailable 1 of 2; calico-kube-controllers: 1 replica, maxUnavailable 1.
	av.requireAtLeast(t, map[string]int{"kube-system/coredns": 1, "shop/frontend": 2, "shop/cart": 1, "payments/ledger": 1, "kube-system/calico-kube-controllers": 0})
	for _, p := range podsIn(ctx, t, r.kube, newPool) {
		if !ready(&p) {
			t.Errorf("pod %s/%s in the new pool is not Ready", p.Namespace, p.Name)
		}
	}

	rep, err = r.run(ev.ctx(ctx, t), t, src, runOpts{journal: "again"})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if st := step(t, rep, "move-pods"); st.Changed {
		t.Errorf("second run changed something: %s", st.Message)
	}
}

func podIn(p *corev1.Pod, prefix netip.Prefix) bool {
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil && prefix.Contains(a) {
			return true
		}
	}
	return false
}

// replacedOneToOne counts replacements named one to one for an owner.
func (e *podEvents) replacedOneToOne(owner string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Type == "pod.replaced" && ev.Owner == owner && ev.Replacement != "" {
			n++
		}
	}
	return n
}

func actionsDefault() *decl.Registry { return actions.Default }
