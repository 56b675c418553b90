package actions

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/kubeclient"
)

// namespaceObject is how the journal names the temporary namespace.
func namespaceObject(name string) ObjectRef {
	return ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: name}
}

// ensureProbeNamespace makes sure the temporary namespace exists and belongs to this
// run: created (intent recorded first) when absent; reused when this run created it
// (a resumed run); waited out when a runbook namespace is still terminating. A
// namespace runbook did not create for this run is never used: deleting it in
// cleanup would delete someone's workloads.
func ensureProbeNamespace(ctx context.Context, kube kubernetes.Interface, c *Call, name string) error {
	for attempt := 0; attempt < 3; attempt++ {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if err := c.Recorder.Intent(ctx, "namespace", name); err != nil {
				return err
			}
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
				Labels: map[string]string{calico.LabelRunID: c.RunID, calico.LabelManagedBy: "runbook"}}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: judge it
			}
			if err != nil {
				return fmt.Errorf("create namespace %s: %w", name, err)
			}
			return c.Recorder.Created(ctx, namespaceObject(name))
		case err != nil:
			return fmt.Errorf("get namespace %s: %w", name, err)
		}
		ours := ns.Labels[calico.LabelRunID] == c.RunID
		runbooks := ns.Labels[calico.LabelManagedBy] == "runbook" && ns.Labels[calico.LabelRunID] != ""
		switch {
		case ns.DeletionTimestamp != nil && (ours || runbooks):
			if err := waitNamespaceGone(ctx, kube, name); err != nil {
				return err
			}
		case ours:
			return nil
		default:
			return fmt.Errorf("%w: namespace %s exists and was not created by this run (labels %v): choose another namespace", ErrRefused, name, ns.Labels)
		}
	}
	return fmt.Errorf("namespace %s keeps changing under us", name)
}

// deleteProbeNamespace deletes the namespace if, and only if, this run created it,
// and waits until it is gone so that the next run does not find it terminating.
func deleteProbeNamespace(ctx context.Context, kube kubernetes.Interface, runID, name string) (bool, error) {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.Labels[calico.LabelRunID] != runID {
		return false, nil // not ours: never delete it
	}
	if ns.DeletionTimestamp == nil {
		uid := ns.UID
		err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("delete namespace %s: %w", name, err)
		}
	}
	return true, waitNamespaceGone(ctx, kube, name)
}

// waitNamespaceGone watches the namespace until it is deleted (or ctx ends).
func waitNamespaceGone(ctx context.Context, kube kubernetes.Interface, name string) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := kubeclient.ListWatch(kube.CoreV1().Namespaces().List, kube.CoreV1().Namespaces().Watch, kubeclient.Selecting("", sel))
	gone := func(store cache.Store) (bool, error) {
		_, exists, err := store.GetByKey(name)
		return !exists, err
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Namespace{}, gone, func(e watch.Event) (bool, error) {
		return e.Type == watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s is still terminating: %w", name, err)
	}
	return nil
}
