package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/preflight"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/<name>.golden (go test -update rewrites it).
// Escape codes are made visible so colour and redraws can be reviewed in a diff.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.NewReplacer("\x1b", "<ESC>", "\r", "<CR>").Replace(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

var t0 = time.Date(2026, 3, 14, 22, 0, 0, 0, time.UTC)

var sampleSource = &engine.Source{File: "runbooks/migrate-ippool/runbook.yaml", Commit: "3f1c9a7e5b2d4c6e8f0a1b2c3d4e5f6a7b8c9d0e", Dirty: true}

func sampleReport() *engine.Report {
	return &engine.Report{RunID: "20260314-220000-a1b2c3", Runbook: "migrate-ippool",
		RunbookDigest: "sha256:9b74c9897bac770ffc029102a200c5de0000000000000000000000000000abcd",
		ParamsDigest:  "sha256:1e0f3a5b7c9d0000000000000000000000000000000000000000000000001234",
		Env:           "staging", Source: sampleSource, StartedAt: t0, Status: engine.StatusRollbackFailed,
		Steps: []engine.StepReport{
			{ID: "add-new-pool", Action: "ensurePool", Status: engine.StatusRolledBack, Changed: true, Duration: 1200 * time.Millisecond, Message: "created pool new-pool", Rollback: "deleted pool new-pool"},
			{ID: "disable-old-pool", Action: "disablePool", Status: engine.StatusDone, Changed: true, Duration: 310 * time.Millisecond, Message: "disabled", Rollback: "failed: re-enable: the server is | unavailable"},
			{ID: "move-pods", Action: "deletePodsInPool", Status: engine.StatusFailed, Duration: 95 * time.Second, Error: "timeout: 2 pod(s) still in pool default-ipv4-ippool"},
			{ID: "verify", Action: "assertNewAllocations", Status: engine.StatusPending},
		},
		Error:     "step move-pods: timeout: 2 pod(s) still in pool default-ipv4-ippool",
		LeftToDo:  []string{"re-enable pool default-ipv4-ippool (kubectl patch ippool default-ipv4-ippool --type merge -p '{\"spec\":{\"disabled\":false}}')"},
		Preflight: samplePreflight()[1:],
	}
}

func samplePlan() *engine.Plan {
	return &engine.Plan{Runbook: "migrate-ippool", Env: "staging", Resumes: "20260314-210000-ffeedd",
		RunbookDigest: "sha256:9b74c9897bac770ffc029102a200c5de0000000000000000000000000000abcd",
		ParamsDigest:  "sha256:1e0f3a5b7c9d0000000000000000000000000000000000000000000000001234", Source: sampleSource,
		Steps: []engine.PlannedStep{
			{ID: "add-new-pool", Action: "ensurePool", Change: plans.Done},
			{ID: "disable-old-pool", Action: "disablePool", Change: plans.Update, Details: []string{"spec.disabled: false → true"}},
			{ID: "move-pods", Action: "deletePodsInPool", Change: plans.Unknown, Details: []string{"10 pod(s) in 4 owner(s)"}, Warnings: []string{"2 bare pod(s) are deleted, not recreated"}},
			{ID: "verify", Action: "assertNewAllocations", Change: plans.Check},
			{ID: "extra", Action: "pause", Change: plans.Skip},
			{ID: "create-thing", Action: "ensurePool", Change: plans.Create},
			{ID: "delete-old-pool", Action: "deletePool", Change: plans.Refused, PointOfNoReturn: true, Refusal: "require: len(allocations(params.oldPool)) == 0"},
			{ID: "noop", Action: "disablePool", Change: plans.None},
		},
		Preflight: samplePreflight()}
}

func samplePreflight() []preflight.Finding {
	return []preflight.Finding{
		{ID: "coverage", Severity: preflight.Block, Step: "add-new-pool", Subject: "IPPool new-pool spec.nodeSelector",
			Message: "IPv4: 1 node(s) with pods in default-ipv4-ippool are selected by no new pool (new-pool: \"zone == 'a'\"): worker-2 (3 pods)",
			Fix:     "widen the new pool's nodeSelector (all() selects every node) or add a pool for those nodes"},
		{ID: "references", Severity: preflight.Warn, Subject: "NetworkPolicy shop/allow-old spec.ingress[0].from[0].ipBlock.cidr",
			Message: "NetworkPolicy names 192.168.0.0/24 inside the old pool default-ipv4-ippool (192.168.0.0/16): pods moved to the new pool no longer match it",
			Fix:     "add the new pool's CIDR (or replace the old one) before the pods move"},
		{ID: "ipam-health", Severity: preflight.Info, Message: "IPAM is consistent: no leaked addresses, orphaned blocks or stuck affinities"},
	}
}

func TestGoldenReports(t *testing.T) {
	for _, color := range []bool{false, true} {
		suffix := map[bool]string{false: "", true: "-color"}[color]
		var b bytes.Buffer
		printReport(&b, style{on: color}, sampleReport())
		golden(t, "report"+suffix+".txt", b.String())
		b.Reset()
		printPlan(&b, style{on: color}, samplePlan(), false)
		golden(t, "plan"+suffix+".txt", b.String())
	}
	golden(t, "report.md", markdownReport(fullReport{Report: sampleReport()}))
	golden(t, "plan.md", markdownPlan(samplePlan(), false))
	plain := sampleReport()
	plain.Source, plain.Env, plain.LeftToDo, plain.Error, plain.Resumed = nil, "", nil, "", true
	golden(t, "report-no-git.md", markdownReport(fullReport{Report: plain}))
}

func TestGoldenRuns(t *testing.T) {
	j := &engine.Journal{RunID: "20260314-220000-a1b2c3", Runbook: "migrate-ippool", RunbookDigest: sampleReport().RunbookDigest,
		ParamsDigest: sampleReport().ParamsDigest, Env: "staging", Source: sampleSource, Status: engine.StatusAwaitingApproval,
		Holder: "alice@laptop pid 4242", StartedAt: t0, UpdatedAt: t0.Add(5 * time.Minute), Error: "step gate waits for approval",
		Steps: map[string]*engine.StepRecord{
			"add-new-pool": {Status: engine.StatusDone, Changed: true, Attempts: 1, Message: "created pool new-pool"},
			"gate":         {Status: engine.StatusAwaitingApproval, Attempts: 1, Message: "waits for approval"},
		}}
	old := &engine.Journal{RunID: "20260301-090000-000001", Runbook: "migrate-ippool", Status: engine.StatusDone,
		StartedAt: t0.Add(-13 * 24 * time.Hour), UpdatedAt: t0.Add(-13*24*time.Hour + time.Minute), Holder: "ci@runner pid 7",
		Source: &engine.Source{File: "runbooks/migrate-ippool/runbook.yaml", Commit: "aaaabbbbccccddddeeeeffff0000111122223333"}}
	var b bytes.Buffer
	g := &globalOptions{output: "text", out: &b}
	if err := printRuns(g, []*engine.Journal{old, j}, ""); err != nil {
		t.Fatal(err)
	}
	golden(t, "history.txt", b.String())
	b.Reset()
	if err := printJournal(g, j); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-run.txt", b.String())
}

// TestGoldenCatalog: what people read to write runbooks. (deletePodsInPool's text is
// left out: it is being written as the action evolves; its explain is checked by
// TestCLI.)
func TestGoldenCatalog(t *testing.T) {
	for _, args := range [][]string{{"actions"}, {"explain", "ensurePool"}, {"explain", "podsInPool"}} {
		stdout, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		golden(t, strings.Join(args, "-")+".txt", stdout)
	}
}

// runEvents is a run of the example migration as the engine and deletePodsInPool
// report it: the sequence every renderer is tested with.
type runEvent struct {
	at   time.Duration
	e    *engine.Event
	step string
	pod  *actions.PodMoveEvent
}

func sampleRun() []runEvent {
	ev := func(at time.Duration, e engine.Event) runEvent {
		e.Time, e.RunID = t0.Add(at), "20260314-220000-a1b2c3"
		return runEvent{at: at, e: &e}
	}
	pod := func(at time.Duration, e actions.PodMoveEvent) runEvent {
		e.Time = t0.Add(at)
		return runEvent{at: at, step: "move-pods", pod: &e}
	}
	s := time.Second
	return []runEvent{
		ev(0, engine.Event{Type: "run.start", Message: "run 20260314-220000-a1b2c3 of migrate-ippool"}),
		ev(0, engine.Event{Type: "step.start", Step: "add-new-pool", Status: "running", Message: "Add the new IP pool"}),
		ev(1*s, engine.Event{Type: "step.done", Step: "add-new-pool", Status: "done", Changed: true, Message: "created pool new-pool"}),
		ev(1*s, engine.Event{Type: "step.start", Step: "disable-old-pool", Status: "running", Message: "Disable the old IP pool"}),
		ev(2*s, engine.Event{Type: "step.done", Step: "disable-old-pool", Status: "done", Message: "already disabled"}),
		ev(2*s, engine.Event{Type: "step.start", Step: "move-pods", Status: "running", Message: "Recreate every pod that still has an address in the old pool"}),
		pod(2*s, actions.PodMoveEvent{Type: "warning", Message: "2 bare pod(s) will be deleted, not recreated"}),
		pod(3*s, actions.PodMoveEvent{Type: "pod.evicted", Pod: "shop/web-7d9f-abcde", Node: "kwok-node-1", Owner: "ReplicaSet/web-7d9f", IP: "192.168.12.4"}),
		pod(3*s, actions.PodMoveEvent{Type: "progress", Moved: 1, Total: 10, InFlight: 1}),
		pod(4*s, actions.PodMoveEvent{Type: "pod.refused", Pod: "shop/db-0", Owner: "StatefulSet/db", Message: "Cannot evict pod as it would violate the pod's disruption budget."}),
		pod(5*s, actions.PodMoveEvent{Type: "pod.replaced", Pod: "shop/web-7d9f-abcde", Replacement: "shop/web-7d9f-zyxwv", Took: 1800 * time.Millisecond}),
		pod(5*s, actions.PodMoveEvent{Type: "progress", Moved: 4, Replaced: 1, Total: 10, InFlight: 3, WaitingOnPDB: 1, ETA: 27 * s}),
		pod(14*s, actions.PodMoveEvent{Type: "pod.deleted", Pod: "shop/debug", Node: "kwok-node-2"}),
		pod(14*s, actions.PodMoveEvent{Type: "progress", Moved: 9, Replaced: 7, Total: 10, InFlight: 2, ETA: 4 * s}),
		pod(18*s, actions.PodMoveEvent{Type: "progress", Moved: 10, Replaced: 10, Total: 10, Message: "done: pods away p50 1.8s p95 3.1s; 1 eviction(s) refused (429), 0 budget update(s) not seen in time"}),
		ev(18*s, engine.Event{Type: "step.done", Step: "move-pods", Status: "done", Changed: true, Message: "10 pod(s) moved"}),
		ev(18*s, engine.Event{Type: "step.start", Step: "verify", Status: "running", Message: "Prove new pods get addresses from the new pool"}),
		ev(25*s, engine.Event{Type: "step.fail", Step: "verify", Status: "failed", Message: "test pod got 192.168.3.9, not in new-pool"}),
		ev(25*s, engine.Event{Type: "rollback", Step: "disable-old-pool", Message: "re-enabled pool default-ipv4-ippool"}),
		ev(26*s, engine.Event{Type: "cleanup", Step: "verify", Message: "cleaned up"}),
		ev(26*s, engine.Event{Type: "run.end", Status: "rolledBack", Message: "step verify failed"}),
	}
}

func renderRun(format string, tty, color bool) string {
	var b bytes.Buffer
	now := t0
	p := &printer{out: &b, format: format, st: style{on: color}, loc: time.UTC, plainProgressEvery: 10 * time.Second,
		lastProgress: map[string]time.Time{}}
	if tty {
		p.live = &liveLine{st: p.st, width: 100, now: func() time.Time { return now }}
	}
	for _, re := range sampleRun() {
		now = t0.Add(re.at)
		if re.e != nil {
			p.event(*re.e)
		} else {
			p.podEvent(re.step, *re.pod)
		}
		if tty {
			p.live.tick() // what the ticker would have done in between
		}
	}
	p.close()
	return b.String()
}

func TestGoldenRunOutput(t *testing.T) {
	golden(t, "run-plain.txt", renderRun("text", false, false))
	golden(t, "run-tty.txt", renderRun("text", true, true))
	golden(t, "run.jsonl", renderRun("json", false, false))
	if out := renderRun("yaml", false, false); out != "" {
		t.Errorf("-o yaml prints only the report, got events:\n%s", out)
	}
}

// TestPlanCapsLongSteps: at scale (hundreds of nodes, dozens of owners) a step
// prints its first lines and "and N more"; -v prints them all.
func TestPlanCapsLongSteps(t *testing.T) {
	var details, warnings []string
	for i := range 40 {
		details = append(details, fmt.Sprintf("detail %d", i))
		warnings = append(warnings, fmt.Sprintf("node-%d moves", i))
	}
	p := &engine.Plan{Runbook: "big", Steps: []engine.PlannedStep{{ID: "s", Action: "disablePool", Change: plans.Update, Details: details, Warnings: warnings}}}
	for _, tc := range []struct {
		verbose     bool
		has, hasNot string
	}{
		{verbose: false, has: "… and 25 more line(s) (plan -v shows all)", hasNot: "detail 15\n"},
		{verbose: false, has: "warning: … and 34 more warning(s) (plan -v shows all)", hasNot: "node-6 moves"},
		{verbose: true, has: "detail 39\n", hasNot: "more line(s)"},
		{verbose: true, has: "node-39 moves", hasNot: "more warning(s)"},
	} {
		var b strings.Builder
		printPlan(&b, style{}, p, tc.verbose)
		out := b.String()
		if !strings.Contains(out, tc.has) || strings.Contains(out, tc.hasNot) {
			t.Errorf("verbose=%t: want %q and not %q in:\n%s", tc.verbose, tc.has, tc.hasNot, out)
		}
	}
}
