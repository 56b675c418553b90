package podmove

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/internal/textlist"
)

const (
	// minRound spaces decision rounds: a burst of watch events costs one round.
	// Small next to any pod's start time, large enough that recomputing over
	// thousands of pods stays a few percent of a core.
	minRound = 50 * time.Millisecond
	// roundCostFactor: a round whose decisions took t waits at least this many t
	// for the next, so deciding never takes more than a small share of a core.
	roundCostFactor = 8
	// maxRound caps the spacing: however slow one decision was (a loaded machine,
	// a huge cluster), a freed budget slot is acted on within this long.
	maxRound = 250 * time.Millisecond
	// tick re-evaluates without events (fallbacks, back-offs, progress).
	tick = 500 * time.Millisecond
	// apiParallelism bounds concurrent eviction/delete requests.
	apiParallelism = 32
	// coolFallback: a budget that answered 429 is retried after its status changes,
	// or after this long at the latest.
	coolFallback = 5 * time.Second
	// maxAttempts of a pod whose eviction keeps failing transiently.
	maxAttempts = 6
)

// Result is what the step did in this invocation.
type Result struct {
	Moved     int      // pods evicted or deleted
	Replaced  int      // of those, back in a target pool
	Restarted []string // owners restarted
	Skipped   []string // pods left in place on request
	Refused   int      // evictions a budget refused (429): should stay near zero
	// LateReflections counts evictions whose budget status did not show them
	// within the fallback delay (they held a budget slot longer than needed).
	LateReflections int
	// Away is the median and 95th percentile time from a pod's eviction to its
	// replacement being Ready in a target pool.
	AwayP50, AwayP95 time.Duration
}

// Changed reports whether the step changed anything.
func (r Result) Changed() bool { return r.Moved > 0 || len(r.Restarted) > 0 }

// answer is the result of one API call.
type answer struct {
	e   *entry
	out outcome
	err error
	at  time.Time
}

type mover struct {
	kube    kubernetes.Interface
	cache   *Cache
	cfg     Config
	s       *setup
	mem     *memory
	led     *ledger
	lim     limits
	answers chan answer
	// sem bounds the requests in flight. Not errgroup.SetLimit: its Go blocks
	// the caller (the decision loop) and cannot give up when ctx ends; here the
	// goroutine waits for a slot in a select beside ctx and still answers.
	sem   chan struct{}
	calls sync.WaitGroup

	cooling   map[string]time.Time // budget -> when it answered 429
	parked    map[string]time.Time // pod key -> not before
	attempts  map[string]int
	fatal     []error
	restarted map[Owner]bool
	res       Result
	start     time.Time
	lastProg  time.Time
	lastWaits map[string][]string
	away      []time.Duration // eviction to replacement Ready, per replaced pod
	// targetNames are the target pools' names, for the events.
	targetNames []string
}

// Run moves every pod of the pool (within the scope) until none is left and every
// owner is back, or fails naming what blocks it. ctx cancellation (a signal) returns
// ctx's error; the step's own timeout returns a descriptive error.
func Run(ctx context.Context, kube kubernetes.Interface, c *Cache, cfg Config) (Result, error) {
	if err := cfg.withDefaults(); err != nil {
		return Result{}, err
	}
	if len(cfg.Targets) == 0 {
		return Result{}, errors.New("no target pool")
	}
	crit, warnings, err := discoverCritical(ctx, kube, cfg.Dynamic)
	if err != nil {
		return Result{}, err
	}
	for _, w := range warnings {
		cfg.Events(Event{Time: time.Now(), Type: "warning", Message: w})
	}
	m := &mover{kube: kube, cache: c, cfg: cfg, s: cfg.setup(crit), mem: newMemory(), led: newLedger(), targetNames: names(cfg.Targets),
		lim:     limits{global: cfg.Concurrency, perNode: cfg.PerNodeConcurrency, maxUnavailable: cfg.MaxUnavailable},
		answers: make(chan answer, cfg.Concurrency+apiParallelism), sem: make(chan struct{}, apiParallelism),
		cooling: map[string]time.Time{}, parked: map[string]time.Time{}, attempts: map[string]int{}, restarted: map[Owner]bool{},
		start: time.Now()}
	callCtx, stopCalls := context.WithCancel(ctx)
	defer func() { stopCalls(); m.calls.Wait() }()
	return m.loop(ctx, callCtx)
}

func (m *mover) loop(ctx, callCtx context.Context) (Result, error) {
	timeout := time.NewTimer(m.cfg.Timeout)
	defer timeout.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var w *world
	for round := 0; ; round++ {
		began := time.Now()
		m.drainAnswers()
		// decided is the cost of deciding alone (observe, settle, pick: in-memory
		// work over the cache). Everything else a round does — answers and events
		// handed to the caller, owner restarts sent — is I/O and may block on a
		// slow API server or a full pipe; counting it would multiply a stall.
		var decided time.Duration
		decide := time.Now()
		w = observe(m.cache, m.s, m.mem, began)
		replaced := settle(m.led, w, m.mem, m.cache, m.cfg.Strategy)
		decided += time.Since(decide)
		for _, e := range replaced {
			m.replacedEvent(e)
		}
		m.res.Skipped = w.skipped
		if err := m.failure(w, round); err != nil {
			return m.result(), err
		}
		if w.done() && m.idle() && len(m.led.awaitingOneToOne()) == 0 {
			m.progress(w, true)
			return m.result(), nil
		}
		if !m.cfg.Deadline.IsZero() && began.After(m.cfg.Deadline) {
			return m.result(), fmt.Errorf("%w: stopped with %d pod(s) left in pool %s (%d moved in this run); apply again to continue",
				ErrDeadline, len(w.cands)+len(w.waits), m.cfg.Pool.Name, m.res.Moved)
		}
		decide = time.Now()
		picks, waits := pick(w, m.lim, m.load(began, w))
		decided += time.Since(decide)
		for _, ch := range picks {
			m.send(callCtx, ch, began)
		}
		m.restartDue(callCtx, w, waits)
		m.lastWaits = waits
		m.progress(w, false)
		if err := m.wait(ctx, timeout.C, ticker.C, w, began.Add(roundSpacing(decided))); err != nil {
			return m.result(), err
		}
	}
}

// roundSpacing is how long after a round began the next may begin, given what
// its decisions cost: at least minRound, several times the cost, at most maxRound.
func roundSpacing(decided time.Duration) time.Duration {
	return min(maxRound, max(minRound, roundCostFactor*decided))
}

// wait returns when something worth a new round happened (the cache changed, an
// answer came, the tick) and the round's spacing has passed (notBefore). It never
// sleeps past the run's context or the step's timeout: a signal, a lost lock or
// the deadline end the step at once.
func (m *mover) wait(ctx context.Context, timeout, tick <-chan time.Time, w *world, notBefore time.Time) error {
	var spaced <-chan time.Time // nil (never ready) until something happened
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) { // the step's timeout, set by the engine
				return m.timeoutError(w)
			}
			return fmt.Errorf("interrupted with %d pod(s) left in pool %s: %w", len(w.cands)+len(w.waits), m.cfg.Pool.Name, ctx.Err())
		case <-timeout:
			return m.timeoutError(w)
		case <-spaced:
			return nil
		case <-m.cache.Changed():
		case a := <-m.answers:
			m.handle(a)
		case <-tick:
		}
		if spaced != nil {
			continue // more happened while spacing: the next round sees it all
		}
		d := time.Until(notBefore)
		if d <= 0 {
			return nil
		}
		timer = time.NewTimer(d)
		spaced = timer.C
	}
}

// idle: no request is out.
func (m *mover) idle() bool {
	for _, e := range m.led.order {
		if !e.answered {
			return false
		}
	}
	return true
}

func (m *mover) result() Result {
	r := m.res
	r.Moved, r.Replaced = m.led.counts()
	r.LateReflections = m.led.lateReflections
	r.AwayP50, r.AwayP95 = quantile(m.away, 0.5), quantile(m.away, 0.95)
	return r
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*q)]
}

// failure returns the error that ends the step now, if any.
func (m *mover) failure(w *world, round int) error {
	pool := m.cfg.Pool
	if len(w.landed) > 0 {
		return fmt.Errorf("%d pod(s) created after the step began got an address in pool %s (%s) again — is it re-enabled, or pinned by a cni.projectcalico.org/ipv4pools or ipv6pools annotation?: %s",
			len(w.landed), pool.Name, pool.CIDR, textlist.Capped(w.landed, maxListed))
	}
	if len(w.strays) > 0 {
		return fmt.Errorf("%d replacement pod(s) got an address outside the target pool(s) %s: %s",
			len(w.strays), poolNames(m.cfg.Targets), textlist.Capped(w.strays, maxListed))
	}
	if len(w.refused) > 0 {
		problems := w.refused.Problems(maxListed)
		if round == 0 && len(m.led.order) == 0 && len(m.restarted) == 0 {
			return &RefusedError{Problems: problems}
		}
		return fmt.Errorf("pods appeared in pool %s that cannot be moved: %s", pool.Name, strings.Join(problems, "; "))
	}
	if len(m.fatal) > 0 {
		return fmt.Errorf("moving pods out of pool %s: %w", pool.Name, errors.Join(m.fatal...))
	}
	return nil
}

// load is what is in flight now. A node's load is the pods leaving it (evicted by
// this step, not gone yet) plus the pods arriving on it and waiting for an address:
// both are queued on the node's CNI.
func (m *mover) load(now time.Time, w *world) load {
	perNode := m.led.perNode()
	for n, k := range w.arriving {
		perNode[n] += k
	}
	ld := load{inFlight: m.led.inFlight(), perNode: perNode, cooling: map[string]bool{}, parked: map[string]bool{}, going: map[types.UID]bool{}}
	for _, e := range m.led.order {
		if e.live() && e.critical() {
			ld.criticalBusy = true
		}
		if !e.answered || (e.accepted && !e.terminating) {
			ld.going[e.uid] = true
		}
	}
	for b, at := range m.cooling {
		if m.cache.changeOf(b).After(at) || now.Sub(at) > coolFallback {
			delete(m.cooling, b)
			continue
		}
		ld.cooling[b] = true
	}
	for k, until := range m.parked {
		if now.Before(until) {
			ld.parked[k] = true
		}
	}
	return ld
}

// send records the pod in the ledger (so the next round counts it at once) and
// evicts or deletes it in the background.
func (m *mover) send(ctx context.Context, ch choice, now time.Time) {
	c := ch.c
	act := c.action
	if c.admitted {
		act = ActDelete // finish the eviction the API admitted: evicting again would wait on the budget it holds
	}
	e := &entry{key: c.key, uid: c.pod.UID, node: c.pod.Spec.NodeName, owner: c.owner, ready: c.ready && !c.ignores,
		consume: ch.consumes, sent: now, crit: c.critical != "", ip: oldAddress(c.pod, m.cfg.Pool), act: act, admitted: c.admitted}
	if c.budget != nil {
		e.budget = c.budget.Key()
	}
	m.led.add(e)
	m.calls.Add(1)
	pod := c.pod
	go func() {
		defer m.calls.Done()
		select {
		case m.sem <- struct{}{}:
		case <-ctx.Done():
			m.answers <- answer{e: e, out: transient, err: ctx.Err(), at: time.Now()}
			return
		}
		out, err := move(ctx, m.kube, act, pod)
		<-m.sem
		m.answers <- answer{e: e, out: out, err: err, at: time.Now()}
	}()
}

// drainAnswers applies every answer that has arrived.
func (m *mover) drainAnswers() {
	for {
		select {
		case a := <-m.answers:
			m.handle(a)
		default:
			return
		}
	}
}

func (m *mover) handle(a answer) {
	e := a.e
	e.answered = true
	switch a.out {
	case accepted:
		e.accepted = true
		delete(m.attempts, e.key)
		typ, msg := "pod.evicted", ""
		if e.act == ActDelete {
			typ = "pod.deleted"
		}
		if e.admitted {
			msg = "its eviction was admitted earlier (listed in " + e.budget + " status.disruptedPods) but the pod was never deleted: delete finished it"
		}
		m.cfg.Events(Event{Time: a.at, Type: typ, Pod: e.key, Node: e.node, Owner: ownerName(e.owner), IP: e.ip, Message: msg})
	case goneAlready:
		// Deleted by someone else, or a new pod has the name: nothing to do.
	case budgetRefused:
		// Our view of the budget was ahead of its status. Not retried blindly: the
		// budget is left alone until its status changes.
		m.cooling[e.budget] = a.at
		m.res.Refused++
		m.cfg.Events(Event{Time: a.at, Type: "pod.refused", Pod: e.key, Owner: ownerName(e.owner), Message: a.err.Error()})
	case nsTerminating:
		m.parked[e.key] = a.at.Add(time.Hour) // it goes with its namespace
	case transient:
		m.attempts[e.key]++
		if m.attempts[e.key] >= maxAttempts {
			m.fatal = append(m.fatal, fmt.Errorf("%s %s failed %d times: %w", e.act, e.key, maxAttempts, a.err))
			return
		}
		backoff := time.Duration(1<<m.attempts[e.key]) * 250 * time.Millisecond
		m.parked[e.key] = a.at.Add(backoff)
	case fatal:
		m.fatal = append(m.fatal, fmt.Errorf("%s %s: %w", e.act, e.key, a.err))
	}
}

func (m *mover) replacedEvent(e *entry) {
	if !e.accepted {
		return
	}
	ev := Event{Time: time.Now(), Type: "pod.replaced", Pod: e.key, Owner: ownerName(e.owner), Replacement: e.replacement, Pools: m.targetNames}
	ev.Took = ev.Time.Sub(e.sent).Round(time.Millisecond)
	if e.ready {
		m.away = append(m.away, ev.Took)
	}
	if !e.ready {
		ev.Message = "it was not Ready, so no Ready replacement is owed"
	}
	m.cfg.Events(ev)
}

// restartDue restarts the owners whose turn it is.
func (m *mover) restartDue(ctx context.Context, w *world, waits map[string][]string) {
	if len(w.restarts) == 0 {
		return
	}
	restarted := func(o Owner) bool { return m.restarted[o] || restartMarkOf(o, m.cache) == m.cfg.RestartMark }
	due, later := restartsDue(w, restarted, m.cfg.Concurrency)
	for _, o := range later {
		for _, c := range w.restarts[o] {
			waits["waiting for other owners' restarts (concurrency)"] = append(waits["waiting for other owners' restarts (concurrency)"], c.key)
		}
	}
	for o := range w.restarts {
		if restarted(o) {
			for _, c := range w.restarts[o] {
				why := "rollout restart of " + o.String() + " in progress"
				waits[why] = append(waits[why], c.key)
			}
		}
	}
	for _, o := range due {
		patch, err := restartPatch(m.cfg.RestartMark, time.Now())
		if err == nil {
			err = restartOwner(ctx, m.kube, o, patch)
		}
		if err != nil {
			m.fatal = append(m.fatal, err)
			continue
		}
		m.restarted[o] = true
		m.res.Restarted = append(m.res.Restarted, o.String())
		m.cfg.Events(Event{Time: time.Now(), Type: "owner.restarted", Owner: o.String(), Message: fmt.Sprintf("%d pod(s) in pool %s", len(w.restarts[o]), m.cfg.Pool.Name)})
	}
}

// progress emits a summary at most every progressEvery, and at the end.
func (m *mover) progress(w *world, final bool) {
	now := time.Now()
	if !final && now.Sub(m.lastProg) < progressEvery {
		return
	}
	m.lastProg = now
	moved, replaced := m.led.counts()
	total := max(len(m.mem.seen), moved)
	ev := Event{Time: now, Type: "progress", Moved: moved, Replaced: replaced, Total: total, InFlight: m.led.inFlight(),
		WaitingOnPDB: blockedOnBudget(m.lastWaits), ETA: eta(m.start, now, replaced, total)}
	if final {
		r := m.result()
		ev.Message = fmt.Sprintf("done: a pod was away (eviction to replacement Ready) %v at the median, %v at p95; %d eviction(s) refused by a disruption budget (429), %d budget update(s) seen late",
			r.AwayP50.Round(10*time.Millisecond), r.AwayP95.Round(10*time.Millisecond), r.Refused, r.LateReflections)
	}
	m.cfg.Events(ev)
}

// maxWarnings bounds the event lookups a timeout makes.
const maxWarnings = 5

// timeoutError names what the step is still waiting for, budgets first, and why
// pods that do not come back are stuck (their latest Warning event, such as the
// CNI's "failed to setup network for sandbox").
func (m *mover) timeoutError(w *world) error {
	var parts []string
	reasons := make([]string, 0, len(m.lastWaits))
	for why := range m.lastWaits {
		reasons = append(reasons, why)
	}
	sort.Slice(reasons, func(i, j int) bool {
		pi, pj := strings.Contains(reasons[i], "PodDisruptionBudget"), strings.Contains(reasons[j], "PodDisruptionBudget")
		if pi != pj {
			return pi
		}
		return reasons[i] < reasons[j]
	})
	for _, why := range reasons {
		pods := append([]string(nil), m.lastWaits[why]...)
		sort.Strings(pods)
		parts = append(parts, fmt.Sprintf("waiting on %s: %s", why, textlist.Capped(pods, maxListed)))
	}
	byWhy := map[string][]string{}
	for _, wt := range w.waits {
		byWhy[wt.why] = append(byWhy[wt.why], wt.key)
	}
	for why, pods := range byWhy {
		parts = append(parts, fmt.Sprintf("%s: %s", why, textlist.Capped(pods, maxListed)))
	}
	var owners []*ownerState
	for _, o := range w.owners {
		if o.touched && !o.satisfied() {
			owners = append(owners, o)
		}
	}
	sort.Slice(owners, func(i, j int) bool { return ownerLess(owners[i].Owner, owners[j].Owner) })
	var stuck []string
	for _, o := range owners {
		for _, p := range o.notReady {
			stuck = append(stuck, podKey(p))
		}
	}
	warnings := lastWarnings(m.kube, stuck, maxWarnings)
	for _, o := range owners {
		line := fmt.Sprintf("%s has %d of %d pod(s) Ready in the target pool(s)", o.Owner, o.readyOK, o.goal)
		if o.inOld > 0 {
			line += fmt.Sprintf(", %d still in pool %s", o.inOld, m.cfg.Pool.Name)
		}
		if len(o.notReady) > 0 {
			var nr []string
			for _, p := range o.notReady {
				nr = append(nr, podKey(p)+" ("+string(p.Status.Phase)+")")
			}
			sort.Strings(nr)
			line += ", not Ready: " + textlist.Capped(nr, maxListed)
		}
		for _, p := range o.notReady {
			if k := podKey(p); warnings[k] != "" {
				msg := warnings[k]
				line += " — " + k + ": " + msg
			}
		}
		parts = append(parts, line)
	}
	if pods := m.led.awaitingOneToOne(); len(pods) > 0 {
		parts = append(parts, "no replacement Ready in the target pool(s) yet for "+textlist.Capped(pods, maxListed)+" (StatefulSet: same name; DaemonSet: same node)")
	}
	left := len(w.cands) + len(w.waits)
	moved, _ := m.led.counts()
	return fmt.Errorf("timed out after %s with %d pod(s) left in pool %s (%d moved): %s",
		time.Since(m.start).Round(time.Second), left, m.cfg.Pool.Name, moved, strings.Join(parts, "; "))
}

func ownerName(o Owner) string {
	if o.IsZero() {
		return ""
	}
	return o.String()
}

func names(ps []Pool) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func poolNames(ps []Pool) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name + " (" + p.CIDR.String() + ")"
	}
	return strings.Join(names, ", ")
}
