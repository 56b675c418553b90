package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
)

// faultyReplicaSet creates ReplicaSet shop/stuck (2 pods, a budget of
// maxUnavailable 1) whose pods are Ready in the old pool, then changes its pod
// template so that every pod it creates from now on — the replacements — carries
// the sandbox's fault annotation. A ReplicaSet, not a Deployment: a template
// change of a ReplicaSet rolls nothing out, so only replacements are affected.
func faultyReplicaSet(ctx context.Context, t *testing.T, cs kubernetes.Interface, fault string) {
	t.Helper()
	two, one := int32(2), intstr.FromInt32(1)
	labels := map[string]string{"app": "stuck"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "shop"},
		Spec: appsv1.ReplicaSetSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}}}},
	}
	if _, err := cs.AppsV1().ReplicaSets("shop").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: "shop"},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("shop").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := cs.AppsV1().ReplicaSets("shop").Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		b, err := cs.PolicyV1().PodDisruptionBudgets("shop").Get(ctx, "stuck", metav1.GetOptions{})
		return err == nil && got.Status.ReadyReplicas == 2 && b.Status.DisruptionsAllowed == 1, nil
	})
	if err != nil {
		t.Fatalf("ReplicaSet shop/stuck not Ready with its budget: %v", err)
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{sandbox.AnnotationFault: fault}}}}})
	if _, err := cs.AppsV1().ReplicaSets("shop").Patch(ctx, "stuck", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// servingPods lists the Running and Ready pods by namespace/name and UID.
func servingPods(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && isReady(&p) {
			out[p.Namespace+"/"+p.Name] = string(p.UID)
		}
	}
	return out
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// requireRolledBack checks what the example's rollback promises after a failed
// move: the old pool enabled again, so the cluster keeps allocating from it.
func requireOldPoolEnabled(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	p, err := dyn.Resource(ippools).Get(ctx, oldPool, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("old pool: %v", err)
	}
	if d, _ := p.Object["spec"].(map[string]any)["disabled"].(bool); d {
		t.Errorf("old pool %s still disabled after the rollback", oldPool)
	}
}

// requireStillServing: every pod that was serving before the run and was not
// evicted by it is still the same pod, Running and Ready — the failed migration
// left the rest of the cluster alone. Evicted pods must have a serving
// replacement or be named in the failure.
func requireStillServing(t *testing.T, before, after map[string]string, evicted map[string]bool) {
	t.Helper()
	var gone []string
	for k, uid := range before {
		if evicted[k] {
			continue
		}
		if after[k] != uid {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	if len(gone) > 0 {
		t.Errorf("pods not moved by the run stopped serving: %s", strings.Join(gone, ", "))
	}
}

// TestWorkloadFaultsFailTheStepAndRollBack: replacements that never become
// Ready, or crash-loop, hold a workload's budget at zero, so the rest of its pods
// can never be evicted. The step must fail at its timeout (moveTimeout 40s here)
// naming the workload and the pods, the example's rollback must re-enable the old
// pool, and every pod the run did not evict must still be serving.
func TestWorkloadFaultsFailTheStepAndRollBack(t *testing.T) {
	requireCampaign(t)
	passed := 0
	for _, fault := range []string{sandbox.FaultNeverReady, sandbox.FaultCrashLoop} {
		t.Run(fault, func(t *testing.T) {
			c := sandbox.StartForTest(t, sandbox.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
			faultyReplicaSet(ctx, t, cs, fault)
			before := servingPods(ctx, t, cs)
			const timeout = 40 * time.Second
			start := time.Now()
			a := startApply(t, c.KubeconfigPath(), "--set", "moveTimeout="+timeout.String())
			evicted := map[string]bool{}
			var moveStart time.Time
			for e := range a.events {
				switch {
				case e.Type == "step.start" && e.Step == "move-pods":
					moveStart = time.Now()
				case e.Type == "pod.evicted" || e.Type == "pod.deleted":
					evicted[e.Pod] = true
				}
			}
			code := a.wait(t, 4*time.Minute)
			took := time.Since(moveStart)
			out := a.output()
			t.Logf("exit %d; move-pods failed %v after it started (timeout %v); %d pod(s) evicted; run %v",
				code, took.Round(time.Millisecond), timeout, len(evicted), time.Since(start).Round(time.Millisecond))
			if code != 6 {
				t.Fatalf("exit %d, want 6 (rolled back)\n%s", code, out)
			}
			for _, want := range []string{"timed out after", "ReplicaSet shop/stuck", "not Ready: shop/stuck-"} {
				if !strings.Contains(out, want) {
					t.Errorf("the failure does not name %q\n%s", want, out)
				}
			}
			// The promise is "within its timeout": the step may overrun it by
			// the time to notice and report, not by another timeout.
			if took > 2*timeout+30*time.Second {
				t.Errorf("move-pods failed only %v after it started, timeout %v", took, timeout)
			}
			dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
			requireOldPoolEnabled(ctx, t, dyn)
			j := loadJournal(ctx, t, cs)
			if j.Status != engine.StatusRolledBack {
				t.Errorf("journal status %q, want %s", j.Status, engine.StatusRolledBack)
			}
			requireStillServing(t, before, servingPods(ctx, t, cs), evicted)
			if !t.Failed() {
				passed++
			}
		})
	}
	t.Logf("FAULTS: workload fault scenarios passed: %d of 2", passed)
}

// TestNodeNotReadyMidMigration: a worker goes NotReady (its CNI not
// initialised, as when calico-node dies there) while pods move, and stays so. Its
// pods cannot be replaced on it, and nothing can start there. The step must either
// move every pod elsewhere (the scheduler avoids the tainted node) and the run
// finish, or fail within its timeout naming the node's pods, roll back and leave
// the other pods serving; both are logged, neither may hang.
func TestNodeNotReadyMidMigration(t *testing.T) {
	requireCampaign(t)
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: slowScenario(t, 2*time.Second)})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	before := servingPods(ctx, t, cs)
	const node = "worker-1"
	const timeout = 60 * time.Second
	a := startApply(t, c.KubeconfigPath(), "--set", "moveTimeout="+timeout.String())
	if _, ok := a.until(func(e event) bool { return e.Type == "pod.evicted" }); !ok {
		t.Fatalf("the run ended before moving pods\n%s", a.output())
	}
	if err := c.SetNodeReady(ctx, node, false); err != nil {
		t.Fatal(err)
	}
	evicted := map[string]bool{}
	for e := range a.events {
		if e.Type == "pod.evicted" || e.Type == "pod.deleted" {
			evicted[e.Pod] = true
		}
	}
	code := a.wait(t, 4*time.Minute)
	out := a.output()
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cond string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			cond = fmt.Sprintf("%s (%s)", c.Status, c.Reason)
		}
	}
	t.Logf("node %s Ready=%s; run exit %d", node, cond, code)
	switch code {
	case 0:
		requireMigrated(ctx, t, c)
	case 6:
		if !strings.Contains(out, "timed out after") || !strings.Contains(out, "shop/") && !strings.Contains(out, node) {
			t.Errorf("the failure names neither the pods nor the node\n%s", out)
		}
		requireOldPoolEnabled(ctx, t, dynamic.NewForConfigOrDie(c.RESTConfig()))
		after := servingPods(ctx, t, cs)
		for k := range before {
			if p, err := cs.CoreV1().Pods(strings.Split(k, "/")[0]).Get(ctx, strings.Split(k, "/")[1], metav1.GetOptions{}); err == nil && p.Spec.NodeName == node {
				evicted[k] = true // the node's own pods go NotReady with it
			}
		}
		requireStillServing(t, before, after, evicted)
	default:
		t.Fatalf("exit %d, want 0 (moved around the node) or 6 (failed, rolled back)\n%s", code, out)
	}
	if !t.Failed() {
		t.Logf("FAULTS: node NotReady scenario passed (exit %d)", code)
	}
	if err := c.SetNodeReady(ctx, node, true); err != nil {
		t.Fatal(err)
	}
}
