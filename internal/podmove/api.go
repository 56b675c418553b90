package podmove

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/internal/kubeclient"
)

// requestTimeout bounds one eviction or delete: a slow API server must not stall a
// worker forever.
const requestTimeout = 30 * time.Second

// outcome classifies the answer to an eviction or delete.
type outcome int

const (
	accepted outcome = iota
	// goneAlready: 404, or the UID precondition failed (a new pod has the name).
	goneAlready
	// budgetRefused: 429 from a disruption budget.
	budgetRefused
	// nsTerminating: the namespace is being deleted; the pod goes with it.
	nsTerminating
	// transient: worth trying again later (timeouts, 5xx other than the
	// several-budgets refusal, throttling).
	transient
	// fatal: trying again cannot help (forbidden, invalid, several budgets).
	fatal
)

// move evicts (policy/v1) or deletes one pod, with the pod's UID as precondition:
// after a restart the cache may still show a StatefulSet pod whose name a new pod
// already has, and that one must not go.
func move(ctx context.Context, kube kubernetes.Interface, act Action, p *corev1.Pod) (outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	uid := p.UID
	opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
	var err error
	switch act {
	case ActDelete:
		err = kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, opts)
	default:
		err = kube.PolicyV1().Evictions(p.Namespace).Evict(ctx, &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}, DeleteOptions: &opts})
	}
	return classifyErr(err), err
}

func classifyErr(err error) outcome {
	switch {
	case err == nil:
		return accepted
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return goneAlready
	case apierrors.IsTooManyRequests(err):
		if isBudgetRefusal(err) {
			return budgetRefused
		}
		return transient
	case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nsTerminating
	case apierrors.IsInternalError(err) && strings.Contains(err.Error(), "more than one PodDisruptionBudget"):
		return fatal
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err),
		errors.Is(err, context.DeadlineExceeded), isConnectionError(err):
		return transient
	}
	return fatal
}

// isBudgetRefusal: a 429 that carries the DisruptionBudget cause (or, on older API
// servers, the budget's message) rather than API priority-and-fairness throttling.
func isBudgetRefusal(err error) bool {
	if apierrors.HasStatusCause(err, policyv1.DisruptionBudgetCause) {
		return true
	}
	return strings.Contains(err.Error(), "disruption budget")
}

// isConnectionError: errors below HTTP (connection refused or reset) carry no API
// status; the API server may be restarting.
func isConnectionError(err error) bool {
	var status apierrors.APIStatus
	return !errors.As(err, &status)
}

// restartOwner patches the owner's pod template like `kubectl rollout restart`.
func restartOwner(ctx context.Context, kube kubernetes.Interface, o Owner, patch []byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	opts := metav1.PatchOptions{FieldManager: "runbook"}
	var err error
	switch o.Kind {
	case KindDeployment:
		_, err = kube.AppsV1().Deployments(o.Namespace).Patch(ctx, o.Name, types.StrategicMergePatchType, patch, opts)
	case KindStatefulSet:
		_, err = kube.AppsV1().StatefulSets(o.Namespace).Patch(ctx, o.Name, types.StrategicMergePatchType, patch, opts)
	case KindDaemonSet:
		_, err = kube.AppsV1().DaemonSets(o.Namespace).Patch(ctx, o.Name, types.StrategicMergePatchType, patch, opts)
	default:
		return fmt.Errorf("cannot restart %s", o)
	}
	if err != nil {
		return fmt.Errorf("rollout restart of %s: %w", o, err)
	}
	return nil
}

// lastWarnings returns the latest Warning event message of up to max pods, for
// failure messages. Best effort: it runs when the step has already failed, with its
// own short deadline, and ignores errors.
func lastWarnings(kube kubernetes.Interface, keys []string, max int) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[string]string{}
	for i, k := range keys {
		if i == max {
			break
		}
		ns, name, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		if w := kubeclient.LatestWarning(ctx, kube, ns, name); w != "" {
			out[k] = w
		}
	}
	return out
}
