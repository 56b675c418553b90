package cni

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// AnnotationShutdownDelay on a pod overrides Config.ShutdownDelay: how long its
// containers take to exit after SIGTERM (a Go duration).
const AnnotationShutdownDelay = "sandbox.runbook.dev/shutdown-delay"

// shutdownDeadline is when the kubelet would tear down the network of a pod that
// it first saw terminating at since: once its containers have exited, which takes
// the pod's shutdown delay, cut short by SIGKILL when the grace period the API
// server granted (deletionGracePeriodSeconds) ends first. The kubelet tears the
// network down only after the containers are gone: killPodWithSyncResult
// (k8s.io/kubernetes v1.37.2 pkg/kubelet/kuberuntime/kuberuntime_manager.go) kills
// the containers, then calls StopPodSandbox, in which the runtime runs CNI DEL.
// Until then the pod keeps its addresses, and they stay allocated in the pool.
//
// since is when the watch delivered the deletion, not deletionTimestamp minus the
// grace period: the timestamp has whole seconds only, and the kubelet, too, starts
// the grace period when it sees the deletion.
func shutdownDeadline(pod *corev1.Pod, since time.Time, defaultDelay time.Duration) time.Time {
	if pod.DeletionTimestamp == nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return since // nothing runs any more: tear down now
	}
	delay := defaultDelay
	if v, ok := pod.Annotations[AnnotationShutdownDelay]; ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			delay = d
		}
	}
	var grace time.Duration
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g > 0 {
		grace = time.Duration(*g) * time.Second
	}
	return since.Add(min(delay, grace))
}

// shutdownLeft is how long the pod's containers still run before CNI DEL is due;
// the first call for a pod starts its clock.
func (p *Plugin) shutdownLeft(pod *corev1.Pod) time.Duration {
	now := p.cfg.Now()
	return shutdownDeadline(pod, p.terminatingSince(pod.UID, now), p.cfg.ShutdownDelay).Sub(now)
}

// terminatingSince returns when the pod was first seen terminating, recording now
// if this is the first time.
func (p *Plugin) terminatingSince(uid types.UID, now time.Time) time.Time {
	p.sandboxMu.Lock()
	defer p.sandboxMu.Unlock()
	since, ok := p.terminating[uid]
	if !ok {
		since = now
		p.terminating[uid] = since
	}
	return since
}
