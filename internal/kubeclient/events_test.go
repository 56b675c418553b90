package kubeclient

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The newest event wins, whichever of the three time fields it carries. (The
// fake clientset ignores field selectors: the API server's filtering by
// involvedObject.name and type is proven by the e2e tests.)
func TestLatestWarning(t *testing.T) {
	base := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	ev := func(name, reason string, mutate func(*corev1.Event)) *corev1.Event {
		e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Type: corev1.EventTypeWarning,
			Reason: reason, Message: "m-" + reason, InvolvedObject: corev1.ObjectReference{Namespace: "shop", Name: "web-1"}}
		mutate(e)
		return e
	}
	cs := fake.NewClientset(
		ev("a", "Old", func(e *corev1.Event) { e.FirstTimestamp = metav1.NewTime(base) }),
		ev("b", "Newest", func(e *corev1.Event) { e.EventTime = metav1.NewMicroTime(base.Add(3 * time.Second)) }),
		ev("c", "Middle", func(e *corev1.Event) { e.LastTimestamp = metav1.NewTime(base.Add(2 * time.Second)) }),
	)
	if got := LatestWarning(context.Background(), cs, "shop", "web-1"); got != "Newest: m-Newest" {
		t.Errorf("LatestWarning = %q", got)
	}
	if got := LatestWarning(context.Background(), fake.NewClientset(), "shop", "web-1"); got != "" {
		t.Errorf("no events: %q", got)
	}
}
