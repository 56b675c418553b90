package podmove

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// events records what the PDB informer "saw".
type events struct {
	disrupted map[string]time.Time // budget/pod -> seen
	changed   map[string]time.Time
}

func (e events) disruptedSince(b, p string, since time.Time) bool {
	t, ok := e.disrupted[b+"/"+p]
	return ok && !t.Before(since)
}
func (e events) changedSince(b string, since time.Time) bool { return e.changed[b].After(since) }

func TestReplaced(t *testing.T) {
	type check struct {
		key         string
		replaced    bool
		replacement string
	}
	for _, tc := range []struct {
		name string
		// before: the pods when the step starts; after: later.
		before, after func(f *fakeStore) []*corev1.Pod
		entries       []*entry
		want          []check
	}{{
		name: "Deployment: new Ready pods in the target are attributed oldest first",
		before: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 3)
			return []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web), mkPod("ns", "web-c", "192.168.0.3", web)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 3)
			return []*corev1.Pod{mkPod("ns", "web-c", "192.168.0.3", web),
				mkPod("ns", "web-x", "10.0.0.1", web, createdAfter(time.Second)),  // Ready in the target
				mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending)} // starting
		},
		entries: []*entry{
			{key: "ns/web-a", uid: "ns-web-a-192.168.0.1", ready: true, sent: t0},
			{key: "ns/web-b", uid: "ns-web-b-192.168.0.2", ready: true, sent: t0.Add(time.Millisecond)},
		},
		want: []check{{key: "ns/web-a", replaced: true}, {key: "ns/web-b", replaced: false}},
	}, {
		name: "Deployment: a new pod that is Ready but in the old pool is no replacement",
		before: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 2)
			return []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 2)
			return []*corev1.Pod{mkPod("ns", "web-b", "192.168.0.2", web), mkPod("ns", "web-x", "192.168.0.9", web, createdAfter(time.Second))}
		},
		entries: []*entry{{key: "ns/web-a", uid: "ns-web-a-192.168.0.1", ready: true, sent: t0}},
		want:    []check{{key: "ns/web-a", replaced: false}},
	}, {
		name: "StatefulSet: same name, new UID, Ready, in the target",
		before: func(f *fakeStore) []*corev1.Pod {
			db := f.statefulSet("ns", "db", 2)
			return []*corev1.Pod{mkPod("ns", "db-0", "192.168.0.1", db), mkPod("ns", "db-1", "192.168.0.2", db)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			db := f.statefulSet("ns", "db", 2)
			return []*corev1.Pod{mkPod("ns", "db-0", "192.168.0.1", db), mkPod("ns", "db-1", "10.0.0.7", db, createdAfter(time.Second))}
		},
		entries: []*entry{{key: "ns/db-1", uid: "ns-db-1-192.168.0.2", ready: true, sent: t0}},
		want:    []check{{key: "ns/db-1", replaced: true, replacement: "ns/db-1"}},
	}, {
		name: "StatefulSet: same name, new UID, not Ready yet",
		before: func(f *fakeStore) []*corev1.Pod {
			db := f.statefulSet("ns", "db", 1)
			return []*corev1.Pod{mkPod("ns", "db-0", "192.168.0.1", db)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			db := f.statefulSet("ns", "db", 1)
			return []*corev1.Pod{mkPod("ns", "db-0", "10.0.0.7", db, createdAfter(time.Second), notReady)}
		},
		entries: []*entry{{key: "ns/db-0", uid: "ns-db-0-192.168.0.1", ready: true, sent: t0}},
		want:    []check{{key: "ns/db-0", replaced: false}},
	}, {
		name: "DaemonSet: the pod of the same owner on the same node",
		before: func(f *fakeStore) []*corev1.Pod {
			agent := f.daemonSet("ns", "agent", 2)
			return []*corev1.Pod{mkPod("ns", "agent-a", "192.168.0.1", agent), mkPod("ns", "agent-b", "192.168.1.1", agent, onNode("n2"))}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			agent := f.daemonSet("ns", "agent", 2)
			return []*corev1.Pod{mkPod("ns", "agent-a", "192.168.0.1", agent),
				mkPod("ns", "agent-z", "10.0.1.1", agent, onNode("n2"), createdAfter(time.Second))}
		},
		entries: []*entry{
			{key: "ns/agent-b", uid: "ns-agent-b-192.168.1.1", node: "n2", ready: true, sent: t0},
		},
		want: []check{{key: "ns/agent-b", replaced: true, replacement: "ns/agent-z"}},
	}, {
		name: "DaemonSet: a new pod on another node does not count",
		before: func(f *fakeStore) []*corev1.Pod {
			agent := f.daemonSet("ns", "agent", 2)
			return []*corev1.Pod{mkPod("ns", "agent-a", "192.168.0.1", agent)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			agent := f.daemonSet("ns", "agent", 2)
			return []*corev1.Pod{mkPod("ns", "agent-z", "10.0.1.1", agent, onNode("n2"), createdAfter(time.Second))}
		},
		entries: []*entry{{key: "ns/agent-a", uid: "ns-agent-a-192.168.0.1", node: "n1", ready: true, sent: t0}},
		want:    []check{{key: "ns/agent-a", replaced: false}},
	}, {
		name: "a pod that was not Ready owes nothing once gone",
		before: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 2)
			return []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web, crashLooping)}
		},
		after: func(f *fakeStore) []*corev1.Pod {
			web := f.deployment("ns", "web", 2)
			return []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-x", "10.0.0.2", web, createdAfter(time.Second), crashLooping)}
		},
		entries: []*entry{{key: "ns/web-b", uid: "ns-web-b-192.168.0.2", ready: false, sent: t0}},
		want:    []check{{key: "ns/web-b", replaced: true}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			mem, led, s := newMemory(), newLedger(), testSetup()
			f := &fakeStore{}
			f.pods = tc.before(f)
			settle(led, observe(f, s, mem, t0), mem, noEvents{}, ActEvict)
			for _, e := range tc.entries {
				e.answered, e.accepted = true, true
				e.owner = observe(f, s, newMemory(), t0).pods[e.uid].owner
				led.add(e)
			}
			f2 := &fakeStore{}
			f2.pods = tc.after(f2)
			settle(led, observe(f2, s, mem, t0.Add(2*time.Second)), mem, noEvents{}, ActEvict)
			for _, c := range tc.want {
				var e *entry
				for _, x := range led.order {
					if x.key == c.key {
						e = x
					}
				}
				if e.replaced != c.replaced || e.replacement != c.replacement {
					t.Errorf("%s: replaced=%v (%q), want %v (%q)", c.key, e.replaced, e.replacement, c.replaced, c.replacement)
				}
			}
		})
	}
}

func TestReflected(t *testing.T) {
	f, s := &fakeStore{}, testSetup()
	web := f.deployment("ns", "web", 3)
	f.pdb("ns", "web", 1, 3, 2, 3)
	f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web, terminating), mkPod("ns", "web-b", "192.168.0.2", web)}
	for _, tc := range []struct {
		name     string
		ev       events
		strategy Action
		now      time.Time
		want     bool
	}{
		{name: "status listed the pod in disruptedPods", ev: events{disrupted: map[string]time.Time{"ns/web/web-a": t0.Add(time.Millisecond)}}, strategy: ActEvict, now: t0.Add(time.Second), want: true},
		{name: "an older listing (earlier eviction) does not count", ev: events{disrupted: map[string]time.Time{"ns/web/web-a": t0.Add(-time.Minute)}}, strategy: ActEvict, now: t0.Add(time.Second), want: false},
		{name: "not shown yet", strategy: ActEvict, now: t0.Add(time.Second), want: false},
		{name: "fallback after a lost event", strategy: ActEvict, now: t0.Add(reflectFallback + time.Second), want: true},
		{name: "delete: status changed after the pod started terminating", ev: events{changed: map[string]time.Time{"ns/web": t0.Add(time.Second)}}, strategy: ActDelete, now: t0.Add(2 * time.Second), want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, led := newMemory(), newLedger()
			e := &entry{key: "ns/web-a", uid: types.UID("ns-web-a-192.168.0.1"), budget: "ns/web", consume: true, ready: true, sent: t0, answered: true, accepted: true}
			led.add(e)
			w := observe(f, s, mem, tc.now)
			settle(led, w, mem, tc.ev, tc.strategy)
			if e.reflected != tc.want {
				t.Fatalf("reflected = %v, want %v", e.reflected, tc.want)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.want]; w.budgets["ns/web"].Unreflected != want {
				t.Fatalf("Unreflected = %d, want %d", w.budgets["ns/web"].Unreflected, want)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		build  func(f *fakeStore, s *setup)
		check  func(t *testing.T, w *world)
		second bool // observe twice, the second time with pods from build2
	}{{
		name: "a new pod with an old-pool address has landed there again",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-x", "192.168.7.7", web, createdAfter(time.Second))}
		},
		check: func(t *testing.T, w *world) {
			if strings.Join(w.landed, ",") != "ns/web-x (192.168.7.7)" || len(w.cands) != 1 {
				t.Fatalf("landed %v, candidates %d", w.landed, len(w.cands))
			}
		},
	}, {
		name: "a replacement outside the target pools is a stray",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-x", "172.16.0.1", web, createdAfter(time.Second))}
		},
		check: func(t *testing.T, w *world) {
			if strings.Join(w.strays, ",") != "ns/web-x (172.16.0.1)" {
				t.Fatalf("strays %v", w.strays)
			}
		},
	}, {
		name: "a crashlooping pod lowers the goal: the owner is not waited on for it",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 3)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "10.0.0.1", web), mkPod("ns", "web-b", "10.0.0.2", web), mkPod("ns", "web-c", "192.168.0.3", web, crashLooping)}
		},
		check: func(t *testing.T, w *world) {
			o := w.owners[Owner{Kind: KindDeployment, Namespace: "ns", Name: "web", UID: "d-web"}]
			if o == nil || o.goal != 2 || o.readyOK != 2 || o.inOld != 1 {
				t.Fatalf("owner %+v", o)
			}
		},
	}, {
		name: "a pod that never passed readiness is not owed (no waiting for an app that was broken before)",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web, notReady)}
		},
		check: func(t *testing.T, w *world) {
			o := w.owners[Owner{Kind: KindDeployment, Namespace: "ns", Name: "web", UID: "d-web"}]
			if o == nil || o.goal != 1 {
				t.Fatalf("owner %+v", o)
			}
		},
	}, {
		name: "resumed: a terminating StatefulSet pod is owed before its replacement exists",
		build: func(f *fakeStore, s *setup) {
			db := f.statefulSet("ns", "db", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "db-0", "192.168.0.1", db), mkPod("ns", "db-1", "192.168.0.2", db, terminating)}
		},
		check: func(t *testing.T, w *world) {
			o := w.owners[Owner{Kind: KindStatefulSet, Namespace: "ns", Name: "db", UID: "s-db"}]
			if o == nil || o.goal != 2 {
				t.Fatalf("owner %+v", o)
			}
		},
	}, {
		name: "resumed: replacements still starting count towards the goal",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 3)
			f.pods = []*corev1.Pod{mkPod("ns", "web-x", "10.0.0.1", web, createdAfter(time.Second)),
				mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending), mkPod("ns", "web-c", "192.168.0.3", web)}
		},
		check: func(t *testing.T, w *world) {
			o := w.owners[Owner{Kind: KindDeployment, Namespace: "ns", Name: "web", UID: "d-web"}]
			if o == nil || o.goal != 3 || o.readyOK != 1 || o.satisfied() {
				t.Fatalf("owner %+v", o)
			}
		},
	}, {
		name: "resumed: an owner whose pods all left still must come back",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-x", "10.0.0.1", web, createdAfter(time.Second)), mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending)}
		},
		check: func(t *testing.T, w *world) {
			if w.done() {
				t.Fatal("done while a replacement is still starting")
			}
		},
	}, {
		name: "a node's queued work: bound pods without addresses, not those CNI ADD has set up",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 4)
			addressed := func(p *corev1.Pod) { p.Annotations = map[string]string{annotationPodIPs: "10.0.0.9/32"} }
			f.pods = []*corev1.Pod{
				mkPod("ns", "web-w", "", web, createdAfter(time.Second), pending),            // waiting for its address
				mkPod("ns", "web-x", "", web, createdAfter(time.Second), pending, addressed), // starting: its address is assigned
				mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending, onNode("n2")),
				mkPod("ns", "web-z", "", web, pending, onNode("n3")), // waiting for over a minute: not progress
			}
		},
		check: func(t *testing.T, w *world) {
			if w.arriving["n1"] != 1 || w.arriving["n2"] != 1 || w.arriving["n3"] != 0 {
				t.Fatalf("arriving %v", w.arriving)
			}
		},
	}, {
		name: "jobs: wait; the job is not an owner to wait on",
		build: func(f *fakeStore, s *setup) {
			f.pods = []*corev1.Pod{mkPod("ns", "backup-x", "192.168.0.1", ownedBy(KindJob, "backup", "j1"))}
		},
		check: func(t *testing.T, w *world) {
			if len(w.waits) != 1 || len(w.owners) != 0 || w.done() {
				t.Fatalf("waits %v owners %v", w.waits, w.owners)
			}
		},
	}, {
		name: "jobs: skip; done at once",
		build: func(f *fakeStore, s *setup) {
			s.filters.Jobs = JobsSkip
			f.pods = []*corev1.Pod{mkPod("ns", "backup-x", "192.168.0.1", ownedBy(KindJob, "backup", "j1"))}
		},
		check: func(t *testing.T, w *world) {
			if strings.Join(w.skipped, ",") != "ns/backup-x" || !w.done() {
				t.Fatalf("skipped %v done %v", w.skipped, w.done())
			}
		},
	}, {
		name: "several PDBs: refused under evict",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 3)
			f.pdb("ns", "web", 1, 3, 2, 3)
			b := f.pdb("ns", "all", 1, 3, 2, 3)
			b.Spec.Selector.MatchLabels = nil
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web)}
		},
		check: func(t *testing.T, w *world) {
			if p := strings.Join(w.refused.Problems(0), ";"); !strings.Contains(p, "several PodDisruptionBudgets") || !strings.Contains(p, "ns/all, ns/web") {
				t.Fatalf("refused %q", p)
			}
		},
	}, {
		name: "a budget that can never allow an eviction is refused up front",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 2)
			f.pdb("ns", "web", 0, 2, 2, 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web)}
		},
		check: func(t *testing.T, w *world) {
			if p := strings.Join(w.refused.Problems(0), ";"); !strings.Contains(p, "PodDisruptionBudget ns/web never allows an eviction") {
				t.Fatalf("refused %q", p)
			}
		},
	}, {
		name: "a minAvailable budget whose expectedPods dips while a pod is replaced is not refused",
		build: func(f *fakeStore, s *setup) {
			// frontend wants 3 pods, minAvailable 2; one went and its ReplicaSet has
			// not created the replacement yet (it lagged behind an API server
			// restart): the disruption controller counts the 2 pods that exist.
			web := f.deployment("ns", "web", 3)
			f.pdb("ns", "web", 0, 2, 2, 2)
			f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web)}
		},
		check: func(t *testing.T, w *world) {
			if len(w.refused) > 0 || len(w.cands) != 2 {
				t.Fatalf("refused %q, candidates %d: the budget allows evictions again once the replacement is Ready", w.refused.Problems(0), len(w.cands))
			}
		},
	}, {
		name: "pinned to the old pool by the pod's or the namespace's annotation: refused",
		build: func(f *fakeStore, s *setup) {
			a, b, c := f.deployment("legacy", "a", 1), f.deployment("shop", "b", 1), f.deployment("shop", "c", 1)
			f.nss = map[string]map[string]string{"legacy": {annotationIPv4Pools: `["old"]`}}
			pin := func(v string) podOpt {
				return func(p *corev1.Pod) { p.Annotations = map[string]string{annotationIPv4Pools: v} }
			}
			f.pods = []*corev1.Pod{mkPod("legacy", "a-1", "192.168.0.1", a), mkPod("shop", "b-1", "192.168.0.2", b, pin(`["192.168.0.0/16"]`)),
				mkPod("shop", "c-1", "192.168.0.3", c, pin(`["new"]`))}
		},
		check: func(t *testing.T, w *world) {
			p := strings.Join(w.refused.Problems(0), ";")
			if !strings.Contains(p, "annotation of their namespace") || !strings.Contains(p, "legacy/a-1") ||
				!strings.Contains(p, "annotation of their pod") || !strings.Contains(p, "shop/b-1") || strings.Contains(p, "shop/c-1") {
				t.Fatalf("refused %q", p)
			}
		},
	}, {
		name: "scope: namespace and selector",
		build: func(f *fakeStore, s *setup) {
			a, b := f.deployment("a", "web", 1), f.deployment("b", "web", 1)
			f.pods = []*corev1.Pod{mkPod("a", "web-1", "192.168.0.1", a), mkPod("b", "web-1", "192.168.0.2", b), mkPod("a", "bare", "192.168.0.3")}
			s.scope = Scope{Namespace: "a", Selector: mustSelector("app=web")}
		},
		check: func(t *testing.T, w *world) {
			if len(w.cands) != 1 || w.cands[0].key != "a/web-1" || len(w.refused) != 0 {
				t.Fatalf("candidates %d refused %v", len(w.cands), w.refused)
			}
		},
	}, {
		name: "singleReplica: rolloutRestart surges single-replica Deployments",
		build: func(f *fakeStore, s *setup) {
			s.singleRestart = true
			one, two := f.deployment("ns", "one", 1), f.deployment("ns", "two", 2)
			f.pods = []*corev1.Pod{mkPod("ns", "one-a", "192.168.0.1", one), mkPod("ns", "two-a", "192.168.0.2", two), mkPod("ns", "two-b", "192.168.0.3", two)}
		},
		check: func(t *testing.T, w *world) {
			if len(w.restarts) != 1 || len(w.cands) != 3 {
				t.Fatalf("restarts %v candidates %d", w.restarts, len(w.cands))
			}
			for o := range w.restarts {
				if o.Name != "one" {
					t.Fatalf("restarting %v", o)
				}
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := &fakeStore{}, testSetup()
			tc.build(f, s)
			tc.check(t, observe(f, s, newMemory(), t0))
		})
	}
}

// TestOwnerStaysTouched: an owner whose pods all left the pool within the step's
// first second (so their replacements do not look newer than the step) is still
// waited for.
func TestOwnerStaysTouched(t *testing.T) {
	f, s := &fakeStore{}, testSetup()
	web := f.deployment("ns", "web", 1)
	f.pods = []*corev1.Pod{mkPod("ns", "web-a", "192.168.0.1", web)}
	mem := newMemory()
	if w := observe(f, s, mem, t0); w.done() {
		t.Fatal("done with a pod in the pool")
	}
	f.pods = []*corev1.Pod{mkPod("ns", "web-x", "", web, pending)} // same second as the start
	if w := observe(f, s, mem, t0); w.done() {
		t.Fatal("done while the replacement is still starting")
	}
	f.pods = []*corev1.Pod{mkPod("ns", "web-x", "10.0.0.1", web)}
	if w := observe(f, s, mem, t0); !w.done() {
		t.Fatal("not done with the replacement Ready in the target")
	}
}
