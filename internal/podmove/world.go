package podmove

import (
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/internal/kubeclient"
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
	ob := newObservation(st, s, mem, now)
	byNS := ob.readBudgets()
	ob.readPods(byNS)
	ob.touchRemembered()
	for i := range ob.infos {
		ob.consider(&ob.infos[i])
	}
	ob.findStrays()
	ob.w.order()
	return ob.w
}

// observation is one observe call in the making: what its phases share while they
// build the world.
type observation struct {
	st  Store
	s   *setup
	mem *memory
	w   *world
	// infos are the pods in the store's order, with what observe worked out of them.
	infos []podInfo
	// stats counts every owner with pods, touched or not: touching one takes its
	// counts from here.
	stats map[Owner]*ownerState
	// owed is what each owner would owe if this were its first sight (see
	// firstSight.owed).
	owed map[Owner]int
	// sizes caches workload, which walks every pod.
	sizes map[*Budget]int
}

// podInfo is a pod with what observe worked out about it.
type podInfo struct {
	pod     *corev1.Pod
	place   Placement
	owner   Owner
	managed bool
	after   bool      // created after the step began
	covers  []*Budget // the budgets whose selector matches the pod
}

// newObservation starts with an empty world: the phases fill it in.
func newObservation(st Store, s *setup, mem *memory, now time.Time) *observation {
	w := &world{now: now, refused: Refusals{}, owners: map[Owner]*ownerState{}, budgets: map[string]*Budget{},
		restarts: map[Owner][]*candidate{}, byKey: map[string]*podState{}, arriving: map[string]int{}}
	return &observation{st: st, s: s, mem: mem, w: w, stats: map[Owner]*ownerState{}, owed: map[Owner]int{},
		sizes: map[*Budget]int{}}
}

// readBudgets reads the PDBs into the world, and returns them by namespace: a
// budget only ever covers pods of its own namespace, so pods are matched against
// those alone.
func (ob *observation) readBudgets() map[string][]*Budget {
	byNS := map[string][]*Budget{}
	for _, pdb := range ob.st.PDBs() {
		b := newBudget(pdb)
		ob.w.budgets[b.Key()] = b
		byNS[b.Namespace] = append(byNS[b.Namespace], b)
	}
	return byNS
}

// readPods works out every pod once and counts what the decisions weigh before any
// pod is considered: each budget's healthy pods, each owner's Ready pods and what
// it owes, each node's queued work.
func (ob *observation) readPods(byNS map[string][]*Budget) {
	pods := ob.st.Pods()
	ob.w.pods = make(map[types.UID]*podState, len(pods))
	ob.mem.prune(len(pods))
	ob.infos = make([]podInfo, 0, len(pods))
	gen := budgetsGeneration(ob.w.budgets)
	for _, p := range pods {
		pi := ob.infoOf(p, byNS, gen)
		ob.infos = append(ob.infos, pi)
		ob.w.index(&pi)
		ready := kubeclient.PodReady(p) && !isTerminating(p)
		if ready {
			for _, b := range pi.covers {
				b.Healthy++
			}
		}
		ob.countForOwner(&pi, ready)
	}
}

// infoOf is the pod's podInfo: the costly part comes from the memory (see
// memory.analyse), which keeps the budgets' keys, not the budgets of a past round.
func (ob *observation) infoOf(p *corev1.Pod, byNS map[string][]*Budget, gen uint64) podInfo {
	pm := ob.mem.analyse(p, ob.st, ob.s, byNS, gen)
	pi := podInfo{pod: p, place: pm.place, owner: pm.owner, managed: pm.managed, after: p.CreationTimestamp.Time.After(ob.s.since)}
	for _, k := range pm.covers {
		if b := ob.w.budgets[k]; b != nil {
			pi.covers = append(pi.covers, b)
		}
	}
	return pi
}

// index records the pod in the world's indexes, which settling the ledger reads,
// and counts it as work queued on its node while it waits for its address.
func (w *world) index(pi *podInfo) {
	p := pi.pod
	ps := &podState{pod: p, place: pi.place, owner: pi.owner}
	w.pods[p.UID] = ps
	if pi.owner.Kind == KindStatefulSet {
		w.byKey[podKey(p)] = ps
	}
	if pi.place == NoAddress && p.Annotations[annotationPodIPs] == "" && p.Spec.NodeName != "" && !p.Spec.HostNetwork &&
		p.Status.Phase == corev1.PodPending && !isTerminating(p) && w.now.Sub(p.CreationTimestamp.Time) < arrivingFor {
		w.arriving[p.Spec.NodeName]++
	}
}

// countForOwner counts the pod in its owner's stats, which touching the owner
// starts from. Bare pods have no owner to count in, finished pods nothing to give.
func (ob *observation) countForOwner(pi *podInfo, ready bool) {
	p := pi.pod
	if pi.owner.IsZero() || isFinished(p) {
		return
	}
	os := ob.stat(pi.owner)
	if ready {
		os.readyNow++
		if pi.place != InOld && !(pi.place == Elsewhere && pi.after) {
			os.readyOK++
		}
	} else if !isTerminating(p) {
		os.notReady = append(os.notReady, p)
	}
	if ready || isTerminating(p) || (pi.after && !isFailing(p, ob.w.now)) {
		ob.owed[pi.owner]++
	}
}

// stat is the owner's stats, created empty for an owner without pods counted.
func (ob *observation) stat(o Owner) *ownerState {
	os := ob.stats[o]
	if os == nil {
		os = &ownerState{Owner: o}
		ob.stats[o] = os
	}
	return os
}

// touch makes the owner one the step moves pods of, which it waits for until the
// owner has its pods back: the first time in this invocation, it records what the
// owner owes (its goal is measured against that first sight, not today's counts).
func (ob *observation) touch(o Owner) *ownerState {
	os := ob.stat(o)
	if !os.touched {
		os.touched = true
		os.desired = desired(o, ob.st)
		fs, ok := ob.mem.owners[o]
		if !ok {
			fs = firstSight{owed: ob.owed[o], readyOK: os.readyOK}
			ob.mem.owners[o] = fs
		}
		os.goal = fs.owed
		if os.desired >= 0 {
			os.goal = min(os.goal, os.desired)
		}
		ob.w.owners[o] = os
	}
	return os
}

// touchRemembered touches again the owners touched earlier in this invocation:
// they stay touched after their last pod left the pool, as their replacements may
// not be Ready yet.
func (ob *observation) touchRemembered() {
	remembered := make([]Owner, 0, len(ob.mem.owners))
	for o := range ob.mem.owners {
		remembered = append(remembered, o)
	}
	for _, o := range remembered {
		ob.touch(o)
	}
}

// workload is how many pods a budget's owners want: the disruption controller's
// expectedPods counts the pods that exist when minAvailable is a number, and
// that dips while a pod is replaced (its ReplicaSet lagging, say after an API
// server restart), which must not pass for a budget that never allows anything.
// Worked out only for a budget that looks like one.
func (ob *observation) workload(b *Budget) int {
	if n, ok := ob.sizes[b]; ok {
		return n
	}
	pods, want := map[Owner]int{}, 0
	for _, pi := range ob.infos {
		if !isFinished(pi.pod) && slices.Contains(pi.covers, b) {
			pods[pi.owner]++
		}
	}
	for o, n := range pods {
		if d := desired(o, ob.st); !o.IsZero() && d >= 0 {
			want += d
		} else {
			want += n
		}
	}
	ob.sizes[b] = max(want, int(b.ExpectedPods))
	return ob.sizes[b]
}

// consider decides what the step does with one pod of its scope: wait for its
// owner (a replacement), report it (a replacement back in the old pool), or, for a
// pod in the old pool, wait, skip, refuse or move it.
func (ob *observation) consider(pi *podInfo) {
	p := pi.pod
	if !ob.s.scope.contains(p) {
		return
	}
	if pi.after && waitsFor(pi.owner) && !isFinished(p) {
		ob.touch(pi.owner) // a replacement: its owner must come back, also after a resume
	}
	if pi.place != InOld {
		return
	}
	key := podKey(p)
	if pi.after {
		ob.w.landed = append(ob.w.landed, key+" ("+oldAddress(p, ob.s.pool)+")")
		return
	}
	os, move := ob.triage(pi, key)
	if !move {
		return
	}
	if !ob.mem.seen[key] {
		ob.mem.seen[key] = true
	}
	c := ob.newCandidate(pi, key, os)
	if why := ob.refusal(c, pi); why != "" {
		ob.w.refused.add(why, key)
		return
	}
	c.critical = criticalFor(p, ob.s.critical)
	ob.w.cands = append(ob.w.cands, c)
	if c.action == ActRestart {
		ob.w.restarts[c.owner] = append(ob.w.restarts[c.owner], c)
	}
}

// triage runs the filters over a pod in the old pool: it records the pods the step
// waits for, skips or refuses, and says whether the pod is one to move. The owner
// of a pod to move or to wait out is touched first (os) and counts it in the old
// pool: the step waits for the owner to come back either way.
func (ob *observation) triage(pi *podInfo, key string) (os *ownerState, move bool) {
	p := pi.pod
	d, why := classify(p, pi.owner, pi.managed, ob.s.filters)
	if (d == Move || d == WaitGone) && pi.managed && waitsFor(pi.owner) {
		os = ob.touch(pi.owner)
		os.inOld++
	}
	switch d {
	case Skip:
		ob.w.skipped = append(ob.w.skipped, key)
		return os, false
	case Refuse:
		ob.w.refused.add(why, key)
		return os, false
	case WaitGone, WaitJob:
		ob.w.waits = append(ob.w.waits, waiting{key: key, why: why})
		return os, false
	}
	if pi.managed {
		if why := pinRefusal(p, ob.st.NamespaceAnnotations(p.Namespace), ob.s.pool); why != "" {
			ob.w.refused.add(why, key)
			return os, false
		}
	}
	return os, true
}

// newCandidate is the pod to move, with the action the strategy and its owner call
// for.
func (ob *observation) newCandidate(pi *podInfo, key string, os *ownerState) *candidate {
	p := pi.pod
	c := &candidate{pod: p, key: key, owner: pi.owner, os: os, ready: kubeclient.PodReady(p), ignores: ignoresBudget(p),
		failing: isFailing(p, ob.w.now), action: ob.s.strategy}
	if !pi.managed && c.action == ActRestart {
		c.action = ActDelete // unmanagedPods: delete: nothing to restart
	}
	if ob.s.singleRestart && c.action != ActRestart && os != nil && os.desired == 1 && canSurge(pi.owner, ob.st) && restartRefusal(pi.owner, ob.st) == "" {
		c.action = ActRestart // surge: the new pod is Ready before the only one goes
	}
	return c
}

// refusal says why the step refuses to move the candidate by its action, or "".
// On the way it gives the candidate its budget, which the last check weighs.
func (ob *observation) refusal(c *candidate, pi *podInfo) string {
	if c.action == ActRestart && pi.managed {
		if why := restartRefusal(pi.owner, ob.st); why != "" {
			return why
		}
	}
	if why := c.takeBudget(pi.covers); why != "" {
		return why
	}
	if c.budget != nil && c.action != ActRestart && c.ready && !c.admitted && c.budget.NeverAllows() &&
		ob.workload(c.budget) <= int(c.budget.DesiredHealthy) {
		return c.budget.String() + " never allows an eviction as the workload stands (" + c.budget.State() + "): relax it or scale up first"
	}
	return ""
}

// takeBudget gives the candidate the budget covering it, and whether that budget
// already admitted its eviction; or says why the eviction API could never evict it.
func (c *candidate) takeBudget(covering []*Budget) string {
	if len(covering) > 1 && c.action == ActEvict {
		names := make([]string, len(covering))
		for i, b := range covering {
			names[i] = b.Key()
		}
		sort.Strings(names)
		return "pods covered by several PodDisruptionBudgets, which the eviction API can never evict (HTTP 500; fix the overlap, or use strategy: delete) — " + textlist.Capped(names, 0)
	}
	if len(covering) > 0 {
		c.budget = covering[0]
		if c.action == ActEvict {
			c.admitted = c.budget.AdmittedEviction(c.pod)
		}
	}
	return ""
}

// findStrays lists the replacements of touched owners that got an address outside
// the target pools. A pass of its own: an owner may be touched by a pod that comes
// after its replacement in the store's order.
func (ob *observation) findStrays() {
	for _, pi := range ob.infos {
		p := pi.pod
		if pi.after && pi.place == Elsewhere && ob.s.scope.contains(p) && ob.w.owners[pi.owner] != nil {
			ob.w.strays = append(ob.w.strays, podKey(p)+" ("+addrList(p)+")")
		}
	}
}

// order puts the candidates in the order they should go, and the lists in an order
// of their own: reports do not depend on the store's order.
func (w *world) order() {
	rankCandidates(w.cands)
	sort.Strings(w.landed)
	sort.Strings(w.strays)
	sort.Strings(w.skipped)
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
