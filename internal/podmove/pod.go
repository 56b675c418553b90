package podmove

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/internal/kubeclient"
)

// isTerminating: the pod is being deleted; it no longer counts as healthy anywhere.
func isTerminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

// isFinished pods hold no address: their sandbox, and with it the IPAM allocation,
// is gone.
func isFinished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// ignoresBudget mirrors the eviction API (canIgnorePDB): a pod that is not Running,
// or already terminating, is evicted without consulting any budget.
func ignoresBudget(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodRunning || isTerminating(p)
}

// isMirror: a static pod's mirror. Deleting it does not restart the static pod.
func isMirror(p *corev1.Pod) bool {
	_, ok := p.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

// hasLocalData: emptyDir contents are lost when the pod moves (kubectl drain's
// --delete-emptydir-data).
func hasLocalData(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// backOffReasons are the waiting reasons of a container that keeps failing rather
// than one that is still starting.
var backOffReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"InvalidImageName": true,
}

// failingFor is how long a Running pod may stay not Ready before it counts as
// failing rather than starting (a slow readiness probe is not a failure).
const failingFor = 5 * time.Minute

// isFailing tells a pod that is broken (crashlooping, image pull failing, not Ready
// for long) from one that is still starting. A failing pod does not count towards
// what its owner must get back: the step must not wait forever for an application
// that was already broken, nor let it hold up healthy pods.
func isFailing(p *corev1.Pod, now time.Time) bool {
	if kubeclient.PodReady(p) || isTerminating(p) {
		return false
	}
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, c := range p.Status.Conditions {
		// The scheduler found no node: nothing the step does will make it Ready.
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.RestartCount > 0 {
			return true
		}
		if w := s.State.Waiting; w != nil && backOffReasons[w.Reason] {
			return true
		}
	}
	if p.Status.Phase == corev1.PodRunning {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
				return now.Sub(c.LastTransitionTime.Time) > failingFor
			}
		}
	}
	return false
}

// addrs parses status.podIPs (falling back to status.podIP): the addresses the pod
// actually holds, whichever component wrote them. Unparsable entries are skipped.
func addrs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// holdsAddress: host network pods have no address of their own, finished pods have
// released theirs.
func holdsAddress(p *corev1.Pod) bool { return !p.Spec.HostNetwork && !isFinished(p) }

// controllerOf returns the pod's managing controller reference, or nil.
func controllerOf(p *corev1.Pod) *metav1.OwnerReference { return metav1.GetControllerOf(p) }

// ordinal is a StatefulSet pod's ordinal (the number after the last dash), or -1.
func ordinal(name string) int {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// podKey is namespace/name.
func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }
