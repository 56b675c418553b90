package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/runbooks"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
)

// setupPoolsRunbook adds the new pool and disables the old one.
const setupPoolsRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: setup}
steps:
  - id: add-new-pool
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: true}
  - id: disable-old-pool
    action: disablePool
    with: {name: default-ipv4-ippool}
`

// moveOnly is a runbook with just the move step (the pools are set up already).
func moveOnly(name, with string) string {
	return fmt.Sprintf(`apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: %s}
onFailure: stop
steps:
  - id: move-pods
    action: deletePodsInPool
    with: {pool: default-ipv4-ippool, targetPool: new-pool, %s}
`, name, with)
}

// podsOf lists a namespace's pods matching a label selector.
func podsOf(ctx context.Context, t *testing.T, r *poolRig, ns, selector string) []corev1.Pod {
	t.Helper()
	l, err := r.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// requireAllIn fails unless every pod holds an address in the new pool and is Ready.
func requireAllIn(t *testing.T, what string, pods []corev1.Pod) {
	t.Helper()
	if len(pods) == 0 {
		t.Errorf("%s: no pods", what)
	}
	for _, p := range pods {
		if !ready(&p) || !podIn(&p, newPool) {
			t.Errorf("%s: pod %s/%s is not Ready in the new pool (ready=%v ips=%v)", what, p.Namespace, p.Name, ready(&p), p.Status.PodIPs)
		}
	}
}

// TestDeletePodsInPoolWorkloads runs the step over every kind of pod the shipped
// workloads scenario holds, one namespace or selector at a time: what moves
// (Deployments with budgets, a DaemonSet on every node, a StatefulSet pod by pod, a
// crash-looping pod that must not deadlock, a never-Ready pod under AlwaysAllow,
// webhook backends one at a time), what is refused up front (the plan lists them),
// what waits on a budget with no room until the timeout names it, and what is
// skipped or deleted on request.
func TestDeletePodsInPoolWorkloads(t *testing.T) {
	s, err := scenarios.Load("workloads")
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)

	t.Run("plan lists per owner, blocked budgets and refusals", func(t *testing.T) {
		p := r.plan(ctx, t, movePodsRunbook("plan", ""))
		st := p.Steps[len(p.Steps)-1]
		all := st.Refusal + strings.Join(st.Details, "\n")
		t.Logf("plan of move-pods: %s %s", st.Change, all)
		mustContain(t, "plan", all, "several PodDisruptionBudgets", "shop/web-availability, shop/web-rollout",
			"bare pods", "default/debug", "annotation of their namespace", "legacy/pinned-by-namespace",
			"annotation of their pod", "shop/pinned-by-pod")
	})

	if rep, err := r.run(ctx, t, setupPoolsRunbook, runOpts{journal: "setup"}); err != nil {
		t.Fatalf("setup: %v %+v", err, rep)
	}

	t.Run("plan of one namespace", func(t *testing.T) {
		p := r.plan(ctx, t, moveOnly("plan-ks", "namespace: kube-system"))
		st := p.Steps[0]
		t.Logf("plan: %s refusal=%q details=%q warnings=%q", st.Change, st.Refusal, st.Details, st.Warnings)
		mustContain(t, "plan", strings.Join(st.Details, "\n"), "Deployment kube-system/coredns: 2 pod(s) by evict (PodDisruptionBudget kube-system/coredns)",
			"DaemonSet kube-system/node-agent: 4 pod(s) by evict (no PodDisruptionBudget: maxUnavailable 1)")
	})

	t.Run("Deployment and DaemonSet", func(t *testing.T) {
		before := podsOf(ctx, t, r, "kube-system", "app=node-agent")
		var ev podEvents
		rep, err := r.run(ev.ctx(ctx, t), t, moveOnly("kube-system", "namespace: kube-system, timeout: 2m"), runOpts{journal: "kube-system"})
		if err != nil {
			t.Fatalf("run: %v %+v", err, rep)
		}
		after := podsOf(ctx, t, r, "kube-system", "app=node-agent")
		requireAllIn(t, "node-agent", after)
		nodes := map[string]bool{}
		for _, p := range after {
			nodes[p.Spec.NodeName] = true
		}
		for _, p := range before {
			if !nodes[p.Spec.NodeName] {
				t.Errorf("node %s has no node-agent pod any more", p.Spec.NodeName)
			}
		}
		requireAllIn(t, "coredns", podsOf(ctx, t, r, "kube-system", "k8s-app=kube-dns"))
		if n := ev.replacedOneToOne("DaemonSet kube-system/node-agent"); n != len(before) {
			t.Errorf("%d DaemonSet pods replaced one to one, want %d", n, len(before))
		}
	})

	t.Run("webhook backends move first, one at a time", func(t *testing.T) {
		p := r.plan(ctx, t, moveOnly("plan-policy", `selector: "app in (policy, slow)"`))
		mustContain(t, "plan", strings.Join(p.Steps[0].Details, "\n"), "backs ValidatingWebhookConfiguration policy-system.policy.sandbox.runbook.dev: moved first")
		var ev podEvents
		rep, err := r.run(ev.ctx(ctx, t), t, moveOnly("policy", `selector: "app in (policy, slow)", timeout: 2m`), runOpts{journal: "policy"})
		if err != nil {
			t.Fatalf("run: %v %+v", err, rep)
		}
		requireAllIn(t, "policy", podsOf(ctx, t, r, "policy-system", "app=policy"))
		requireAllIn(t, "slow", podsOf(ctx, t, r, "shop", "app=slow"))
		var seq []string
		for _, e := range ev.all {
			if e.Type == "pod.evicted" || e.Type == "pod.replaced" {
				seq = append(seq, e.Type+" "+strings.SplitN(e.Pod, "/", 2)[0])
			}
		}
		want := "pod.evicted policy-system,pod.replaced policy-system,pod.evicted policy-system,pod.replaced policy-system,pod.evicted shop,pod.replaced shop"
		if strings.Join(seq, ",") != want {
			t.Errorf("order:\n %s\nwant\n %s", strings.Join(seq, ","), want)
		}
	})

	t.Run("StatefulSet, crashlooping, never-Ready under AlwaysAllow", func(t *testing.T) {
		before := map[string]string{}
		for _, p := range podsOf(ctx, t, r, "shop", "app=db") {
			before[p.Name] = string(p.UID)
		}
		var ev podEvents
		rep, err := r.run(ev.ctx(ctx, t), t, moveOnly("shop-kinds", `namespace: shop, selector: "app in (db, crashy, stuck-always)", timeout: 2m`), runOpts{journal: "shop-kinds"})
		if err != nil {
			t.Fatalf("run: %v %+v", err, rep)
		}
		db := podsOf(ctx, t, r, "shop", "app=db")
		requireAllIn(t, "db", db)
		for _, p := range db {
			if uid, ok := before[p.Name]; !ok || uid == string(p.UID) {
				t.Errorf("StatefulSet pod %s: not the same name with a new UID (before %q, now %q)", p.Name, uid, p.UID)
			}
		}
		for _, app := range []string{"crashy", "stuck-always"} {
			for _, p := range podsOf(ctx, t, r, "shop", "app="+app) {
				if !podIn(&p, newPool) {
					t.Errorf("%s pod %s still has %v", app, p.Name, p.Status.PodIPs)
				}
			}
		}
		if n := ev.replacedOneToOne("StatefulSet shop/db"); n != 3 {
			t.Errorf("%d StatefulSet pods replaced one to one, want 3", n)
		}
	})

	t.Run("a budget with no room fails the step within its timeout, naming it", func(t *testing.T) {
		uid := podsOf(ctx, t, r, "shop", "app=stuck")[0].UID
		start := time.Now()
		rep, err := r.run(ctx, t, moveOnly("stuck", `namespace: shop, selector: app=stuck, timeout: 15s`), runOpts{journal: "stuck"})
		took := time.Since(start)
		if err == nil || rep.Status != engine.StatusFailed {
			t.Fatalf("want a failed run, got %v %+v", err, rep)
		}
		msg := step(t, rep, "move-pods").Error
		mustContain(t, "failure", msg, "timed out", "PodDisruptionBudget shop/stuck allows no disruption now", "needs 1 healthy, has 0", "shop/stuck-")
		if took > 45*time.Second {
			t.Errorf("the step took %v with a 15s timeout", took)
		}
		if p := podsOf(ctx, t, r, "shop", "app=stuck")[0]; p.UID != uid {
			t.Errorf("the pod the budget protects was replaced")
		}
	})

	t.Run("bare pod: refused, skipped, deleted on request", func(t *testing.T) {
		rep, err := r.run(ctx, t, moveOnly("bare", "namespace: default"), runOpts{journal: "bare"})
		if err == nil {
			t.Fatalf("bare pod not refused: %+v", rep)
		}
		mustContain(t, "refusal", step(t, rep, "move-pods").Error, "refused, nothing was changed", "bare pods", "default/debug", "unmanagedPods")
		if _, err := r.run(ctx, t, moveOnly("bare-skip", "namespace: default, unmanagedPods: skip"), runOpts{journal: "bare-skip"}); err != nil {
			t.Fatalf("skip: %v", err)
		}
		j := r.journal(ctx, t, "bare-skip")
		if got := fmt.Sprint(j.Steps["move-pods"].Outputs["skipped"]); got != "[default/debug]" {
			t.Errorf("skipped output %s", got)
		}
		if _, err := r.run(ctx, t, moveOnly("bare-delete", "namespace: default, unmanagedPods: delete, timeout: 1m"), runOpts{journal: "bare-delete"}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if left := podsOf(ctx, t, r, "default", ""); len(left) != 0 {
			t.Errorf("bare pod still there: %s", names(left))
		}
	})

	t.Run("job pods: waited for, or skipped, never evicted", func(t *testing.T) {
		before := podsOf(ctx, t, r, "batch", "")
		rep, err := r.run(ctx, t, moveOnly("jobs-wait", "namespace: batch, timeout: 5s"), runOpts{journal: "jobs-wait"})
		if err == nil {
			t.Fatalf("jobs: wait finished with hour-long jobs running: %+v", rep)
		}
		mustContain(t, "failure", step(t, rep, "move-pods").Error, "Job pod: waiting for it to complete", "batch/report-")
		if _, err := r.run(ctx, t, moveOnly("jobs-skip", "namespace: batch, jobs: skip"), runOpts{journal: "jobs-skip"}); err != nil {
			t.Fatalf("jobs: skip: %v", err)
		}
		after := podsOf(ctx, t, r, "batch", "")
		if names(before) != names(after) {
			t.Errorf("job pods changed: %s → %s", names(before), names(after))
		}
	})
}

// plan makes the read-only plan of a runbook.
func (r *poolRig) plan(ctx context.Context, t *testing.T, src string) *engine.Plan {
	t.Helper()
	rb, err := runbooks.Parse("plan.yaml", []byte(src), actionsDefault())
	if err != nil {
		t.Fatal(err)
	}
	params, err := runbooks.ResolveParams(rb, runbooks.ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.MakePlan(ctx, engine.Options{Runbook: rb, Params: params, Impls: r.bound.Impls, Funcs: r.bound.Funcs, Store: r.store("plan-" + rb.Name)})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}
