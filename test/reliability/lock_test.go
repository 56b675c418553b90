package reliability

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// lockScenario moves slowly (2 s start delay, one pod per workload at a time) so
// that a run can be killed or paused in the middle of the move and the next one
// still has pods to move.
var lockScenario = strings.Replace(strings.Replace(crashScenario, "startDelay: 1s", "startDelay: 2s", 1), "name: reliability-crash", "name: reliability-lock", 1)

// holder is one apply process with a recording proxy of its own, so that its
// writes can be told apart from the other runs'.
type holder struct {
	*proc
	rec *recorder
}

// TestLockWithProcesses: two applies at once, exactly one runs and the other exits
// with the lock-held code naming it; the runner killed with SIGKILL mid-move keeps
// the lock until its lease expires, then the next apply takes over and resumes the
// same run; a runner paused with SIGSTOP past its lease is taken over, and after
// SIGCONT not one state write leaves it (no eviction, test pod, journal, namespace
// or lease write: its own proxy records each) and it exits with the lock-held code
// saying it lost the lock; the run finishes with every change made once and the
// journal intact. It runs in `make test`: about two minutes (114-130 s on the
// sandbox), most of it three leases of 30 s waited out.
func TestLockWithProcesses(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: loadScenario(t, lockScenario)})
	// A bound for a loaded 2-core CI machine, where the test takes about two
	// minutes: every wait below is for an event or a state, never a fixed sleep.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	k := clientsFor(c)
	obs := observe(ctx, t, k)
	m0, err := evictionResponses(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	launch := func(name string) *holder {
		r := startRecorder(t, c.RESTConfig())
		kc := filepath.Join(dir, strings.NewReplacer(" ", "-", "(", "", ")", "").Replace(name)+".kubeconfig")
		if err := r.writeKubeconfig(kc); err != nil {
			t.Fatal(err)
		}
		return &holder{proc: start(ctx, t, name, kc, applyArgs()...), rec: r}
	}

	// Two at once: one runs, the other is refused naming it.
	a, b := launch("apply A"), launch("apply B")
	var winner, loser *holder
	select {
	case <-a.exited:
		winner, loser = b, a
	case <-b.exited:
		winner, loser = a, b
	case <-time.After(2 * time.Minute):
		t.Fatalf("two applies at once: neither was refused within two minutes\n%s\n%s", a.output(), b.output())
	}
	if loser.code != int(exitcode.LockHeld) || !strings.Contains(loser.stderrString(), `held by "`) ||
		!strings.Contains(loser.stderrString(), fmt.Sprintf("pid %d #", winner.pid())) {
		t.Fatalf("%s: exit %d, want %d naming %s (pid %d)\n%s", loser.name, loser.code, exitcode.LockHeld, winner.name, winner.pid(), loser.output())
	}
	t.Logf("two applies at once: %s ran, %s exited %d after %v: %s", winner.name, loser.name, loser.code,
		time.Since(loser.started).Round(time.Millisecond), firstLine(loser.stderrString()))
	runID := winner.waitFor(t, "run.start", 2*time.Minute, func(e event) bool { return e.Type == "run.start" }).RunID

	// SIGKILL in the middle of the move: the lease stays until it expires.
	winner.waitFor(t, "move-pods start", 3*time.Minute, isStart("move-pods"))
	winner.waitFor(t, "an eviction", 2*time.Minute, isType("pod.evicted"))
	winner.kill(t)
	killed := time.Now()
	testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, applyArgs()...).Must(t, int(exitcode.LockHeld), "held by", fmt.Sprintf("pid %d #", winner.pid()))
	d, refusals := takeOver(ctx, t, launch, "apply D", runID)
	t.Logf("SIGKILL of %s mid-move: %d applies refused (exit %d), %s took over and resumed run %s %v after the kill",
		winner.name, refusals, exitcode.LockHeld, d.name, runID, time.Since(killed).Round(time.Millisecond))
	if refusals == 0 {
		t.Errorf("a killed holder's lease was taken over at once: it must be held until it expires")
	}

	// SIGSTOP in the middle of the move, past the lease.
	e := pausePastLease(ctx, t, k, launch, d, "move-pods", runID, "apply E")

	// SIGSTOP in verify, once the verification namespace exists: a holder that
	// wakes up there must not clean up (delete the namespace) under the new holder.
	f := pausePastLease(ctx, t, k, launch, e, "verify", runID, "apply F")

	rest := f.drain()
	if code := f.wait(t, 5*time.Minute); code != 0 {
		t.Fatalf("%s: exit %d\n%s", f.name, code, f.output())
	}
	requireReport(t, rest, runID)
	settle(ctx, t, k)
	state := endState(ctx, t, k)
	requireMigrated(ctx, t, k, state)
	cs := obs.counts()
	cs.requireOnce(t, "with contention", cs.probePods, 1)
	if cs.probePods == 0 {
		t.Errorf("no verification pod was created")
	}
	requireEvictionCalls(ctx, t, k, m0, cs)
	// The journal is intact: it loads (checksum verified) and status reads it.
	if j, _, err := k.store().Load(ctx); err != nil || j == nil || j.RunID != runID || j.Status != engine.StatusDone {
		t.Errorf("journal after the contention: %+v, %v; want run %s done", j, err, runID)
	}
	testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, "status", runID, "-n", journalNS, "-o", "json").Must(t, 0, runID, `"done"`)
	t.Logf("after the contention: %v", cs)
}

// takeOver applies again every two seconds while the lock is held (exit 3) and
// returns the run that took over, after checking it resumes runID. The lease is
// 30 s; the bound leaves room for slow process starts on a loaded machine.
func takeOver(ctx context.Context, t *testing.T, launch func(string) *holder, name, runID string) (*holder, int) {
	t.Helper()
	const bound = 3 * time.Minute
	deadline := time.Now().Add(bound)
	for refusals := 0; ; refusals++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no takeover in %v (%d refusals)", name, bound, refusals)
		}
		h := launch(fmt.Sprintf("%s (attempt %d)", name, refusals+1))
		for {
			e, ok := h.next(2 * time.Minute)
			if !ok {
				if code := h.wait(t, time.Minute); code != int(exitcode.LockHeld) {
					t.Fatalf("%s: exit %d while waiting for the lock\n%s", h.name, code, h.output())
				}
				break
			}
			if e.Type == "run.start" || e.Type == "run.resume" {
				if e.Type != "run.resume" || e.RunID != runID {
					t.Fatalf("%s: %s of run %s, want the resume of run %s\n%s", h.name, e.Type, e.RunID, runID, h.output())
				}
				return h, refusals
			}
		}
		time.Sleep(2 * time.Second)
	}
}

// pausePastLease stops h with SIGSTOP inside step (for move-pods after one of its
// evictions, for verify once the verification namespace exists), lets another
// apply take over after the lease expired, then resumes h with SIGCONT once the new
// holder runs and requires that h exits with the lock-held code, saying it lost
// the lock, without a single state write after it woke up.
func pausePastLease(ctx context.Context, t *testing.T, k *clients, launch func(string) *holder, h *holder, step, runID, next string) *holder {
	t.Helper()
	h.waitFor(t, step+" start", 3*time.Minute, isStart(step))
	switch step {
	case "move-pods":
		h.waitFor(t, "an eviction", 2*time.Minute, isType("pod.evicted"))
	case "verify":
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := k.kube.CoreV1().Namespaces().Get(ctx, probeNS, metav1.GetOptions{}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no verification namespace within two minutes\n%s", h.name, h.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	h.signalOrFail(t, syscall.SIGSTOP)
	stopped := time.Now()
	n, refusals := takeOver(ctx, t, launch, next, runID)
	took := time.Since(stopped)
	// The new holder is running; the old one wakes up.
	h.rec.arm()
	woke := time.Now()
	h.signalOrFail(t, syscall.SIGCONT)
	code := h.wait(t, 2*time.Minute)
	exited := time.Since(woke)
	if code != int(exitcode.LockHeld) || !strings.Contains(h.stderrString(), "lost the run lock") {
		t.Errorf("%s after SIGCONT: exit %d, want %d saying it lost the run lock\n%s", h.name, code, exitcode.LockHeld, h.output())
	}
	// A write the apiserver refused (a 409 on a stale resourceVersion) changed
	// nothing: that is the journal's compare-and-swap fencing a write that left
	// an instant before the pause. One it accepted, or one cut off on the way
	// (the process cancelled it: it may have been applied), is a write without
	// the lock.
	var bad, refused []recorded
	for _, w := range h.rec.recorded() {
		if w.refused() {
			refused = append(refused, w)
		} else {
			bad = append(bad, w)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s sent %d state writes the apiserver did not refuse after it woke up without the lock:%s\n%s",
			h.name, len(bad), describeWrites(bad, woke), h.output())
	}
	if len(refused) > 0 {
		t.Logf("%s sent %d state writes after it woke up that the apiserver refused (nothing changed):%s", h.name, len(refused), describeWrites(refused, woke))
	}
	// What it did instead, as it told: the step that stopped and why.
	var told []string
	for _, e := range h.drain() {
		if e.seen.After(woke) && e.Type != "progress" {
			told = append(told, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.Type, e.Step, e.Status, firstLine(e.Message))))
		}
	}
	t.Logf("%s after SIGCONT said: %s", h.name, strings.Join(told, " | "))
	t.Logf("SIGSTOP of %s in %s: %d applies refused, %s took over and resumed %v later; after SIGCONT %s exited %d in %v with %d state writes sent (%d not refused by the apiserver): %s",
		h.name, step, refusals, n.name, took.Round(time.Millisecond), h.name, code, exited.Round(time.Millisecond),
		len(bad)+len(refused), len(bad), lastErrorLine(h.stderrString()))
	return n
}

func isStart(step string) func(event) bool {
	return func(e event) bool { return e.Type == "step.start" && e.Step == step }
}

func isType(typ string) func(event) bool { return func(e event) bool { return e.Type == typ } }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastErrorLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "lock") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lines[len(lines)-1]
}
