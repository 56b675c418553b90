package podmove

import (
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/internal/textlist"
)

// Scope selects the pods the step is about.
type Scope struct {
	Namespace string          // "" means every namespace
	Selector  labels.Selector // nil means every pod
}

func (s Scope) contains(p *corev1.Pod) bool {
	if s.Namespace != "" && p.Namespace != s.Namespace {
		return false
	}
	return s.Selector == nil || s.Selector.Matches(labels.Set(p.Labels))
}

// Store is what the step reads: the informer cache, or a fake in tests. Objects
// are shared with the cache and must not be modified.
type Store interface {
	Workloads
	Pods() []*corev1.Pod
	PDBs() []*policyv1.PodDisruptionBudget
	// NamespaceAnnotations returns a namespace's annotations (pool pins), or nil.
	NamespaceAnnotations(name string) map[string]string
}

// Action is how one pod is moved.
type Action string

const (
	ActEvict   Action = "evict"
	ActDelete  Action = "delete"
	ActRestart Action = "rolloutRestart"
)

// candidate is a pod in the old pool the step will move.
type candidate struct {
	pod      *corev1.Pod
	key      string
	owner    Owner
	os       *ownerState // nil for bare pods
	budget   *Budget     // nil when no PDB covers it
	ready    bool
	ignores  bool // the eviction API ignores budgets for it (not Running)
	failing  bool
	critical string // what it backs (webhook, APIService), or ""
	action   Action
	rank     int // position within its owner: owners advance side by side
	// admitted: the eviction API already admitted this pod's eviction and counted it
	// in the budget, but the pod was never deleted (see Budget.AdmittedEviction):
	// the step finishes that eviction with a delete, at no cost to the budget.
	admitted bool
}

// ownerState is an owner the step is moving pods of (touched), with its counts.
type ownerState struct {
	Owner
	desired int // -1: unknown kind
	// goal is how many Ready pods it must have outside the old pool to be done:
	// what it owed at first sight (see firstSight), at most its desired count.
	goal     int
	readyNow int // Ready and not terminating, anywhere
	readyOK  int // ... and in a target pool (or never in the old one)
	draining int // own evictions whose pods the cache still shows Ready
	inOld    int // pods in scope still in the old pool
	// notReady are its pods neither Ready nor terminating (rendered only for a
	// failure message).
	notReady []*corev1.Pod
	touched  bool
}

// satisfied: the owner has its pods back in the target pools.
func (o *ownerState) satisfied() bool { return o.inOld == 0 && o.readyOK >= o.goal }

// waiting is a pod in the old pool the step waits for without acting.
type waiting struct {
	key, why string
}

// firstSight is what the step saw of an owner the first time it touched it in this
// invocation: the baseline its goal is measured against.
type firstSight struct {
	// owed is what the owner must have Ready again: its pods that were Ready, the
	// replacements already starting (a resumed step), and the pods already
	// terminating (their replacements may not exist yet: a StatefulSet recreates a
	// pod only once the old one is gone). Pods that were not Ready for reasons of
	// their own — crashlooping, never passing readiness, unschedulable — are not
	// owed: the step must not wait for an application that was already broken.
	owed    int
	readyOK int // Ready pods already outside the old pool: gains are counted from here
}

// memory is what observations keep between rounds of one invocation (never
// journaled: a resumed step builds it again from the cluster).
type memory struct {
	owners map[Owner]firstSight
	seen   map[string]bool // pod keys that needed a move: progress total
	// pods caches what observe works out of each pod version: most pods do not
	// change between two rounds, and at thousands of pods the label matching
	// against every budget of the namespace would dominate a round.
	pods  map[types.UID]*podMemo
	round uint64
}

func newMemory() *memory {
	return &memory{owners: map[Owner]firstSight{}, seen: map[string]bool{}, pods: map[types.UID]*podMemo{}}
}

// setup is the step's fixed configuration, resolved at start.
type setup struct {
	pool          Pool
	targets       []Pool
	scope         Scope
	filters       Filters
	strategy      Action
	singleRestart bool      // singleReplica: rolloutRestart
	since         time.Time // the step began: pods created later are replacements
	critical      []criticalService
}

// world is one observation: everything a round of decisions needs.
type world struct {
	now      time.Time
	cands    []*candidate
	waits    []waiting
	skipped  []string
	refused  Refusals
	owners   map[Owner]*ownerState
	budgets  map[string]*Budget
	landed   []string // replacements that got an address in the old pool again
	strays   []string // replacements outside the target pools
	restarts map[Owner][]*candidate
	// arriving counts, per node, pods bound to it that wait for their address:
	// work queued on the node's CNI, which sets up one pod at a time.
	arriving map[string]int
	// pods indexes every pod by UID, for settling the ledger.
	pods map[types.UID]*podState
	// byKey indexes StatefulSet pods by namespace/name (a replacement has its
	// predecessor's name).
	byKey map[string]*podState
}

// podState is a pod with what observe worked out about it.
type podState struct {
	pod   *corev1.Pod
	place Placement
	owner Owner
}

// done: nothing left in the old pool (bar skipped pods) and every owner back.
func (w *world) done() bool {
	if len(w.cands) > 0 || len(w.waits) > 0 {
		return false
	}
	for _, o := range w.owners {
		if o.touched && !o.satisfied() {
			return false
		}
	}
	return true
}

// observe builds the world from the store. It is deterministic given the store,
// the memory and the time; it records first sightings in mem.
func observe(st Store, s *setup, mem *memory, now time.Time) *world {
	w := &world{now: now, refused: Refusals{}, owners: map[Owner]*ownerState{}, budgets: map[string]*Budget{},
		restarts: map[Owner][]*candidate{}, byKey: map[string]*podState{}, arriving: map[string]int{}}
	byNS := map[string][]*Budget{}
	for _, pdb := range st.PDBs() {
		b := newBudget(pdb)
		w.budgets[b.Key()] = b
		byNS[b.Namespace] = append(byNS[b.Namespace], b)
	}
	pods := st.Pods()
	w.pods = make(map[types.UID]*podState, len(pods))
	type podInfo struct {
		pod     *corev1.Pod
		place   Placement
		owner   Owner
		managed bool
		after   bool      // created after the step began
		covers  []*Budget // the budgets whose selector matches the pod
	}
	mem.prune(len(pods))
	infos := make([]podInfo, 0, len(pods))
	stats := map[Owner]*ownerState{}
	owed := map[Owner]int{}
	gen := budgetsGeneration(w.budgets)
	for _, p := range pods {
		pm := mem.analyse(p, st, s, byNS, gen)
		pi := podInfo{pod: p, place: pm.place, owner: pm.owner, managed: pm.managed, after: p.CreationTimestamp.Time.After(s.since)}
		for _, k := range pm.covers {
			if b := w.budgets[k]; b != nil {
				pi.covers = append(pi.covers, b)
			}
		}
		infos = append(infos, pi)
		ps := &podState{pod: p, place: pi.place, owner: pi.owner}
		w.pods[p.UID] = ps
		if pi.owner.Kind == KindStatefulSet {
			w.byKey[podKey(p)] = ps
		}
		if pi.place == NoAddress && p.Annotations[annotationPodIPs] == "" && p.Spec.NodeName != "" && !p.Spec.HostNetwork &&
			p.Status.Phase == corev1.PodPending && !isTerminating(p) && now.Sub(p.CreationTimestamp.Time) < arrivingFor {
			w.arriving[p.Spec.NodeName]++
		}
		ready := isReady(p) && !isTerminating(p)
		if ready {
			for _, b := range pi.covers {
				b.Healthy++
			}
		}
		if pi.owner.IsZero() || isFinished(p) {
			continue
		}
		os := stats[pi.owner]
		if os == nil {
			os = &ownerState{Owner: pi.owner}
			stats[pi.owner] = os
		}
		if ready {
			os.readyNow++
			if pi.place != InOld && !(pi.place == Elsewhere && pi.after) {
				os.readyOK++
			}
		} else if !isTerminating(p) {
			os.notReady = append(os.notReady, p)
		}
		if ready || isTerminating(p) || (pi.after && !isFailing(p, now)) {
			owed[pi.owner]++
		}
	}
	touch := func(o Owner) *ownerState {
		os := stats[o]
		if os == nil {
			os = &ownerState{Owner: o}
			stats[o] = os
		}
		if !os.touched {
			os.touched = true
			os.desired = desired(o, st)
			fs, ok := mem.owners[o]
			if !ok {
				fs = firstSight{owed: owed[o], readyOK: os.readyOK}
				mem.owners[o] = fs
			}
			os.goal = fs.owed
			if os.desired >= 0 {
				os.goal = min(os.goal, os.desired)
			}
			w.owners[o] = os
		}
		return os
	}
	// Owners touched earlier in this invocation stay touched after their last pod
	// left the pool: their replacements may not be Ready yet.
	remembered := make([]Owner, 0, len(mem.owners))
	for o := range mem.owners {
		remembered = append(remembered, o)
	}
	for _, o := range remembered {
		touch(o)
	}
	// workload is how many pods a budget's owners want: the disruption controller's
	// expectedPods counts the pods that exist when minAvailable is a number, and
	// that dips while a pod is replaced (its ReplicaSet lagging, say after an API
	// server restart), which must not pass for a budget that never allows anything.
	// Worked out only for a budget that looks like one.
	sizes := map[*Budget]int{}
	workload := func(b *Budget) int {
		if n, ok := sizes[b]; ok {
			return n
		}
		pods, want := map[Owner]int{}, 0
		for _, pi := range infos {
			if !isFinished(pi.pod) && slices.Contains(pi.covers, b) {
				pods[pi.owner]++
			}
		}
		for o, n := range pods {
			if d := desired(o, st); !o.IsZero() && d >= 0 {
				want += d
			} else {
				want += n
			}
		}
		sizes[b] = max(want, int(b.ExpectedPods))
		return sizes[b]
	}
	for _, pi := range infos {
		p := pi.pod
		if !s.scope.contains(p) {
			continue
		}
		if pi.after && waitsFor(pi.owner) && !isFinished(p) {
			touch(pi.owner) // a replacement: its owner must come back, also after a resume
		}
		if pi.place != InOld {
			continue
		}
		key := podKey(p)
		if pi.after {
			w.landed = append(w.landed, key+" ("+oldAddress(p, s.pool)+")")
			continue
		}
		d, why := classify(p, pi.owner, pi.managed, s.filters)
		var os *ownerState
		if (d == Move || d == WaitGone) && pi.managed && waitsFor(pi.owner) {
			os = touch(pi.owner)
			os.inOld++
		}
		switch d {
		case Skip:
			w.skipped = append(w.skipped, key)
			continue
		case Refuse:
			w.refused.add(why, key)
			continue
		case WaitGone, WaitJob:
			w.waits = append(w.waits, waiting{key: key, why: why})
			continue
		}
		if pi.managed {
			if why := pinRefusal(p, st.NamespaceAnnotations(p.Namespace), s.pool); why != "" {
				w.refused.add(why, key)
				continue
			}
		}
		if !mem.seen[key] {
			mem.seen[key] = true
		}
		c := &candidate{pod: p, key: key, owner: pi.owner, os: os, ready: isReady(p), ignores: ignoresBudget(p),
			failing: isFailing(p, now), action: s.strategy}
		if !pi.managed && c.action == ActRestart {
			c.action = ActDelete // unmanagedPods: delete: nothing to restart
		}
		if s.singleRestart && c.action != ActRestart && os != nil && os.desired == 1 && canSurge(pi.owner, st) && restartRefusal(pi.owner, st) == "" {
			c.action = ActRestart // surge: the new pod is Ready before the only one goes
		}
		if c.action == ActRestart && pi.managed {
			if why := restartRefusal(pi.owner, st); why != "" {
				w.refused.add(why, key)
				continue
			}
		}
		covering := pi.covers
		if len(covering) > 1 && c.action == ActEvict {
			names := make([]string, len(covering))
			for i, b := range covering {
				names[i] = b.Key()
			}
			sort.Strings(names)
			w.refused.add("pods covered by several PodDisruptionBudgets, which the eviction API can never evict (HTTP 500; fix the overlap, or use strategy: delete) — "+textlist.Capped(names, 0), key)
			continue
		}
		if len(covering) > 0 {
			c.budget = covering[0]
			if c.action == ActEvict {
				c.admitted = c.budget.AdmittedEviction(p)
			}
		}
		if c.budget != nil && c.action != ActRestart && c.ready && !c.admitted && c.budget.NeverAllows() &&
			workload(c.budget) <= int(c.budget.DesiredHealthy) {
			w.refused.add(c.budget.String()+" never allows an eviction as the workload stands ("+c.budget.State()+"): relax it or scale up first", key)
			continue
		}
		c.critical = criticalFor(p, s.critical)
		w.cands = append(w.cands, c)
		if c.action == ActRestart {
			w.restarts[c.owner] = append(w.restarts[c.owner], c)
		}
	}
	for _, pi := range infos {
		p := pi.pod
		if pi.after && pi.place == Elsewhere && s.scope.contains(p) && w.owners[pi.owner] != nil {
			w.strays = append(w.strays, podKey(p)+" ("+addrList(p)+")")
		}
	}
	rankCandidates(w.cands)
	sort.Strings(w.landed)
	sort.Strings(w.strays)
	sort.Strings(w.skipped)
	return w
}

// rankCandidates numbers each owner's pods in the order they should go: not-Ready
// first (they cost no budget, and a crashlooping pod must not wait behind healthy
// ones), then StatefulSet pods from the highest ordinal down (as its rolling update
// does), then by name. The global order interleaves owners by rank, so every owner
// advances at once and the control plane's pipeline stays full.
func rankCandidates(cs []*candidate) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.owner != b.owner {
			return ownerLess(a.owner, b.owner)
		}
		if a.ready != b.ready {
			return !a.ready
		}
		if a.owner.Kind == KindStatefulSet {
			if oa, ob := ordinal(a.pod.Name), ordinal(b.pod.Name); oa != ob {
				return oa > ob
			}
		}
		return a.key < b.key
	})
	for i := range cs {
		if i > 0 && cs[i].owner == cs[i-1].owner && !cs[i].owner.IsZero() {
			cs[i].rank = cs[i-1].rank + 1
		}
	}
}

func ownerLess(a, b Owner) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

func addrList(p *corev1.Pod) string {
	as := addrs(p)
	out := ""
	for i, a := range as {
		if i > 0 {
			out += ","
		}
		out += a.String()
	}
	return out
}

// arrivingFor bounds how long a pod waiting for its address counts as work queued
// on its node: one stuck for longer (its CNI ADD keeps failing) is not progress the
// step should wait for, and must not block the node for good.
const arrivingFor = time.Minute

// waitsFor: owners whose pods the step waits to come back Ready. Not Jobs: their
// pods finish rather than come back.
func waitsFor(o Owner) bool { return !o.IsZero() && o.Kind != KindJob }
