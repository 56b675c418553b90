package kubeclient

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// LatestWarning returns the newest Warning event about the object ns/name (e.g.
// the kubelet's FailedCreatePodSandBox with the CNI plugin's own message), as
// "Reason: message"; "" when there is none or the events cannot be read — it only
// ever adds detail to a message.
func LatestWarning(ctx context.Context, kube kubernetes.Interface, ns, name string) string {
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(fields.OneTermEqualSelector("involvedObject.name", name),
			fields.OneTermEqualSelector("type", corev1.EventTypeWarning)).String()})
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	latest := evs.Items[0]
	for _, e := range evs.Items[1:] {
		if eventTime(e).After(eventTime(latest)) {
			latest = e
		}
	}
	return latest.Reason + ": " + latest.Message
}

// eventTime is when an event last happened: events.k8s.io's eventTime, else the
// core API's lastTimestamp, else its firstTimestamp.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.FirstTimestamp.Time
}
