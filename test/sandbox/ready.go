package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// readyCheckInterval bounds how often the readiness condition is evaluated while
// events stream in (at thousands of pods every event would be a full scan).
const readyCheckInterval = 100 * time.Millisecond

// waitReady waits, on watches, until every node is Ready (or NotReady on purpose),
// every controller has all its pods and every pod is Ready — or, for pods with a
// fault, Running with its addresses. On timeout the error lists what was missing.
func waitReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(stripManagedFields))
	changed := make(chan struct{}, 1)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(changed) },
		UpdateFunc: func(any, any) { signal(changed) },
		DeleteFunc: func(any) { signal(changed) },
	}
	l := readyListers{
		nodes:        factory.Core().V1().Nodes().Lister(),
		pods:         factory.Core().V1().Pods().Lister(),
		deployments:  factory.Apps().V1().Deployments().Lister(),
		statefulSets: factory.Apps().V1().StatefulSets().Lister(),
		daemonSets:   factory.Apps().V1().DaemonSets().Lister(),
		jobs:         factory.Batch().V1().Jobs().Lister(),
	}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Core().V1().Nodes().Informer(), factory.Core().V1().Pods().Informer(),
		factory.Apps().V1().Deployments().Informer(), factory.Apps().V1().StatefulSets().Informer(),
		factory.Apps().V1().DaemonSets().Informer(), factory.Batch().V1().Jobs().Informer(),
	} {
		if _, err := inf.AddEventHandler(notify); err != nil {
			return fmt.Errorf("watching for readiness: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer func() {
		cancel() // stops the informers, which Shutdown waits for
		factory.Shutdown()
	}()
	factory.WaitForCacheSync(ctx.Done())

	pending := []string{"nothing listed yet"}
	for {
		if ctx.Err() == nil {
			if pending = l.notReady(); len(pending) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if len(pending) > 10 {
				pending = append(pending[:10], fmt.Sprintf("... %d more", len(pending)-10))
			}
			return fmt.Errorf("cluster not ready after %v: %s: %w", timeout, strings.Join(pending, "; "), ctx.Err())
		case <-changed:
		}
		select { // let a burst of events settle
		case <-ctx.Done():
		case <-time.After(readyCheckInterval):
		}
	}
}

func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type readyListers struct {
	nodes interface {
		List(labels.Selector) ([]*corev1.Node, error)
	}
	pods interface {
		List(labels.Selector) ([]*corev1.Pod, error)
	}
	deployments interface {
		List(labels.Selector) ([]*appsv1.Deployment, error)
	}
	statefulSets interface {
		List(labels.Selector) ([]*appsv1.StatefulSet, error)
	}
	daemonSets interface {
		List(labels.Selector) ([]*appsv1.DaemonSet, error)
	}
	jobs interface {
		List(labels.Selector) ([]*batchv1.Job, error)
	}
}

// notReady describes everything that is not ready yet. Listers over synced
// caches do not fail, so their errors are ignored.
func (l readyListers) notReady() []string {
	var pending []string
	nodes, _ := l.nodes.List(labels.Everything())
	for _, n := range nodes {
		if !nodeAsIntended(n) {
			pending = append(pending, "node "+n.Name+" not Ready")
		}
	}
	deployments, _ := l.deployments.List(labels.Everything())
	for _, d := range deployments {
		if msg := deploymentPending(d); msg != "" {
			pending = append(pending, msg)
		}
	}
	statefulSets, _ := l.statefulSets.List(labels.Everything())
	for _, s := range statefulSets {
		if msg := statefulSetPending(s); msg != "" {
			pending = append(pending, msg)
		}
	}
	daemonSets, _ := l.daemonSets.List(labels.Everything())
	for _, ds := range daemonSets {
		if msg := daemonSetPending(ds); msg != "" {
			pending = append(pending, msg)
		}
	}
	jobs, _ := l.jobs.List(labels.Everything())
	for _, j := range jobs {
		if msg := jobPending(j); msg != "" {
			pending = append(pending, msg)
		}
	}
	pods, _ := l.pods.List(labels.Everything())
	for _, p := range pods {
		if !podAsIntended(p) {
			pending = append(pending, fmt.Sprintf("pod %s/%s %s", p.Namespace, p.Name, p.Status.Phase))
		}
	}
	return pending
}

// nodeAsIntended: Ready, or reporting NotReady because the scenario says so.
func nodeAsIntended(n *corev1.Node) bool {
	if _, notReady := n.Annotations[AnnotationNodeNotReady]; notReady {
		return nodeCondition(n) == corev1.ConditionFalse
	}
	return nodeCondition(n) == corev1.ConditionTrue
}

// podAsIntended: finished, Ready, or — with a fault — Running with its addresses.
func podAsIntended(p *corev1.Pod) bool {
	switch {
	case p.Status.Phase == corev1.PodSucceeded:
		return true
	case p.Annotations[AnnotationFault] != "":
		return p.Status.Phase == corev1.PodRunning
	}
	return podReady(p)
}

func faulty(t corev1.PodTemplateSpec) bool { return t.Annotations[AnnotationFault] != "" }

func deploymentPending(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.Replicas == want &&
		(st.AvailableReplicas == want || faulty(d.Spec.Template)) {
		return ""
	}
	return fmt.Sprintf("deployment %s/%s %d/%d available", d.Namespace, d.Name, st.AvailableReplicas, want)
}

// statefulSetPending: all replicas Ready; with a fault, the first pod exists (the
// default OrderedReady policy creates the next one only once it is Ready).
func statefulSetPending(s *appsv1.StatefulSet) string {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	ok := st.ObservedGeneration >= s.Generation && st.ReadyReplicas == want && st.Replicas == want
	if faulty(s.Spec.Template) {
		ok = st.ObservedGeneration >= s.Generation && st.Replicas >= min(want, 1)
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("statefulset %s/%s %d/%d ready", s.Namespace, s.Name, st.ReadyReplicas, want)
}

func daemonSetPending(ds *appsv1.DaemonSet) string {
	st := ds.Status
	if st.ObservedGeneration >= ds.Generation && st.UpdatedNumberScheduled == st.DesiredNumberScheduled &&
		(st.NumberAvailable == st.DesiredNumberScheduled || faulty(ds.Spec.Template)) {
		return ""
	}
	return fmt.Sprintf("daemonset %s/%s %d/%d available", ds.Namespace, ds.Name, st.NumberAvailable, st.DesiredNumberScheduled)
}

// jobPending: complete, or running all its pods (Ready unless faulty).
func jobPending(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	want := int32(1)
	if j.Spec.Parallelism != nil {
		want = *j.Spec.Parallelism
	}
	ready := int32(0)
	if j.Status.Ready != nil {
		ready = *j.Status.Ready
	}
	if j.Status.Active+j.Status.Succeeded >= want && (ready+j.Status.Succeeded >= want || faulty(j.Spec.Template)) {
		return ""
	}
	return fmt.Sprintf("job %s/%s %d/%d running", j.Namespace, j.Name, ready, want)
}

func nodeCondition(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stripManagedFields drops managedFields from cached objects: nothing here reads
// them, and at thousands of pods they are most of a cache's memory.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
