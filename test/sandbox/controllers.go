package sandbox

import (
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/test/scenarios"
)

func objectMeta(w scenarios.Workload) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name, Labels: maps.Clone(w.Labels)}
}

func deployment(w scenarios.Workload) *appsv1.Deployment {
	replicas := w.Replicas
	return &appsv1.Deployment{
		ObjectMeta: objectMeta(w),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: w.Labels},
			Template: podTemplate(w),
		},
	}
}

// statefulSet has the default OrderedReady policy: a pod starts once the one
// before it is Ready, as on real clusters (and a NeverReady fault stops it at
// the first pod). Its governing Service is headlessService.
func statefulSet(w scenarios.Workload) *appsv1.StatefulSet {
	replicas := w.Replicas
	return &appsv1.StatefulSet{
		ObjectMeta: objectMeta(w),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: w.Name,
			Selector:    &metav1.LabelSelector{MatchLabels: w.Labels},
			Template:    podTemplate(w),
		},
	}
}

// headlessService is a StatefulSet's governing Service.
func headlessService(w scenarios.Workload) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: objectMeta(w),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  w.Labels,
			Ports:     []corev1.ServicePort{{Name: "app", Port: 80}},
		},
	}
}

func daemonSet(w scenarios.Workload) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: objectMeta(w),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: w.Labels},
			Template: podTemplate(w),
		},
	}
}

// job runs Replicas pods at once; each succeeds after RunFor (kwok's pod-complete
// stage). OnFailure lets a CrashLoop fault loop in place, as it would for real.
func job(w scenarios.Workload) *batchv1.Job {
	n := w.Replicas
	tmpl := podTemplate(w)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.Job{
		ObjectMeta: objectMeta(w),
		Spec: batchv1.JobSpec{
			Parallelism: &n,
			Completions: &n,
			Template:    tmpl,
		},
	}
}

// barePods are pods without a controller: deleted, they never come back.
func barePods(w scenarios.Workload) []*corev1.Pod {
	tmpl := podTemplate(w)
	pods := make([]*corev1.Pod, 0, w.Replicas)
	for i := 1; i <= int(w.Replicas); i++ {
		name := w.Name
		if w.Replicas > 1 {
			name = fmt.Sprintf("%s-%d", w.Name, i)
		}
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   w.Namespace,
				Name:        name,
				Labels:      maps.Clone(tmpl.Labels),
				Annotations: maps.Clone(tmpl.Annotations),
			},
			Spec: *tmpl.Spec.DeepCopy(),
		})
	}
	return pods
}
