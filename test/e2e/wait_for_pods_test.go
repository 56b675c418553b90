package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestWaitForPods runs waitForPods through the engine against the sandbox's
// kwok pods, whose readiness probes pass only after their initialDelaySeconds
// (the sandbox's pod lifecycle): it waits for a Deployment's pods to become
// Ready, and fails, naming the pod and why, for a pod that never becomes Ready
// and for a selector that matches nothing.
func TestWaitForPods(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	const ns = "wait-for-pods"
	createNamespace(ctx, t, r.kube, ns)
	t.Cleanup(func() { deleteNamespaceAndWait(t, r.kube, ns) })

	probe := &corev1.Probe{InitialDelaySeconds: 3, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web", ReadinessProbe: probe}}},
			},
		},
	}
	if _, err := r.kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runbook := func(name, selector string, minPods int, timeout string) string {
		return fmt.Sprintf(`apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: %s}
steps:
  - id: wait
    action: waitForPods
    with: {namespace: %s, selector: %q, minPods: %d, timeout: %s}
`, name, ns, selector, minPods, timeout)
	}

	t.Run("waits for the Deployment's pods to be Ready", func(t *testing.T) {
		began := time.Now()
		rep, err := r.run(ctx, t, runbook("wait-web", "app=web", 3, "90s"), runOpts{})
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		s := step(t, rep, "wait")
		mustContain(t, "message", s.Message, "3 of 3 pods Ready")
		if got := r.journal(ctx, t, "wait-web").Steps["wait"].Outputs["ready"]; fmt.Sprint(got) != "3" {
			t.Fatalf("output ready = %v, want 3", got)
		}
		t.Logf("3 pods Ready %.1fs after the Deployment was created (probe delay 3 s): %s", time.Since(began).Seconds(), s.Message)
		// Run again: already satisfied, nothing changed.
		rep, err = r.run(ctx, t, runbook("wait-web-again", "app=web", 3, "5s"), runOpts{})
		if err != nil || step(t, rep, "wait").Changed {
			t.Fatalf("re-run: %v changed=%v", err, step(t, rep, "wait").Changed)
		}
	})

	t.Run("a pod that never becomes Ready fails the step, named", func(t *testing.T) {
		stuck := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: ns, Labels: labels,
				Annotations: map[string]string{sandbox.AnnotationFault: string(sandbox.FaultNeverReady)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}},
		}
		if _, err := r.kube.CoreV1().Pods(ns).Create(ctx, stuck, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		planner := r.bound.Impls["waitForPods"].(actions.Planner)
		pl, err := planner.Plan(ctx, &actions.Call{With: map[string]any{"namespace": ns, "selector": "app=web", "minPods": 3, "timeout": 4 * time.Second}})
		if err != nil || len(pl.Details) != 1 {
			t.Fatalf("plan: %v %+v", err, pl)
		}
		mustContain(t, "plan", pl.Details[0], "now 3 of 4 pods Ready", "waits up to 4s")
		rep, err := r.run(ctx, t, runbook("wait-stuck", "app=web", 3, "4s"), runOpts{})
		if err == nil {
			t.Fatalf("a never-ready pod passed: %+v", rep)
		}
		mustContain(t, "error", err.Error(), "after 4s, 3 of 4 pods Ready (at least 3 needed)", "stuck (")
		if rep.Status != engine.StatusFailed {
			t.Fatalf("status %s, want failed", rep.Status)
		}
	})

	t.Run("a selector matching nothing never passes", func(t *testing.T) {
		_, err := r.run(ctx, t, runbook("wait-none", "app=misspelt", 1, "2s"), runOpts{})
		if err == nil {
			t.Fatal("a selector matching no pod passed")
		}
		mustContain(t, "error", err.Error(), "0 of 0 pods Ready (at least 1 needed)", "too few pods match")
	})
}

// deleteNamespaceAndWait deletes a test namespace and waits for it to be gone,
// so the pods in it do not reach the next test on the shared cluster.
func deleteNamespaceAndWait(t *testing.T, kube kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", ns, err)
		return
	}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("namespace %s not gone: %v", ns, err)
	}
}
