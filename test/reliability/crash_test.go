package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
	"github.com/runbookdev/runbook/test/testbin"
)

// crashScenario is the Calico doc's cluster with enough pods behind tight budgets
// that moving them takes several seconds (one pod per workload at a time, each
// replacement Ready after its start delay): room for kills inside the move.
const crashScenario = `apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: reliability-crash
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true, blockSize: 26}
pods: {startDelay: 1s}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 3}
namespaces:
- {name: shop}
- {name: payments}
workloads:
- {name: coredns, namespace: kube-system, replicas: 2, labels: {k8s-app: kube-dns}, tolerateControlPlane: true, pdb: {maxUnavailable: 1}}
- {name: web, namespace: shop, replicas: 5, pdb: {maxUnavailable: 1}}
- {name: api, namespace: shop, replicas: 4, pdb: {minAvailable: 3}}
- {name: ledger, kind: StatefulSet, namespace: payments, replicas: 3, pdb: {maxUnavailable: 1}}
- {name: agent, kind: DaemonSet, namespace: payments}
`

// The example's steps, in order.
var exampleSteps = []string{"add-new-pool", "disable-old-pool", "move-pods", "move-tunnels", "verify", "delete-old-pool"}

// killPoint is where one invocation is killed: right after an event of the
// binary's -o json stream (a step boundary), or a random delay after a step
// started (an instant inside it).
type killPoint struct {
	event string // run.start, step.start, step.done, cleanup; "" for a random instant
	step  string // the event's step, or the step of a random instant
	delay time.Duration
}

func (k killPoint) String() string {
	if k.event == "" {
		return fmt.Sprintf("inside %s +%v", k.step, k.delay.Round(time.Millisecond))
	}
	if k.step == "" {
		return k.event
	}
	return k.event + " " + k.step
}

// crash is what happened to one kill.
type crash struct {
	n        int
	point    killPoint
	landed   string        // "at boundary", "inside", "at step end" (the step finished before the instant)
	alive    time.Duration // process start to kill
	inStep   time.Duration // step start to kill (random instants)
	journal  string        // the journal's status of the step after the kill
	evicted  int           // evictions this invocation reported
	recovery time.Duration // kill to the next invocation's resume event
}

// trialResult sums up one migration with kills.
type trialResult struct {
	injected, survived, inside, atEnd, boundaries int
	crashes                                       []crash
}

// reference is an uninterrupted migration: its end state and step durations.
type reference struct {
	state     string
	durations map[string]time.Duration
	counts    counts
	took      time.Duration
}

func loadScenario(t *testing.T, src string) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCrashAnywhere kills `runbook apply` of the example migration with SIGKILL at
// every step boundary and at random instants inside deletePodsInPool and
// assertNewAllocations, applying again after each kill, and requires the end state
// of an uninterrupted run: every pod in new-pool, the old pool gone, no
// verification namespace left, each change made once (pool created once, disabled
// once, each old-pool pod evicted once and no other pod evicted), one run resumed
// throughout, and the lock free.
func TestCrashAnywhere(t *testing.T) {
	s := seed(t)
	rng := newRand(s)
	scen := loadScenario(t, crashScenario)
	var ref reference
	t.Run("uninterrupted", func(t *testing.T) { ref = referenceRun(t, scen) })
	if t.Failed() {
		return
	}
	t.Logf("uninterrupted migration: %v; steps %v", ref.took.Round(time.Millisecond), ref.durations)

	type trial struct {
		name   string
		plan   planner
		expiry bool // wait out the lease instead of `runbook unlock`
	}
	inside := 20
	trials := []trial{{name: "batched", plan: batchedPlan(rng, ref, inside)}}
	if longRun() {
		trials = append(trials,
			trial{name: "batched-lease-expiry", plan: batchedPlan(rng, ref, inside), expiry: true},
			trial{name: "batched-3", plan: batchedPlan(rng, ref, inside)})
		for _, b := range boundaries() {
			trials = append(trials, trial{name: "only-" + strings.ReplaceAll(b.String(), " ", "-"), plan: listPlan([]killPoint{b})})
		}
	}
	var total trialResult
	for _, tr := range trials {
		t.Run(tr.name, func(t *testing.T) {
			res := crashTrial(t, scen, ref, tr.plan, tr.expiry)
			total.injected += res.injected
			total.survived += res.survived
			total.inside += res.inside
			total.atEnd += res.atEnd
			total.boundaries += res.boundaries
		})
	}
	t.Logf("crashes injected: %d, survived: %d (%d at step boundaries, %d at random instants inside deletePodsInPool/assertNewAllocations, %d at a step's end); seed %d",
		total.injected, total.survived, total.boundaries, total.inside, total.atEnd, s)
	if total.survived != total.injected {
		t.Errorf("%d of %d crashes not survived", total.injected-total.survived, total.injected)
	}
	if total.inside < inside {
		t.Errorf("only %d kills landed inside deletePodsInPool/assertNewAllocations, want at least %d", total.inside, inside)
	}
}

// boundaries are the kill points between journal writes the event stream shows:
// the run's journal created, each step marked running (before it acts), each
// step's action finished (the journal's done write races the kill), cleanup done.
func boundaries() []killPoint {
	out := []killPoint{{event: "run.start"}}
	for _, s := range exampleSteps {
		out = append(out, killPoint{event: "step.start", step: s}, killPoint{event: "step.done", step: s})
	}
	return append(out, killPoint{event: "cleanup", step: "verify"})
}

// planner yields the kill points of one migration in order; it sees the trial so
// far (steps done, kills that landed inside) to adapt.
type planner func(st *trialState) (killPoint, bool)

type trialState struct {
	done     map[string]bool // steps the journal has done
	inside   int
	lastStep map[string]time.Duration // the latest full duration of a step (step.start to step.done)
}

func listPlan(points []killPoint) planner {
	i := 0
	return func(*trialState) (killPoint, bool) {
		if i >= len(points) {
			return killPoint{}, false
		}
		i++
		return points[i-1], true
	}
}

// batchedPlan is one migration carrying every boundary kill and random kills inside
// move-pods (spread so that together they cover the reference's move) and verify
// (until `inside` kills have landed inside either, at most 3*inside attempts).
func batchedPlan(rng *rand.Rand, ref reference, inside int) planner {
	moveKills := inside * 3 / 5
	var queue []killPoint
	for _, b := range boundaries() {
		if b.event == "step.done" && (b.step == "move-pods" || b.step == "verify") {
			queue = append(queue, killPoint{step: b.step}) // placeholder: the random kills go here
		}
		queue = append(queue, b)
	}
	moved, verifyTries := 0, 0
	return func(st *trialState) (killPoint, bool) {
		for len(queue) > 0 {
			k := queue[0]
			if k.event != "" {
				queue = queue[1:]
				if k.event != "cleanup" && st.done[k.step] {
					continue // an earlier kill landed after the step's done write
				}
				return k, true
			}
			if st.done[k.step] {
				queue = queue[1:]
				continue
			}
			scale := ref.durations[k.step]
			if d, ok := st.lastStep[k.step]; ok && d < scale {
				scale = d // a resumed step may be quicker than a whole one
			}
			switch k.step {
			case "move-pods":
				if moved >= moveKills {
					queue = queue[1:]
					continue
				}
				moved++
				// Uniform over twice the mean share, so that the kills together
				// span about the whole move.
				return killPoint{step: k.step, delay: time.Duration(rng.Float64() * 2 * float64(scale) / float64(moveKills+1))}, true
			case "verify":
				if st.inside >= inside || verifyTries >= 3*inside {
					queue = queue[1:]
					continue
				}
				verifyTries++
				return killPoint{step: k.step, delay: time.Duration(rng.Float64() * 0.9 * float64(scale))}, true
			}
			queue = queue[1:]
		}
		return killPoint{}, false
	}
}

// referenceRun migrates a fresh cluster without interruption.
func referenceRun(t *testing.T, scen *scenarios.Scenario) reference {
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: scen})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k := clientsFor(c)
	obs := observe(ctx, t, k)
	m0, err := evictionResponses(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	p := start(ctx, t, "uninterrupted apply", c.KubeconfigPath(), applyArgs()...)
	starts := map[string]time.Time{}
	ref := reference{durations: map[string]time.Duration{}}
	for e := range p.events {
		switch e.Type {
		case "step.start":
			starts[e.Step] = e.seen
		case "step.done":
			ref.durations[e.Step] = e.seen.Sub(starts[e.Step])
		}
	}
	if code := p.wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("uninterrupted apply: exit %d\n%s", code, p.output())
	}
	ref.took = time.Since(p.started)
	settle(ctx, t, k)
	ref.state = endState(ctx, t, k)
	ref.counts = obs.counts()
	requireMigrated(ctx, t, k, ref.state)
	ref.counts.requireOnce(t, "uninterrupted", ref.counts.probePods, 1)
	requireEvictionCalls(ctx, t, k, m0, ref.counts)
	t.Logf("uninterrupted: %v", ref.counts)
	return ref
}

// settle waits until nothing is terminating any more (evicted pods, the
// verification namespace), so that end states compare what stays.
func settle(ctx context.Context, t *testing.T, k *clients) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := endState(ctx, t, k)
		if !strings.Contains(s, " Terminating") && !podsTerminating(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not settle within a minute:\n%s", s)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podsTerminating reports a pod group of an end state with terminating pods.
func podsTerminating(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "pods ") && !strings.HasSuffix(l, "terminating 0") {
			return true
		}
	}
	return false
}

// requireMigrated checks the end state against the migration's promises, whatever
// the reference says.
func requireMigrated(ctx context.Context, t *testing.T, k *clients, state string) {
	t.Helper()
	for _, l := range strings.Split(state, "\n") {
		switch {
		case strings.HasPrefix(l, "pool "+oldPoolName+" "):
			t.Errorf("old pool still there: %s", l)
		case strings.HasPrefix(l, "pods ") && !strings.Contains(l, " in "+newPoolName+":") && !strings.Contains(l, "host network"):
			t.Errorf("pods outside new-pool: %s", l)
		case strings.HasPrefix(l, "namespace "+probeNS+" "):
			t.Errorf("verification namespace left: %s", l)
		case strings.HasPrefix(l, "node ") && !strings.HasSuffix(l, "in "+newPoolName):
			t.Errorf("tunnel address outside new-pool: %s", l)
		case strings.HasPrefix(l, "lock: ") && l != "lock: free":
			t.Errorf("lock not released: %s", l)
		case strings.HasPrefix(l, "journal") && !strings.HasSuffix(l, ": done"):
			t.Errorf("journal not done: %s", l)
		}
		if strings.HasPrefix(l, "pods ") {
			var n, ready, term int
			if _, err := fmt.Sscanf(l[strings.LastIndex(l, ":")+1:], " %d, ready %d, terminating %d", &n, &ready, &term); err != nil || n != ready || term != 0 {
				t.Errorf("pods not all Ready: %s", l)
			}
		}
	}
	if !strings.Contains(state, "pool "+newPoolName+" ") {
		t.Errorf("new-pool missing:\n%s", state)
	}
}

// requireEvictionCalls: the apiserver served one successful eviction per pod
// evicted and no more (a second eviction of a terminating pod would be a needless call
// even though the pod's condition cannot show it).
func requireEvictionCalls(ctx context.Context, t *testing.T, k *clients, before map[string]float64, c counts) {
	t.Helper()
	after, err := evictionResponses(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	// An eviction in flight when its process is killed, or its run cancelled, may
	// still be carried out: the apiserver's timeout filter answers 504 (and counts
	// it so) for a request whose client went away, and lets the handler finish.
	// So the accepted evictions are at most the pods evicted, and with those 504s
	// at least as many; the observer has already checked each pod was evicted once.
	ok, cut := after["201"]-before["201"], after["504"]-before["504"]
	if int(ok) > c.evicted || int(ok+cut) < c.evicted {
		t.Errorf("the apiserver accepted %v evictions (and %v cut off) for %d pods evicted (responses before %v, after %v)", ok, cut, c.evicted, before, after)
	}
	var other []string
	for code, n := range after {
		if code != "201" && n-before[code] > 0 {
			other = append(other, fmt.Sprintf("%v × %s", n-before[code], code))
		}
	}
	if len(other) > 0 {
		t.Logf("other eviction responses: %s", strings.Join(other, ", "))
	}
}

// crashTrial runs one migration on a fresh cluster, killing it at the planner's
// points and applying again after each kill until it is done.
func crashTrial(t *testing.T, scen *scenarios.Scenario, ref reference, plan planner, expiry bool) trialResult {
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: scen})
	// Waiting out the lease after each of some 35 kills takes about 20 minutes
	// on its own.
	bound := 20 * time.Minute
	if expiry {
		bound = 45 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	k := clientsFor(c)
	obs := observe(ctx, t, k)
	m0, err := evictionResponses(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	st := &trialState{done: map[string]bool{}, lastStep: map[string]time.Duration{}}
	var res trialResult
	runID := ""
	verifications := 1
	var killedAt time.Time
	began := time.Now()
	for n := 1; ; n++ {
		point, more := plan(st)
		p := start(ctx, t, fmt.Sprintf("apply #%d", n), c.KubeconfigPath(), applyArgs()...)
		first := p.waitFor(t, "run start or resume", 2*time.Minute, func(e event) bool { return e.Type == "run.start" || e.Type == "run.resume" })
		switch {
		case runID == "" && first.Type == "run.start":
			runID = first.RunID
		case first.Type != "run.resume" || first.RunID != runID:
			t.Fatalf("apply #%d after a kill: %s of run %s, want the resume of run %s\n%s", n, first.Type, first.RunID, runID, p.output())
		}
		if len(res.crashes) > 0 {
			res.crashes[len(res.crashes)-1].recovery = first.seen.Sub(killedAt)
		}
		if !more {
			rest := p.drain()
			if code := p.wait(t, 10*time.Minute); code != 0 {
				t.Fatalf("final apply #%d: exit %d\n%s", n, code, p.output())
			}
			requireReport(t, rest, runID)
			break
		}
		cr := killAt(t, p, point, first, st)
		if cr == nil {
			// The run ended before the point came: nothing left to kill.
			if code := p.wait(t, time.Minute); code != 0 {
				t.Fatalf("apply #%d ended before %v with exit %d\n%s", n, point, code, p.output())
			}
			t.Logf("apply #%d finished before kill point %v", n, point)
			if point.event != "" {
				t.Errorf("boundary %v never came", point)
			}
			break
		}
		killedAt = time.Now()
		cr.n = n
		if p.signal != syscall.SIGKILL {
			t.Fatalf("apply #%d was not killed by SIGKILL: exit %s\n%s", n, p.exitString(), p.output())
		}
		j, _, err := k.store().Load(ctx)
		if err != nil {
			t.Fatalf("after kill #%d: journal unreadable: %v", n, err)
		}
		if j == nil {
			// run.start is printed just before the journal's first write: killed
			// there, there is no run yet and the next apply starts one.
			j = &engine.Journal{Status: "none"}
			runID = ""
		}
		for id, rec := range j.Steps {
			st.done[id] = rec.Status == engine.StatusDone || rec.Status == engine.StatusSkipped
		}
		if rec := j.Steps[point.step]; rec != nil {
			cr.journal = rec.Status
		} else {
			cr.journal = "journal " + j.Status
		}
		finished := j.Finished()
		if finished {
			// The kill came after the run's last journal write (it races the
			// final save): the migration is complete, and a later apply would
			// start a new run.
			cr.landed, cr.journal = "after the end", "journal "+j.Status
		}
		res.crashes = append(res.crashes, *cr)
		res.injected++
		switch cr.landed {
		case "inside":
			res.inside++
			st.inside++
		case "at step end":
			res.atEnd++
		default:
			res.boundaries++
		}
		// The killed process still holds the lock: a pipeline either waits the
		// lease out (the next apply takes over) or breaks it with unlock.
		holder := fmt.Sprintf("pid %d #", p.pid()) // then the holder nonce
		if expiry {
			testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, applyArgs()...).Must(t, 3, "held by", holder)
			waitLockFree(ctx, t, k)
		} else {
			// Not expired yet: unlock refuses without --force (the holder might
			// be alive), and breaks it with.
			testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, "unlock", "--yes").Must(t, 3, "has not expired", holder)
			testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, "unlock", "--yes", "--force").Must(t, 0, "broke the lock", holder)
		}
		if finished {
			// Applying again starts a new run that changes nothing (and archives
			// the finished one if the kill beat its archive).
			p := start(ctx, t, fmt.Sprintf("apply #%d (new run)", n+1), c.KubeconfigPath(), applyArgs()...)
			rest := p.drain()
			if code := p.wait(t, 5*time.Minute); code != 0 {
				t.Fatalf("apply after the finished run: exit %d\n%s", code, p.output())
			}
			for _, e := range rest {
				if e.Report != nil {
					for _, s := range e.Report.Steps {
						if s.Changed || s.Status != engine.StatusDone {
							t.Errorf("apply after the finished run: step %s %s changed=%v", s.ID, s.Status, s.Changed)
						}
					}
				}
			}
			verifications = 2
			break
		}
	}
	settle(ctx, t, k)
	state := endState(ctx, t, k)
	requireMigrated(ctx, t, k, state)
	if d := diffLines(ref.state, state); d != "" {
		t.Errorf("end state differs from the uninterrupted migration's:\n%s", d)
	}
	cs := obs.counts()
	cs.requireOnce(t, "with kills", ref.counts.probePods, verifications)
	requireEvictionCalls(ctx, t, k, m0, cs)
	hist, err := k.store().History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != verifications || hist[len(hist)-1].RunID != runID || hist[len(hist)-1].Status != engine.StatusDone {
		var ids []string
		for _, j := range hist {
			ids = append(ids, j.RunID+" "+j.Status)
		}
		t.Errorf("history: %v, want the one run %s done", ids, runID)
	}
	if !t.Failed() {
		res.survived = res.injected
	}
	t.Logf("migration with %d kills took %v: %v", res.injected, time.Since(began).Round(time.Millisecond), cs)
	t.Logf("%-3s %-34s %-13s %8s %8s %-12s %7s %9s", "#", "kill point", "landed", "alive", "in step", "journal", "evicted", "recovery")
	for _, cr := range res.crashes {
		in := ""
		if cr.inStep > 0 {
			in = cr.inStep.Round(time.Millisecond).String()
		}
		t.Logf("%-3d %-34s %-13s %8v %8s %-12s %7d %9v", cr.n, cr.point, cr.landed, cr.alive.Round(time.Millisecond), in, cr.journal, cr.evicted, cr.recovery.Round(time.Millisecond))
	}
	t.Logf("crashes injected: %d, survived: %d (%d inside a step, %d at a step's end, %d at boundaries)", res.injected, res.survived, res.inside, res.atEnd, res.boundaries)
	return res
}

// killAt reads p's events until the kill point and kills p there; nil when p
// ended first. first is the run's first event, already read.
func killAt(t *testing.T, p *proc, k killPoint, first event, st *trialState) *crash {
	t.Helper()
	cr := &crash{point: k, landed: "at boundary"}
	matches := func(e event) bool {
		return e.Type == k.event && (k.step == "" || e.Step == k.step)
	}
	starts := map[string]time.Time{}
	var timer <-chan time.Time
	deadline := time.After(10 * time.Minute)
	handle := func(e event) bool {
		switch e.Type {
		case "pod.evicted":
			cr.evicted++
		case "step.start":
			starts[e.Step] = e.seen
			if k.event == "" && e.Step == k.step {
				timer = time.After(k.delay)
			}
		case "step.done":
			if s, ok := starts[e.Step]; ok {
				st.lastStep[e.Step] = e.seen.Sub(s)
			}
		}
		if k.event != "" {
			return matches(e)
		}
		if e.Step == k.step && (e.Type == "step.done" || e.Type == "step.fail") {
			cr.landed = "at step end"
			return true
		}
		return false
	}
	if handle(first) {
		p.kill(t)
		cr.alive = time.Since(p.started)
		return cr
	}
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				return nil
			}
			if !handle(e) {
				continue
			}
		case <-timer:
			cr.landed = "inside"
		case <-deadline:
			t.Fatalf("%s: kill point %v not reached in 10 minutes\n%s", p.name, k, p.output())
		}
		break
	}
	p.kill(t)
	cr.alive = time.Since(p.started)
	if s, ok := starts[k.step]; ok && k.event == "" {
		cr.inStep = time.Since(s)
	}
	return cr
}

// requireReport checks the final invocation's report: the same run, done, every
// step done.
func requireReport(t *testing.T, events []event, runID string) {
	t.Helper()
	for _, e := range events {
		if e.Type != "report" || e.Report == nil {
			continue
		}
		r := e.Report
		if r.RunID != runID || r.Status != engine.StatusDone || !r.Resumed {
			t.Errorf("final report: run %s %s resumed=%v, want run %s done, resumed", r.RunID, r.Status, r.Resumed, runID)
		}
		for _, s := range r.Steps {
			if s.Status != engine.StatusDone {
				t.Errorf("final report: step %s %s", s.ID, s.Status)
			}
		}
		return
	}
	t.Errorf("final apply printed no report")
}

// waitLockFree waits for the lease of a killed holder to expire.
func waitLockFree(ctx context.Context, t *testing.T, k *clients) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for lockState(ctx, t, k) != "free" {
		if time.Now().After(deadline) {
			t.Fatal("the lease of a killed holder did not expire in 2 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
