package operator

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// Degraded reasons, as the operator's status manager reports them.
const (
	ReasonResourceNotReady     = "ResourceNotReady"
	ReasonResourceReadError    = "ResourceReadError"
	ReasonResourceUpdateError  = "ResourceUpdateError"
	ReasonResourceValidation   = "ResourceValidationError"
	ReasonInvalidConfiguration = "InvalidConfigurationError"
	reasonAllObjectsAvailable  = "AllObjectsAvailable"
	messageAllObjectsAvailable = "All objects are available"
	conditionAvailable         = "Available"
	conditionProgressing       = "Progressing"
	conditionDegraded          = "Degraded"
)

// condition is one TigeraStatus condition.
type condition struct {
	Type, Status, Reason, Message string
}

// statusWriter keeps TigeraStatus "ippools" and APIServer "default" status, writing
// only when something changes (every write is an event for the watchers).
type statusWriter struct {
	dyn dynamic.Interface
}

// degraded sets Degraded=True with the reason and message, Available=False.
func (s statusWriter) degraded(ctx context.Context, reason, message string) error {
	return s.set(ctx, []condition{
		{conditionAvailable, "False", reason, message},
		{conditionProgressing, "False", reason, message},
		{conditionDegraded, "True", reason, message},
	})
}

// available sets Available=True, Degraded=False.
func (s statusWriter) available(ctx context.Context) error {
	return s.set(ctx, []condition{
		{conditionAvailable, "True", reasonAllObjectsAvailable, messageAllObjectsAvailable},
		{conditionProgressing, "False", reasonAllObjectsAvailable, messageAllObjectsAvailable},
		{conditionDegraded, "False", reasonAllObjectsAvailable, messageAllObjectsAvailable},
	})
}

func (s statusWriter) set(ctx context.Context, want []condition) error {
	client := s.dyn.Resource(TigeraStatuses)
	cur, err := client.Get(ctx, StatusName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus",
			"metadata": map[string]any{"name": StatusName}, "spec": map[string]any{},
		}}
		cur, err = client.Create(ctx, obj, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("TigeraStatus %s: %w", StatusName, err)
	}
	old, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
	conditions := make([]any, 0, len(want))
	changed := len(old) != len(want)
	now := time.Now().UTC().Format(time.RFC3339)
	for i, c := range want {
		since := now
		if i < len(old) {
			o, _ := old[i].(map[string]any)
			if o["type"] == c.Type && o["status"] == c.Status {
				since, _ = o["lastTransitionTime"].(string)
			}
			changed = changed || o["type"] != c.Type || o["status"] != c.Status || o["reason"] != c.Reason || o["message"] != c.Message
		}
		conditions = append(conditions, map[string]any{
			"type": c.Type, "status": c.Status, "reason": c.Reason, "message": c.Message,
			"lastTransitionTime": since, "observedGeneration": cur.GetGeneration(),
		})
	}
	if !changed {
		return nil
	}
	if err := unstructured.SetNestedSlice(cur.Object, conditions, "status", "conditions"); err != nil {
		return err
	}
	if _, err := client.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("TigeraStatus %s: %w", StatusName, err)
	}
	return nil
}

// setAPIServerReady sets APIServer "default" status.state to Ready, as the
// operator's apiserver controller does once its Deployment is available; it never
// writes anything else there.
func (s statusWriter) setAPIServerReady(ctx context.Context) error {
	client := s.dyn.Resource(APIServers)
	cur, err := client.Get(ctx, DefaultName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // no APIServer resource: nothing to report on
	}
	if err != nil {
		return fmt.Errorf("APIServer %s: %w", DefaultName, err)
	}
	if state, _, _ := unstructured.NestedString(cur.Object, "status", "state"); state == StateReady {
		return nil
	}
	if err := unstructured.SetNestedField(cur.Object, StateReady, "status", "state"); err != nil {
		return err
	}
	if _, err := client.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("APIServer %s status: %w", DefaultName, err)
	}
	return nil
}
