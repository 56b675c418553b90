package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/engine"
)

// kubeEvents also records step events as Kubernetes Events on the journal
// ConfigMap, so `kubectl describe` and cluster audit tooling see the run.
func (s *session) kubeEvents(store engine.Store, next func(engine.Event)) func(engine.Event) {
	cms, ok := store.(*engine.ConfigMapStore)
	if !ok {
		return next
	}
	return func(e engine.Event) {
		next(e)
		switch e.Type {
		case "step.done", "step.fail", "step.skip", "step.wait", "rollback", "run.end":
		default:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cm, err := s.kube.CoreV1().ConfigMaps(cms.Namespace).Get(ctx, cms.Name, metav1.GetOptions{})
		if err != nil {
			return
		}
		typ := corev1.EventTypeNormal
		if e.Type == "step.fail" || e.Status == engine.StatusRollbackFailed || e.Status == engine.StatusFailed {
			typ = corev1.EventTypeWarning
		}
		msg := strings.TrimSpace(fmt.Sprintf("run %s step %s %s %s", e.RunID, e.Step, e.Status, e.Message))
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		now := metav1.NewTime(e.Time)
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: cms.Name + ".", Namespace: cms.Namespace},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: cm.Namespace, Name: cm.Name,
				UID: cm.UID, ResourceVersion: cm.ResourceVersion},
			Reason: reasonFor(e), Message: msg, Type: typ, FirstTimestamp: now, LastTimestamp: now, Count: 1,
			Source: corev1.EventSource{Component: "runbook"},
		}
		_, _ = s.kube.CoreV1().Events(cms.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	}
}

func reasonFor(e engine.Event) string {
	r := strings.NewReplacer(".", " ").Replace(e.Type)
	parts := strings.Fields(r)
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "")
}
