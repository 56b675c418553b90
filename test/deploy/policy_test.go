package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/runbookdev/runbook/test/sandbox"
)

// TestAdmissionPolicy applies deploy/rbac.yaml and deploy/policy.yaml and checks,
// as the ServiceAccount, that the ValidatingAdmissionPolicy allows what runbook
// does and denies what RBAC alone would let through: unlabelled pods and
// namespaces, deleting a namespace no run created, a workload change other than a
// rollout restart. The whole migration under the policy is
// TestLeastPrivilegeThroughImpersonation.
func TestAdmissionPolicy(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := newApplier(t, c.RESTConfig())
	for _, file := range []string{"../../deploy/rbac.yaml", "../../deploy/policy.yaml"} {
		for _, u := range readObjects(t, file) {
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	admin := kubernetes.NewForConfigOrDie(c.RESTConfig())
	cfg := c.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:runbook-system:runbook",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:runbook-system", "system:authenticated"}}
	sa := kubernetes.NewForConfigOrDie(cfg)

	// A namespace of someone else's, and a Deployment in it.
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "policy-others"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Namespaces().Delete(context.Background(), "policy-others", metav1.DeleteOptions{})
	})
	one := int32(1)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "policy-others", Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "shop"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}}}}
	if _, err := admin.AppsV1().Deployments("policy-others").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "policy-others", Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}}}
	}
	// The policy is enforced once the apiserver's policy informer has it.
	waitDenied(ctx, t, func() error {
		_, err := sa.CoreV1().Pods("policy-others").Create(ctx, pod("unlabelled", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "pods and namespaces labelled app.kubernetes.io/managed-by=runbook")

	runLabels := map[string]string{"app.kubernetes.io/managed-by": "runbook", "runbook.dev/run-id": "20261201-000000-abcdef"}
	restart := `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-01T00:00:00Z","runbook.dev/restarted-by":"run/step"}}}}}`
	for _, tc := range []struct {
		name   string
		do     func() error
		denied string // "" when allowed
	}{
		{"a test pod with the run's labels", func() error {
			_, err := sa.CoreV1().Pods("policy-others").Create(ctx, pod("probe", runLabels), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, ""},
		{"a pod managed by runbook without a run id", func() error {
			_, err := sa.CoreV1().Pods("policy-others").Create(ctx, pod("norun", map[string]string{"app.kubernetes.io/managed-by": "runbook"}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, "runbook.dev/run-id"},
		{"an unlabelled namespace", func() error {
			_, err := sa.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "policy-stray"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, "managed-by=runbook"},
		{"the journal namespace, labelled", func() error {
			_, err := sa.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "policy-journal",
				Labels: map[string]string{"app.kubernetes.io/managed-by": "runbook"}}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, ""},
		{"deleting a namespace no run created", func() error {
			return sa.CoreV1().Namespaces().Delete(ctx, "policy-others", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		}, "namespaces a run created"},
		{"a rollout restart", func() error {
			_, err := sa.AppsV1().Deployments("policy-others").Patch(ctx, "web", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, ""},
		{"scaling a workload", func() error {
			_, err := sa.AppsV1().Deployments("policy-others").Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, "only by a rollout restart"},
		{"changing the image", func() error {
			_, err := sa.AppsV1().Deployments("policy-others").Patch(ctx, "web", types.StrategicMergePatchType,
				[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"evil:latest"}]}}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, "only by a rollout restart"},
		{"another template annotation", func() error {
			_, err := sa.AppsV1().Deployments("policy-others").Patch(ctx, "web", types.StrategicMergePatchType,
				[]byte(`{"spec":{"template":{"metadata":{"annotations":{"team":"evil"}}}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, "only by a rollout restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.denied == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case tc.denied != "" && (err == nil || !strings.Contains(err.Error(), tc.denied)):
				t.Fatalf("got %v, want a denial saying %q", err, tc.denied)
			}
		})
	}
}

// waitDenied retries do until it is denied with want (the policy is in force).
func waitDenied(ctx context.Context, t *testing.T, do func() error, want string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = do(); err != nil && strings.Contains(err.Error(), want) {
			return
		}
	}
	t.Fatalf("the policy was not in force after a minute: last answer %v", err)
}
