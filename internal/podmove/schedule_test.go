package podmove

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func keys(cs []choice) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.c.key
	}
	return out
}

func defaultLimits() limits { return limits{global: 500, perNode: 50, maxUnavailable: 1} }

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(f *fakeStore, s *setup)
		lim   limits
		ld    load
		want  []string
		waits []string // substrings of wait reasons that must appear
	}{{
		name: "a PDB with room for 5 lets 5 of 20 go",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 20)
			f.pdb("ns", "web", 5, 20, 15, 20)
			for i := 0; i < 20; i++ {
				f.pods = append(f.pods, mkPod("ns", fmt.Sprintf("web-%02d", i), fmt.Sprintf("192.168.0.%d", i+1), web))
			}
		},
		want:  []string{"ns/web-00", "ns/web-01", "ns/web-02", "ns/web-03", "ns/web-04"},
		waits: []string{"PodDisruptionBudget ns/web allows no disruption now"},
	}, {
		name: "owners without PDB advance side by side, one each",
		build: func(f *fakeStore, s *setup) {
			a, b := f.deployment("ns", "a", 3), f.deployment("ns", "b", 3)
			for i := 0; i < 3; i++ {
				f.pods = append(f.pods, mkPod("ns", fmt.Sprintf("a-%d", i), fmt.Sprintf("192.168.1.%d", i+1), a),
					mkPod("ns", fmt.Sprintf("b-%d", i), fmt.Sprintf("192.168.2.%d", i+1), b))
			}
		},
		want:  []string{"ns/a-0", "ns/b-0"},
		waits: []string{"Deployment ns/a (no PodDisruptionBudget): 1 of 3 pod(s) unavailable, maxUnavailable 1"},
	}, {
		name: "a crashlooping pod goes first and costs no budget (IfHealthyBudget, budget healthy)",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 3)
			f.pdb("ns", "web", 0, 2, 2, 3)
			f.pods = append(f.pods, mkPod("ns", "web-a", "192.168.0.1", web), mkPod("ns", "web-b", "192.168.0.2", web),
				mkPod("ns", "web-c", "192.168.0.3", web, crashLooping))
		},
		want:  []string{"ns/web-c"},
		waits: []string{"PodDisruptionBudget ns/web allows no disruption now (0 disruption(s) allowed, needs 2 healthy, has 2)"},
	}, {
		name: "global concurrency",
		build: func(f *fakeStore, s *setup) {
			for _, n := range []string{"a", "b", "c"} {
				o := f.deployment("ns", n, 1)
				f.pods = append(f.pods, mkPod("ns", n+"-0", "192.168.0."+fmt.Sprint(len(f.pods)+1), o))
			}
		},
		lim:   limits{global: 2, perNode: 50, maxUnavailable: 1},
		want:  []string{"ns/a-0", "ns/b-0"},
		waits: []string{"concurrency limit (2 in flight)"},
	}, {
		name: "already in flight counts against the global limit",
		build: func(f *fakeStore, s *setup) {
			o := f.deployment("ns", "a", 2)
			f.pods = append(f.pods, mkPod("ns", "a-0", "192.168.0.1", o))
		},
		lim:   limits{global: 2, perNode: 50, maxUnavailable: 1},
		ld:    load{inFlight: 2},
		waits: []string{"concurrency limit"},
	}, {
		name: "per-node limit",
		build: func(f *fakeStore, s *setup) {
			a, b := f.deployment("ns", "a", 2), f.deployment("ns", "b", 2)
			f.pods = append(f.pods, mkPod("ns", "a-0", "192.168.0.1", a), mkPod("ns", "b-0", "192.168.0.2", b),
				mkPod("ns", "b-1", "192.168.0.3", b, onNode("n2")))
		},
		lim:   limits{global: 10, perNode: 1, maxUnavailable: 2},
		want:  []string{"ns/a-0", "ns/b-1"},
		waits: []string{"node n1: 1 pods leaving"},
	}, {
		name: "pods backing webhooks go first and alone",
		build: func(f *fakeStore, s *setup) {
			hook, app := f.deployment("ns", "hook", 2), f.deployment("ns", "app", 2)
			f.pods = append(f.pods, mkPod("ns", "app-0", "192.168.0.1", app), mkPod("ns", "hook-0", "192.168.0.2", hook),
				mkPod("ns", "hook-1", "192.168.0.3", hook))
			s.critical = []criticalService{{namespace: "ns", selector: labels.SelectorFromSet(labels.Set{"app": "hook"}), what: "ValidatingWebhookConfiguration h"}}
		},
		lim:   limits{global: 10, perNode: 10, maxUnavailable: 2},
		want:  []string{"ns/hook-0"},
		waits: []string{"pods backing webhooks and APIServices move first", "one pod backing ValidatingWebhookConfiguration h at a time"},
	}, {
		name: "nothing critical while one critical pod is still coming back",
		build: func(f *fakeStore, s *setup) {
			hook := f.deployment("ns", "hook", 2)
			f.pods = append(f.pods, mkPod("ns", "hook-1", "192.168.0.3", hook))
			s.critical = []criticalService{{namespace: "ns", selector: labels.Everything(), what: "APIService v3.projectcalico.org"}}
		},
		ld:    load{criticalBusy: true},
		waits: []string{"one pod backing APIService v3.projectcalico.org at a time"},
	}, {
		name: "the rest waits until the last critical pod is back, not just gone",
		build: func(f *fakeStore, s *setup) {
			app := f.deployment("ns", "app", 2)
			f.pods = append(f.pods, mkPod("ns", "app-0", "192.168.0.1", app))
			s.critical = []criticalService{{namespace: "ns", selector: labels.SelectorFromSet(labels.Set{"app": "hook"}), what: "APIService x"}}
		},
		ld:    load{criticalBusy: true},
		waits: []string{"pods backing webhooks and APIServices move first"},
	}, {
		name: "a budget that answered 429 is left alone until its status changes",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 20)
			f.pdb("ns", "web", 5, 20, 15, 20)
			f.pods = append(f.pods, mkPod("ns", "web-0", "192.168.0.1", web))
		},
		ld:    load{cooling: map[string]bool{"ns/web": true}},
		waits: []string{"refused an eviction (429)"},
	}, {
		name: "a pod already being evicted is not sent again (the cache lags behind the eviction)",
		build: func(f *fakeStore, s *setup) {
			a := f.deployment("ns", "a", 1)
			f.pods = append(f.pods, mkPod("ns", "a-0", "192.168.0.1", a))
		},
		ld:   load{going: map[types.UID]bool{"ns-a-0-192.168.0.1": true}},
		want: nil,
	}, {
		name: "StatefulSet pods go from the highest ordinal down",
		build: func(f *fakeStore, s *setup) {
			db := f.statefulSet("ns", "db", 3)
			for i := 0; i < 3; i++ {
				f.pods = append(f.pods, mkPod("ns", fmt.Sprintf("db-%d", i), fmt.Sprintf("192.168.0.%d", i+1), db))
			}
		},
		want: []string{"ns/db-2"},
	}, {
		name: "pending pods ignore budgets",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 3)
			f.pdb("ns", "web", 0, 3, 3, 4)
			f.pods = append(f.pods, mkPod("ns", "web-0", "192.168.0.1", web), mkPod("ns", "web-1", "192.168.0.2", web, pending))
		},
		want: []string{"ns/web-1"},
	}, {
		name: "an eviction the API admitted but never carried out is finished, at no cost to the budget",
		build: func(f *fakeStore, s *setup) {
			// The run was killed mid-eviction: web-1 is in disruptedPods, not deleted,
			// and the budget allows nothing until the disruption controller gives up on
			// it (2 min). web-0 must still wait; web-1 goes now.
			web := f.deployment("ns", "web", 6)
			b := f.pdb("ns", "web", 0, 5, 5, 6)
			b.Status.DisruptedPods = map[string]metav1.Time{"web-1": metav1.NewTime(t0.Add(-5 * time.Second))}
			f.pods = append(f.pods, mkPod("ns", "web-0", "192.168.0.1", web), mkPod("ns", "web-1", "192.168.0.2", web))
		},
		want:  []string{"ns/web-1"},
		waits: []string{"PodDisruptionBudget ns/web allows no disruption now"},
	}, {
		name: "a disruptedPods entry older than the pod is another pod's (a StatefulSet name reused)",
		build: func(f *fakeStore, s *setup) {
			db := f.statefulSet("ns", "db", 3)
			b := f.pdb("ns", "db", 0, 2, 2, 3)
			b.Status.DisruptedPods = map[string]metav1.Time{"db-2": metav1.NewTime(t0.Add(-2 * time.Hour))}
			f.pods = append(f.pods, mkPod("ns", "db-2", "192.168.0.3", db))
		},
		want:  nil,
		waits: []string{"PodDisruptionBudget ns/db allows no disruption now"},
	}, {
		name: "a disruptedPods entry from the second the pod was created may be its predecessor's",
		build: func(f *fakeStore, s *setup) {
			db := f.statefulSet("ns", "db", 3)
			b := f.pdb("ns", "db", 0, 2, 2, 3)
			b.Status.DisruptedPods = map[string]metav1.Time{"db-2": metav1.NewTime(t0.Add(-time.Hour))}
			f.pods = append(f.pods, mkPod("ns", "db-2", "192.168.0.3", db))
		},
		want:  nil,
		waits: []string{"PodDisruptionBudget ns/db allows no disruption now"},
	}, {
		name: "bare pods on request: no budget to respect",
		build: func(f *fakeStore, s *setup) {
			s.filters.Unmanaged = UnmanagedDelete
			f.pods = append(f.pods, mkPod("ns", "bare", "192.168.0.1"))
		},
		want: []string{"ns/bare"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := &fakeStore{}, testSetup()
			tc.build(f, s)
			lim := tc.lim
			if lim.global == 0 {
				lim = defaultLimits()
			}
			w := observe(f, s, newMemory(), t0)
			if len(w.refused) > 0 {
				t.Fatalf("refused: %v", w.refused.Problems(0))
			}
			got, waits := pick(w, lim, tc.ld)
			if strings.Join(keys(got), ",") != strings.Join(tc.want, ",") {
				t.Errorf("picked %v, want %v", keys(got), tc.want)
			}
			var reasons []string
			for why := range waits {
				reasons = append(reasons, why)
			}
			sort.Strings(reasons)
			for _, want := range tc.waits {
				if !strings.Contains(strings.Join(reasons, "\n"), want) {
					t.Errorf("wait reasons %q lack %q", reasons, want)
				}
			}
		})
	}
}

// TestPickChargesBudgets: one round never over-commits a budget, and what it picked
// is charged so that the next round (before any status change) picks nothing more.
func TestPickChargesBudgets(t *testing.T) {
	f, s := &fakeStore{}, testSetup()
	web := f.deployment("ns", "web", 4)
	f.pdb("ns", "web", 2, 4, 2, 4)
	for i := 0; i < 4; i++ {
		f.pods = append(f.pods, mkPod("ns", fmt.Sprintf("web-%d", i), fmt.Sprintf("192.168.0.%d", i+1), web))
	}
	mem, led := newMemory(), newLedger()
	w := observe(f, s, mem, t0)
	settle(led, w, mem, noEvents{}, ActEvict)
	got, _ := pick(w, defaultLimits(), load{})
	if len(got) != 2 || !got[0].consumes {
		t.Fatalf("first round picked %v", keys(got))
	}
	for _, ch := range got {
		led.add(&entry{key: ch.c.key, uid: ch.c.pod.UID, owner: ch.c.owner, budget: "ns/web", consume: true, ready: true, sent: t0, answered: true, accepted: true})
	}
	// The status has not caught up: same objects, fresh world.
	w = observe(f, s, mem, t0)
	settle(led, w, mem, noEvents{}, ActEvict)
	if got, _ := pick(w, defaultLimits(), load{}); len(got) != 0 {
		t.Fatalf("second round picked %v before the status showed the first two", keys(got))
	}
}

func TestSpreadOverNodes(t *testing.T) {
	f, s := &fakeStore{}, testSetup()
	for i, n := range []string{"a", "b", "c"} {
		o := f.deployment("ns", n, 2)
		// every owner's first pod is on n1, second on n2; owner c's are on n3.
		node1, node2 := "n1", "n2"
		if n == "c" {
			node1, node2 = "n3", "n3"
		}
		f.pods = append(f.pods, mkPod("ns", n+"-0", fmt.Sprintf("192.168.%d.1", i), o, onNode(node1)),
			mkPod("ns", n+"-1", fmt.Sprintf("192.168.%d.2", i), o, onNode(node2)))
	}
	w := observe(f, s, newMemory(), t0)
	got, _ := pick(w, limits{global: 100, perNode: 100, maxUnavailable: 1}, load{perNode: map[string]int{"n1": 5}})
	// Rank 0 of each owner: a-0 (n1), b-0 (n1), c-0 (n3). n1 is busy: n3 first, then n1.
	if k := strings.Join(keys(got), ","); k != "ns/c-0,ns/a-0,ns/b-0" {
		t.Fatalf("picked %s", k)
	}
}
