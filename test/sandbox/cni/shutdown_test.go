package cni

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestShutdownDeadline(t *testing.T) {
	since := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	deleted := metav1.NewTime(since.Add(30 * time.Second)) // the API server's now + grace
	grace := func(s int64) *int64 { return &s }
	pod := func(mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: grace(30)},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		mutate(p)
		return p
	}
	annotated := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationShutdownDelay: v} }
	}
	for _, tc := range []struct {
		name         string
		pod          *corev1.Pod
		defaultDelay time.Duration
		want         time.Duration // after since
	}{
		{"default delay", pod(func(*corev1.Pod) {}), 5 * time.Second, 5 * time.Second},
		{"no delay", pod(func(*corev1.Pod) {}), 0, 0},
		{"annotation overrides", pod(annotated("12s")), 5 * time.Second, 12 * time.Second},
		{"annotation zero", pod(annotated("0s")), 5 * time.Second, 0},
		{"unparsable annotation: default", pod(annotated("soon")), 5 * time.Second, 5 * time.Second},
		{"negative annotation: default", pod(annotated("-3s")), 5 * time.Second, 5 * time.Second},
		{"grace period cuts it short (SIGKILL)", pod(func(p *corev1.Pod) { p.DeletionGracePeriodSeconds = grace(2) }), 5 * time.Second, 2 * time.Second},
		{"annotation beyond the grace period", pod(annotated("1m")), 0, 30 * time.Second},
		{"force delete: grace 0", pod(func(p *corev1.Pod) { p.DeletionGracePeriodSeconds = grace(0) }), 5 * time.Second, 0},
		{"no grace recorded", pod(func(p *corev1.Pod) { p.DeletionGracePeriodSeconds = nil }), 5 * time.Second, 0},
		{"not terminating: finished", pod(func(p *corev1.Pod) { p.DeletionTimestamp = nil; p.Status.Phase = corev1.PodSucceeded }), 5 * time.Second, 0},
		{"terminating after it succeeded", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), 5 * time.Second, 0},
		{"terminating after it failed", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), 5 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shutdownDeadline(tc.pod, since, tc.defaultDelay).Sub(since); got != tc.want {
				t.Errorf("deadline = since+%v, want since+%v", got, tc.want)
			}
		})
	}
}

// The clock of a pod starts when the plugin first sees it terminating and does not
// restart on later events; a pod torn down or gone forgets it.
func TestShutdownLeftCountsFromTheFirstSighting(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	p := New(Config{ShutdownDelay: 5 * time.Second, Now: func() time.Time { return now }})
	deleted := metav1.NewTime(now)
	g := int64(30)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1", DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: &g},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if left := p.shutdownLeft(pod); left != 5*time.Second {
		t.Fatalf("first sighting: %v left, want 5s", left)
	}
	now = now.Add(3 * time.Second)
	if left := p.shutdownLeft(pod); left != 2*time.Second {
		t.Fatalf("3 s later: %v left, want 2s", left)
	}
	now = now.Add(2 * time.Second)
	if left := p.shutdownLeft(pod); left != 0 {
		t.Fatalf("at the deadline: %v left, want 0", left)
	}
	p.forgetSandbox(pod.UID)
	if left := p.shutdownLeft(pod); left != 5*time.Second {
		t.Fatalf("after forgetting: %v left, want a new 5s", left)
	}
}
