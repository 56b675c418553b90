package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

var (
	oldPool = netip.MustParsePrefix("192.168.0.0/16")
	newPool = netip.MustParsePrefix("10.0.0.0/16")
)

// tracker watches the benchmark's pods and keeps, per Deployment, how many are
// Ready (and not terminating) — and the fewest seen since tracking began, which is
// what a PodDisruptionBudget protects.
type tracker struct {
	mu       sync.Mutex
	pods     map[string]podState // pod key -> state
	want     map[string]int      // deployment -> replicas
	tracking bool
	min      map[string]int
	stages   stages
	since    time.Time // tracking began
	changed  chan struct{}
	stop     context.CancelFunc
}

type podState struct {
	dep   string
	ready bool
	ip    netip.Addr
	// When the watch first saw the pod created, bound to a node, with an address,
	// Ready, terminating (during tracking only).
	seen, bound, addressed, readyAt, terminating time.Time
}

// stages are the per-pod latencies of the pipeline, to see where time goes.
type stages struct {
	schedule, address, start, teardown []time.Duration
	// replace: a pod of a Deployment terminating to the Deployment's next new pod;
	// recycle: a new pod Ready to the next pod of the same Deployment terminating
	// (what a budget-respecting migrator adds per wave).
	replace, recycle []time.Duration
	lastReady        map[string]time.Time // deployment -> last new pod Ready
	terminated       map[string][]time.Time
}

func newTracker(ctx context.Context, kube kubernetes.Interface) (*tracker, error) {
	t := &tracker{pods: map[string]podState{}, want: map[string]int{}, min: map[string]int{}, changed: make(chan struct{}, 1)}
	ctx, t.stop = context.WithCancel(ctx)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return kube.CoreV1().Pods("").List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return kube.CoreV1().Pods("").Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.update(o, false) },
		UpdateFunc: func(_, o any) { t.update(o, false) },
		DeleteFunc: func(o any) { t.update(o, true) },
	}); err != nil {
		return nil, err
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod watch did not sync")
	}
	return t, nil
}

func (t *tracker) update(obj any, gone bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok || !strings.HasPrefix(p.Namespace, "app-") {
		return
	}
	key := p.Namespace + "/" + p.Name
	dep := p.Namespace + "/" + p.Labels["app"]
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	prev, had := t.pods[key]
	if gone {
		if t.tracking && !prev.terminating.IsZero() {
			t.stages.teardown = append(t.stages.teardown, now.Sub(prev.terminating))
		}
		delete(t.pods, key)
	} else {
		st := prev
		if !had {
			st = podState{seen: now}
			if t.tracking {
				if q := t.stages.terminated[dep]; len(q) > 0 {
					t.stages.replace = append(t.stages.replace, now.Sub(q[0]))
					t.stages.terminated[dep] = q[1:]
				}
			}
		}
		st.dep, st.ready, st.ip = dep, p.DeletionTimestamp == nil && isReady(p), netip.Addr{}
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			st.ip = a
		}
		if t.tracking && had && st.seen.After(t.since) {
			switch {
			case st.bound.IsZero() && p.Spec.NodeName != "":
				st.bound = now
				t.stages.schedule = append(t.stages.schedule, now.Sub(st.seen))
			case st.addressed.IsZero() && p.Annotations["cni.projectcalico.org/podIP"] != "" && !st.bound.IsZero() && p.DeletionTimestamp == nil:
				st.addressed = now
				t.stages.address = append(t.stages.address, now.Sub(st.bound))
			case st.readyAt.IsZero() && st.ready && !st.addressed.IsZero():
				st.readyAt = now
				t.stages.start = append(t.stages.start, now.Sub(st.addressed))
				t.stages.lastReady[dep] = now
			}
		}
		if t.tracking && st.terminating.IsZero() && p.DeletionTimestamp != nil {
			st.terminating = now
			t.stages.terminated[dep] = append(t.stages.terminated[dep], now)
			if r, ok := t.stages.lastReady[dep]; ok {
				t.stages.recycle = append(t.stages.recycle, now.Sub(r))
				delete(t.stages.lastReady, dep)
			}
		}
		t.pods[key] = st
	}
	if t.tracking {
		if n := t.readyLocked(dep, netip.Prefix{}); n < t.min[dep] {
			t.min[dep] = n
		}
	}
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyLocked counts a Deployment's Ready pods, in prefix when it is valid.
func (t *tracker) readyLocked(dep string, in netip.Prefix) int {
	n := 0
	for _, p := range t.pods {
		if p.dep == dep && p.ready && (!in.IsValid() || in.Contains(p.ip)) {
			n++
		}
	}
	return n
}

func (t *tracker) expect(dep string, replicas int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want[dep] = replicas
}

// allReadyIn: every Deployment has all its replicas Ready in prefix and no pod
// left elsewhere holding an old-pool address.
func (t *tracker) allReadyIn(prefix netip.Prefix) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ready := map[string]int{}
	for _, p := range t.pods {
		if prefix != oldPool && p.ip.IsValid() && oldPool.Contains(p.ip) {
			return false
		}
		if p.ready && prefix.Contains(p.ip) {
			ready[p.dep]++
		}
	}
	for dep, n := range t.want {
		if ready[dep] < n {
			return false
		}
	}
	return true
}

// startTracking resets the minimums to the current Ready counts.
func (t *tracker) startTracking() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tracking, t.since = true, time.Now()
	t.stages.lastReady, t.stages.terminated = map[string]time.Time{}, map[string][]time.Time{}
	for dep := range t.want {
		t.min[dep] = t.readyLocked(dep, netip.Prefix{})
	}
}

// below counts the Deployments whose Ready pods dropped below floor(dep).
func (t *tracker) below(maxUnavailable int) (n int, worst int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	worst = -1
	for dep, want := range t.want {
		m := t.min[dep]
		if m < want-maxUnavailable {
			n++
		}
		if worst < 0 || m < worst {
			worst = m
		}
	}
	return n, worst
}

// waitAllNew blocks until every Deployment is Ready in the new pool.
func (t *tracker) waitAllNew(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !t.allReadyIn(newPool) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), t.summary())
		case <-t.changed:
		case <-tick.C:
		}
	}
	return nil
}

func (t *tracker) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old, nw, none, notReady int
	for _, p := range t.pods {
		switch {
		case !p.ip.IsValid():
			none++
		case oldPool.Contains(p.ip):
			old++
		case newPool.Contains(p.ip):
			nw++
		}
		if !p.ready {
			notReady++
		}
	}
	var short []string
	for dep, want := range t.want {
		if got := t.readyLocked(dep, newPool); got < want {
			short = append(short, fmt.Sprintf("%s %d/%d", dep, got, want))
		}
	}
	sort.Strings(short)
	if len(short) > 5 {
		short = append(short[:5], fmt.Sprintf("and %d more", len(short)-5))
	}
	return fmt.Sprintf("pods old=%d new=%d noIP=%d notReady=%d; short in new pool: %s", old, nw, none, notReady, strings.Join(short, ", "))
}

// latencies renders the median and 95th percentile of each stage.
func (t *tracker) latencies() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := func(name string, d []time.Duration) string {
		if len(d) == 0 {
			return name + " -"
		}
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return fmt.Sprintf("%s p50 %v p95 %v", name, s[len(s)/2].Round(10*time.Millisecond), s[len(s)*95/100].Round(10*time.Millisecond))
	}
	return strings.Join([]string{q("terminating→replacement created", t.stages.replace), q("created→bound", t.stages.schedule),
		q("bound→address", t.stages.address), q("address→Ready", t.stages.start), q("Ready→next terminating", t.stages.recycle),
		q("terminating→gone", t.stages.teardown)}, "; ")
}
