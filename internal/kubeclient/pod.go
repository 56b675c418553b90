package kubeclient

import corev1 "k8s.io/api/core/v1"

// PodReady reports whether the pod's Ready condition is true: what
// PodDisruptionBudgets, the eviction API and Services count as ready.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
