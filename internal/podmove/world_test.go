package podmove

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestObserveWorld pins everything observe puts in the world (and in the memory)
// for a few mixed inputs, so that a change to how observe is put together cannot
// quietly change a decision: TestObserve checks the rules one at a time, this
// checks them all together.
func TestObserveWorld(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(f *fakeStore, s *setup)
		// again, if set, changes the store for a second observation with the same
		// memory; the second world is the one pinned.
		again func(f *fakeStore)
		want  string
	}{{
		name: "evict: budgets, replacements, terminating, bare, job, critical, overlap",
		build: func(f *fakeStore, s *setup) {
			web := f.deployment("ns", "web", 4)
			f.pdb("ns", "web", 1, 3, 3, 4)
			db := f.statefulSet("ns", "db", 3)
			b := f.pdb("ns", "db", 0, 2, 2, 3)
			b.Status.DisruptedPods = map[string]metav1.Time{"db-1": metav1.NewTime(t0.Add(-5 * time.Second))}
			api := f.deployment("other", "api", 2)
			f.pdb("other", "api", 1, 2, 1, 2)
			all := f.pdb("other", "all", 1, 2, 1, 2)
			all.Spec.Selector.MatchLabels = nil
			agent := f.daemonSet("other", "agent", 3)
			batch := f.deployment("ns", "batch", 1) // its only pod, a replacement, finished: nothing to wait for
			done := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
			hostNetwork := func(p *corev1.Pod) { p.Spec.HostNetwork = true }
			f.pods = []*corev1.Pod{
				mkPod("ns", "web-a", "192.168.0.1", web),
				mkPod("ns", "web-b", "192.168.0.2", web, crashLooping, onNode("n2")),
				mkPod("ns", "web-c", "10.0.0.3", web),
				mkPod("ns", "web-d", "192.168.0.4", web, terminating),
				mkPod("ns", "web-x", "10.0.0.9", web, createdAfter(time.Second)),
				mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending),
				mkPod("ns", "web-z", "172.16.0.1", web, createdAfter(time.Second)),
				mkPod("ns", "web-l", "192.168.9.9", web, createdAfter(time.Second), onNode("n3")),
				mkPod("ns", "web-done", "", web, done),
				mkPod("ns", "web-h", "", web, createdAfter(time.Second), pending, hostNetwork),
				mkPod("ns", "db-0", "192.168.1.0", db),
				mkPod("ns", "db-1", "192.168.1.1", db, onNode("n2")),
				mkPod("ns", "db-2", "192.168.1.2", db),
				mkPod("ns", "bare", "192.168.0.50"),
				mkPod("ns", "backup-x", "192.168.0.60", ownedBy(KindJob, "backup", "j1")),
				mkPod("other", "api-0", "192.168.2.1", api),
				mkPod("other", "api-1", "10.0.2.1", api, notReady),
				mkPod("other", "agent-n1", "192.168.2.2", agent),
				mkPod("ns", "batch-x", "", batch, createdAfter(time.Second), done),
			}
			s.critical = []criticalService{{namespace: "ns", selector: labels.SelectorFromSet(labels.Set{"app": "db"}), what: "APIService x"}}
		},
		want: `
cand ns/web-b owner="Deployment ns/web" os="Deployment ns/web" budget=ns/web ready=false ignores=false failing=true critical="" action=evict rank=0 admitted=false
cand ns/web-a owner="Deployment ns/web" os="Deployment ns/web" budget=ns/web ready=true ignores=false failing=false critical="" action=evict rank=1 admitted=false
cand ns/db-2 owner="StatefulSet ns/db" os="StatefulSet ns/db" budget=ns/db ready=true ignores=false failing=false critical="APIService x" action=evict rank=0 admitted=false
cand ns/db-1 owner="StatefulSet ns/db" os="StatefulSet ns/db" budget=ns/db ready=true ignores=false failing=false critical="APIService x" action=evict rank=1 admitted=true
cand ns/db-0 owner="StatefulSet ns/db" os="StatefulSet ns/db" budget=ns/db ready=true ignores=false failing=false critical="APIService x" action=evict rank=2 admitted=false
cand other/agent-n1 owner="DaemonSet other/agent" os="DaemonSet other/agent" budget=other/all ready=true ignores=false failing=false critical="" action=evict rank=0 admitted=false
wait ns/web-d: terminating
wait ns/backup-x: Job pod: waiting for it to complete
skipped []
refused bare pods (no controller would recreate them: set unmanagedPods: delete or skip): ns/bare
refused pods covered by several PodDisruptionBudgets, which the eviction API can never evict (HTTP 500; fix the overlap, or use strategy: delete) — other/all, other/api: other/api-0
owner "Deployment ns/web" desired=4 goal=4 readyNow=5 readyOK=2 draining=0 inOld=3 notReady=[ns/web-b ns/web-y ns/web-h] touched=true
owner "StatefulSet ns/db" desired=3 goal=3 readyNow=3 readyOK=0 draining=0 inOld=3 notReady=[] touched=true
owner "DaemonSet other/agent" desired=3 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
owner "Deployment other/api" desired=2 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[other/api-1] touched=true
budget ns/db healthy=3 unreflected=0 draining=0
budget ns/web healthy=6 unreflected=0 draining=0
budget other/all healthy=2 unreflected=0 draining=0
budget other/api healthy=1 unreflected=0 draining=0
landed [ns/web-l (192.168.9.9)]
strays [ns/web-z (172.16.0.1)]
arriving n1=1
pod ns/backup-x place=old pool owner="Job ns/backup"
pod ns/bare place=old pool owner="no owner"
pod ns/batch-x place=no address owner="Deployment ns/batch"
pod ns/db-0 place=old pool owner="StatefulSet ns/db"
pod ns/db-1 place=old pool owner="StatefulSet ns/db"
pod ns/db-2 place=old pool owner="StatefulSet ns/db"
pod ns/web-a place=old pool owner="Deployment ns/web"
pod ns/web-b place=old pool owner="Deployment ns/web"
pod ns/web-c place=target pool owner="Deployment ns/web"
pod ns/web-d place=old pool owner="Deployment ns/web"
pod ns/web-done place=no address owner="Deployment ns/web"
pod ns/web-h place=no address owner="Deployment ns/web"
pod ns/web-l place=old pool owner="Deployment ns/web"
pod ns/web-x place=target pool owner="Deployment ns/web"
pod ns/web-y place=no address owner="Deployment ns/web"
pod ns/web-z place=another pool owner="Deployment ns/web"
pod other/agent-n1 place=old pool owner="DaemonSet other/agent"
pod other/api-0 place=old pool owner="Deployment other/api"
pod other/api-1 place=target pool owner="Deployment other/api"
byKey [ns/db-0 ns/db-1 ns/db-2]
first sight "Deployment ns/web" owed=8 readyOK=2
first sight "StatefulSet ns/db" owed=3 readyOK=0
first sight "DaemonSet other/agent" owed=1 readyOK=0
first sight "Deployment other/api" owed=1 readyOK=0
seen [ns/db-0 ns/db-1 ns/db-2 ns/web-a ns/web-b other/agent-n1 other/api-0]
`,
	}, {
		name: "rolloutRestart: bare pods deleted, paused refused, budgets kept",
		build: func(f *fakeStore, s *setup) {
			s.strategy = ActRestart
			s.filters.Unmanaged = UnmanagedDelete
			one := f.deployment("ns", "one", 1)
			// An eviction admitted by an earlier run: a restart does not finish it.
			ob := f.pdb("ns", "one", 0, 1, 1, 1)
			ob.Status.DisruptedPods = map[string]metav1.Time{"one-a": metav1.NewTime(t0.Add(-5 * time.Second))}
			paused := f.deployment("ns", "paused", 2)
			f.deps[len(f.deps)-1].Spec.Paused = true
			agent := f.daemonSet("ns", "agent", 2)
			f.pods = []*corev1.Pod{
				mkPod("ns", "one-a", "192.168.0.1", one),
				mkPod("ns", "paused-a", "192.168.0.2", paused),
				mkPod("ns", "agent-n1", "192.168.0.3", agent),
				mkPod("ns", "agent-n2", "192.168.0.4", agent, onNode("n2"), pending),
				mkPod("ns", "bare", "192.168.0.5"),
			}
		},
		want: `
cand ns/bare owner="no owner" os="-" budget=- ready=true ignores=false failing=false critical="" action=delete rank=0 admitted=false
cand ns/agent-n2 owner="DaemonSet ns/agent" os="DaemonSet ns/agent" budget=- ready=false ignores=true failing=false critical="" action=rolloutRestart rank=0 admitted=false
cand ns/agent-n1 owner="DaemonSet ns/agent" os="DaemonSet ns/agent" budget=- ready=true ignores=false failing=false critical="" action=rolloutRestart rank=1 admitted=false
cand ns/one-a owner="Deployment ns/one" os="Deployment ns/one" budget=ns/one ready=true ignores=false failing=false critical="" action=rolloutRestart rank=0 admitted=false
skipped []
refused paused Deployments (a rollout restart does nothing until resumed): ns/paused-a
owner "DaemonSet ns/agent" desired=2 goal=1 readyNow=1 readyOK=0 draining=0 inOld=2 notReady=[ns/agent-n2] touched=true
owner "Deployment ns/one" desired=1 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
owner "Deployment ns/paused" desired=2 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
budget ns/one healthy=1 unreflected=0 draining=0
landed []
strays []
restart "DaemonSet ns/agent" [ns/agent-n1 ns/agent-n2]
restart "Deployment ns/one" [ns/one-a]
pod ns/agent-n1 place=old pool owner="DaemonSet ns/agent"
pod ns/agent-n2 place=old pool owner="DaemonSet ns/agent"
pod ns/bare place=old pool owner="no owner"
pod ns/one-a place=old pool owner="Deployment ns/one"
pod ns/paused-a place=old pool owner="Deployment ns/paused"
byKey []
first sight "DaemonSet ns/agent" owed=1 readyOK=0
first sight "Deployment ns/one" owed=1 readyOK=0
first sight "Deployment ns/paused" owed=1 readyOK=0
seen [ns/agent-n1 ns/agent-n2 ns/bare ns/one-a ns/paused-a]
`,
	}, {
		name: "singleReplica surge, budgets that never allow, pins, scope",
		build: func(f *fakeStore, s *setup) {
			s.singleRestart = true
			s.scope = Scope{Selector: mustSelector("tier=app")}
			app := labelled("tier", "app")
			one, two := f.deployment("ns", "one", 1), f.deployment("ns", "two", 2)
			recreate := f.deployment("ns", "recreate", 1)
			f.deps[len(f.deps)-1].Spec.Strategy.Type = "Recreate"
			tight, dip := f.deployment("ns", "tight", 2), f.deployment("ns", "dip", 3)
			f.pdb("ns", "tight", 0, 2, 2, 2)
			f.pdb("ns", "dip", 0, 2, 2, 2)
			// A killed run left stuck-b's eviction admitted and not carried out: the
			// budget allows nothing now, but finishing that eviction costs it nothing.
			stuck := f.deployment("ns", "stuck", 2)
			sb := f.pdb("ns", "stuck", 0, 2, 2, 2)
			sb.Status.DisruptedPods = map[string]metav1.Time{"stuck-b": metav1.NewTime(t0.Add(-5 * time.Second))}
			legacy := f.deployment("legacy", "old", 1)
			f.nss = map[string]map[string]string{"legacy": {annotationIPv4Pools: `["old"]`}}
			outside := f.deployment("ns", "outside", 1)
			f.pods = []*corev1.Pod{
				mkPod("ns", "one-a", "192.168.0.1", one, app),
				mkPod("ns", "two-a", "192.168.0.2", two, app),
				mkPod("ns", "two-b", "192.168.0.3", two, app, onNode("n2")),
				mkPod("ns", "two-y", "172.16.0.3", two, app, createdAfter(time.Second)),
				mkPod("ns", "two-z", "172.16.0.4", two, createdAfter(time.Second)), // out of scope: no stray
				mkPod("ns", "recreate-a", "192.168.0.4", recreate, app),
				mkPod("ns", "tight-a", "192.168.0.5", tight, app),
				mkPod("ns", "tight-b", "192.168.0.6", tight, app),
				mkPod("ns", "dip-a", "192.168.0.7", dip, app),
				mkPod("ns", "dip-b", "192.168.0.8", dip, app),
				mkPod("ns", "stuck-a", "192.168.0.12", stuck, app),
				mkPod("ns", "stuck-b", "192.168.0.13", stuck, app),
				mkPod("legacy", "old-a", "192.168.0.9", legacy, app),
				mkPod("ns", "outside-a", "192.168.0.10", outside),
				mkPod("ns", "outside-x", "172.16.0.2", outside, createdAfter(time.Second)),
				mkPod("ns", "outside-l", "192.168.0.11", outside, createdAfter(time.Second)),
			}
		},
		want: `
cand ns/dip-a owner="Deployment ns/dip" os="Deployment ns/dip" budget=ns/dip ready=true ignores=false failing=false critical="" action=evict rank=0 admitted=false
cand ns/dip-b owner="Deployment ns/dip" os="Deployment ns/dip" budget=ns/dip ready=true ignores=false failing=false critical="" action=evict rank=1 admitted=false
cand ns/one-a owner="Deployment ns/one" os="Deployment ns/one" budget=- ready=true ignores=false failing=false critical="" action=rolloutRestart rank=0 admitted=false
cand ns/recreate-a owner="Deployment ns/recreate" os="Deployment ns/recreate" budget=- ready=true ignores=false failing=false critical="" action=evict rank=0 admitted=false
cand ns/stuck-b owner="Deployment ns/stuck" os="Deployment ns/stuck" budget=ns/stuck ready=true ignores=false failing=false critical="" action=evict rank=0 admitted=true
cand ns/two-a owner="Deployment ns/two" os="Deployment ns/two" budget=- ready=true ignores=false failing=false critical="" action=evict rank=0 admitted=false
cand ns/two-b owner="Deployment ns/two" os="Deployment ns/two" budget=- ready=true ignores=false failing=false critical="" action=evict rank=1 admitted=false
skipped []
refused PodDisruptionBudget ns/stuck never allows an eviction as the workload stands (0 disruption(s) allowed, needs 2 healthy, has 2; evicting stuck-b): relax it or scale up first: ns/stuck-a
refused PodDisruptionBudget ns/tight never allows an eviction as the workload stands (0 disruption(s) allowed, needs 2 healthy, has 2): relax it or scale up first: ns/tight-a, ns/tight-b
refused pods pinned to pool old by the cni.projectcalico.org/ipv4pools annotation of their namespace (replacements would get no address while it is disabled: point the annotation at the target pool): legacy/old-a
owner "Deployment legacy/old" desired=1 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
owner "Deployment ns/dip" desired=3 goal=2 readyNow=2 readyOK=0 draining=0 inOld=2 notReady=[] touched=true
owner "Deployment ns/one" desired=1 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
owner "Deployment ns/recreate" desired=1 goal=1 readyNow=1 readyOK=0 draining=0 inOld=1 notReady=[] touched=true
owner "Deployment ns/stuck" desired=2 goal=2 readyNow=2 readyOK=0 draining=0 inOld=2 notReady=[] touched=true
owner "Deployment ns/tight" desired=2 goal=2 readyNow=2 readyOK=0 draining=0 inOld=2 notReady=[] touched=true
owner "Deployment ns/two" desired=2 goal=2 readyNow=4 readyOK=0 draining=0 inOld=2 notReady=[] touched=true
budget ns/dip healthy=2 unreflected=0 draining=0
budget ns/stuck healthy=2 unreflected=0 draining=0
budget ns/tight healthy=2 unreflected=0 draining=0
landed []
strays [ns/two-y (172.16.0.3)]
restart "Deployment ns/one" [ns/one-a]
pod legacy/old-a place=old pool owner="Deployment legacy/old"
pod ns/dip-a place=old pool owner="Deployment ns/dip"
pod ns/dip-b place=old pool owner="Deployment ns/dip"
pod ns/one-a place=old pool owner="Deployment ns/one"
pod ns/outside-a place=old pool owner="Deployment ns/outside"
pod ns/outside-l place=old pool owner="Deployment ns/outside"
pod ns/outside-x place=another pool owner="Deployment ns/outside"
pod ns/recreate-a place=old pool owner="Deployment ns/recreate"
pod ns/stuck-a place=old pool owner="Deployment ns/stuck"
pod ns/stuck-b place=old pool owner="Deployment ns/stuck"
pod ns/tight-a place=old pool owner="Deployment ns/tight"
pod ns/tight-b place=old pool owner="Deployment ns/tight"
pod ns/two-a place=old pool owner="Deployment ns/two"
pod ns/two-b place=old pool owner="Deployment ns/two"
pod ns/two-y place=another pool owner="Deployment ns/two"
pod ns/two-z place=another pool owner="Deployment ns/two"
byKey []
first sight "Deployment legacy/old" owed=1 readyOK=0
first sight "Deployment ns/dip" owed=2 readyOK=0
first sight "Deployment ns/one" owed=1 readyOK=0
first sight "Deployment ns/recreate" owed=1 readyOK=0
first sight "Deployment ns/stuck" owed=2 readyOK=0
first sight "Deployment ns/tight" owed=2 readyOK=0
first sight "Deployment ns/two" owed=4 readyOK=0
seen [ns/dip-a ns/dip-b ns/one-a ns/recreate-a ns/stuck-a ns/stuck-b ns/tight-a ns/tight-b ns/two-a ns/two-b]
`,
	}, {
		name: "second round: remembered owners, first sight kept",
		build: func(f *fakeStore, s *setup) {
			web, gone := f.deployment("ns", "web", 2), f.deployment("ns", "gone", 1)
			f.pods = []*corev1.Pod{
				mkPod("ns", "web-a", "192.168.0.1", web),
				mkPod("ns", "web-b", "192.168.0.2", web),
				mkPod("ns", "gone-a", "192.168.0.3", gone),
			}
		},
		again: func(f *fakeStore) {
			web, gone := f.deployment("ns", "web", 2), f.deployment("ns", "gone", 1)
			f.pods = []*corev1.Pod{
				mkPod("ns", "web-b", "192.168.0.2", web, terminating),
				mkPod("ns", "web-x", "10.0.0.1", web, createdAfter(time.Second)),
				mkPod("ns", "web-y", "", web, createdAfter(time.Second), pending),
				mkPod("ns", "gone-x", "", gone, pending), // the step's first second: not newer than the step
			}
		},
		want: `
wait ns/web-b: terminating
skipped []
owner "Deployment ns/gone" desired=1 goal=1 readyNow=0 readyOK=0 draining=0 inOld=0 notReady=[ns/gone-x] touched=true
owner "Deployment ns/web" desired=2 goal=2 readyNow=1 readyOK=1 draining=0 inOld=1 notReady=[ns/web-y] touched=true
landed []
strays []
arriving n1=1
pod ns/gone-x place=no address owner="Deployment ns/gone"
pod ns/web-b place=old pool owner="Deployment ns/web"
pod ns/web-x place=target pool owner="Deployment ns/web"
pod ns/web-y place=no address owner="Deployment ns/web"
byKey []
first sight "Deployment ns/gone" owed=1 readyOK=0
first sight "Deployment ns/web" owed=2 readyOK=0
seen [ns/gone-a ns/web-a ns/web-b]
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := &fakeStore{}, testSetup()
			tc.build(f, s)
			mem := newMemory()
			w := observe(f, s, mem, t0)
			if tc.again != nil {
				f.deps, f.rs = nil, nil
				tc.again(f)
				w = observe(f, s, mem, t0.Add(2*time.Second))
			}
			got := renderWorld(t, w, mem)
			if got != strings.TrimPrefix(tc.want, "\n") {
				t.Errorf("world:\n%s\nwant:\n%s", got, strings.TrimPrefix(tc.want, "\n"))
			}
		})
	}
}

// renderWorld writes out a world and a memory in a fixed order, checking on the way
// that the pointers observe shares between its indexes point at the same objects.
func renderWorld(t *testing.T, w *world, mem *memory) string {
	t.Helper()
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for _, c := range w.cands {
		os, budget := "-", "-"
		if c.os != nil {
			os = c.os.Owner.String()
			if w.owners[c.owner] != c.os {
				t.Errorf("%s: its ownerState is not the world's", c.key)
			}
		}
		if c.budget != nil {
			budget = c.budget.Key()
			if w.budgets[budget] != c.budget {
				t.Errorf("%s: its budget is not the world's", c.key)
			}
		}
		line("cand %s owner=%q os=%q budget=%s ready=%v ignores=%v failing=%v critical=%q action=%s rank=%d admitted=%v",
			c.key, c.owner, os, budget, c.ready, c.ignores, c.failing, c.critical, c.action, c.rank, c.admitted)
	}
	for _, wt := range w.waits {
		line("wait %s: %s", wt.key, wt.why)
	}
	line("skipped %v", w.skipped)
	for _, p := range w.refused.Problems(0) {
		line("refused %s", p)
	}
	owners := make([]Owner, 0, len(w.owners))
	for o := range w.owners {
		owners = append(owners, o)
	}
	sort.Slice(owners, func(i, j int) bool { return ownerLess(owners[i], owners[j]) })
	for _, o := range owners {
		os := w.owners[o]
		var notReady []string
		for _, p := range os.notReady {
			notReady = append(notReady, podKey(p))
		}
		line("owner %q desired=%d goal=%d readyNow=%d readyOK=%d draining=%d inOld=%d notReady=%v touched=%v",
			o, os.desired, os.goal, os.readyNow, os.readyOK, os.draining, os.inOld, notReady, os.touched)
	}
	budgets := make([]string, 0, len(w.budgets))
	for k := range w.budgets {
		budgets = append(budgets, k)
	}
	sort.Strings(budgets)
	for _, k := range budgets {
		bd := w.budgets[k]
		line("budget %s healthy=%d unreflected=%d draining=%d", k, bd.Healthy, bd.Unreflected, bd.Draining)
	}
	line("landed %v", w.landed)
	line("strays %v", w.strays)
	restarting := make([]Owner, 0, len(w.restarts))
	for o := range w.restarts {
		restarting = append(restarting, o)
	}
	sort.Slice(restarting, func(i, j int) bool { return ownerLess(restarting[i], restarting[j]) })
	for _, o := range restarting {
		var ks []string
		for _, c := range w.restarts[o] {
			if !slices.Contains(w.cands, c) {
				t.Errorf("restart %s is not a candidate", c.key)
			}
			ks = append(ks, c.key)
		}
		line("restart %q %v", o, ks)
	}
	nodes := make([]string, 0, len(w.arriving))
	for n := range w.arriving {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		line("arriving %s=%d", n, w.arriving[n])
	}
	var pods []string
	for uid, ps := range w.pods {
		if ps.pod.UID != uid {
			t.Errorf("pod %s indexed under %s", podKey(ps.pod), uid)
		}
		pods = append(pods, fmt.Sprintf("pod %s place=%s owner=%q", podKey(ps.pod), ps.place, ps.owner))
	}
	sort.Strings(pods)
	for _, p := range pods {
		line("%s", p)
	}
	var byKey []string
	for k, ps := range w.byKey {
		if w.pods[ps.pod.UID] != ps {
			t.Errorf("byKey %s is not the world's pod", k)
		}
		byKey = append(byKey, k)
	}
	sort.Strings(byKey)
	line("byKey %v", byKey)
	remembered := make([]Owner, 0, len(mem.owners))
	for o := range mem.owners {
		remembered = append(remembered, o)
	}
	sort.Slice(remembered, func(i, j int) bool { return ownerLess(remembered[i], remembered[j]) })
	for _, o := range remembered {
		line("first sight %q owed=%d readyOK=%d", o, mem.owners[o].owed, mem.owners[o].readyOK)
	}
	var seen []string
	for k, v := range mem.seen {
		if v {
			seen = append(seen, k)
		}
	}
	sort.Strings(seen)
	line("seen %v", seen)
	return b.String()
}
