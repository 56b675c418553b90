package actions

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCountReady(t *testing.T) {
	pod := func(name string, phase corev1.PodPhase, ready, terminating bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: st}}
		if terminating {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		minPods int
		want    string
		done    bool
	}{
		{"none match", nil, 1, "0 of 0 pods Ready", false},
		{"all ready", []*corev1.Pod{pod("a", corev1.PodRunning, true, false), pod("b", corev1.PodRunning, true, false)}, 2, "2 of 2 pods Ready", true},
		{"too few", []*corev1.Pod{pod("a", corev1.PodRunning, true, false)}, 2, "1 of 1 pods Ready", false},
		{"one not ready", []*corev1.Pod{pod("a", corev1.PodRunning, true, false), pod("b", corev1.PodRunning, false, false)}, 1, "1 of 2 pods Ready", false},
		{"pending counts as not ready", []*corev1.Pod{pod("a", corev1.PodPending, false, false)}, 1, "0 of 1 pods Ready", false},
		{"terminating and finished are not counted", []*corev1.Pod{pod("a", corev1.PodRunning, true, false), pod("old", corev1.PodRunning, false, true),
			pod("job", corev1.PodSucceeded, false, false), pod("crashed", corev1.PodFailed, false, false)}, 1, "1 of 1 pods Ready", true},
		{"no Ready condition yet", []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "new"}}}, 1, "0 of 1 pods Ready", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := countReady(tc.pods)
			if r.String() != tc.want || r.done(waitInput{minPods: tc.minPods}) != tc.done {
				t.Fatalf("countReady = %q done=%v, want %q done=%v", r, r.done(waitInput{minPods: tc.minPods}), tc.want, tc.done)
			}
		})
	}
}
