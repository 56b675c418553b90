package sandbox

import (
	"encoding/json"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/scenarios"
)

// podTemplate is the pod every workload kind runs: the scenario's image, labels
// and annotations, plus the annotations that carry pool pins and fault knobs.
func podTemplate(w scenarios.Workload) corev1.PodTemplateSpec {
	container := corev1.Container{Name: w.Name, Image: w.Image}
	if w.ReadinessDelay != nil {
		// The kwok stages read initialDelaySeconds: Running at start, Ready after it.
		container.ReadinessProbe = &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			InitialDelaySeconds: int32(w.ReadinessDelay.Duration / time.Second),
		}
	}
	spec := corev1.PodSpec{
		Containers:                    []corev1.Container{container},
		HostNetwork:                   w.HostNetwork,
		TerminationGracePeriodSeconds: w.TerminationGracePeriodSeconds,
	}
	if w.TolerateControlPlane {
		spec.Tolerations = []corev1.Toleration{{Key: controlPlaneRole, Effect: corev1.TaintEffectNoSchedule}}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(w.Labels), Annotations: podAnnotations(w)},
		Spec:       spec,
	}
}

// podAnnotations merges the workload's annotations with those its fields stand for.
func podAnnotations(w scenarios.Workload) map[string]string {
	a := maps.Clone(w.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	if len(w.IPv4Pools) > 0 {
		a[cni.AnnotationIPv4Pools] = poolList(w.IPv4Pools)
	}
	if len(w.IPv6Pools) > 0 {
		a[cni.AnnotationIPv6Pools] = poolList(w.IPv6Pools)
	}
	if w.StartDelay != nil {
		a[AnnotationStartDelay] = w.StartDelay.Duration.String()
	}
	if w.ShutdownDelay != nil {
		a[AnnotationShutdownDelay] = w.ShutdownDelay.Duration.String()
	}
	if w.RunFor != nil {
		a[AnnotationRunFor] = w.RunFor.Duration.String()
	}
	if w.Fault != "" {
		a[AnnotationFault] = w.Fault
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// poolList is the JSON list Calico's pool annotations hold.
func poolList(pools []string) string {
	b, _ := json.Marshal(pools) // a []string always marshals
	return string(b)
}

// namespaceObject is a scenario namespace with its pool pins as annotations.
func namespaceObject(ns scenarios.Namespace) *corev1.Namespace {
	a := maps.Clone(ns.Annotations)
	if len(ns.IPv4Pools) > 0 || len(ns.IPv6Pools) > 0 {
		if a == nil {
			a = map[string]string{}
		}
		if len(ns.IPv4Pools) > 0 {
			a[cni.AnnotationIPv4Pools] = poolList(ns.IPv4Pools)
		}
		if len(ns.IPv6Pools) > 0 {
			a[cni.AnnotationIPv6Pools] = poolList(ns.IPv6Pools)
		}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: ns.Labels, Annotations: a}}
}
