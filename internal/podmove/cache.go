package podmove

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/runbookdev/runbook/internal/kubeclient"
)

// syncTimeout bounds the initial list of the informers.
const syncTimeout = 2 * time.Minute

// Cache watches what the step decides on: pods, PodDisruptionBudgets and the
// workload controllers. One list and one watch per kind for the whole step, however
// many pods move; objects are trimmed to what the decisions read, so 2,000 pods
// cost a few MiB.
type Cache struct {
	pods         corelisters.PodLister
	pdbs         policylisters.PodDisruptionBudgetLister
	replicaSets  appslisters.ReplicaSetLister
	deployments  appslisters.DeploymentLister
	statefulSets appslisters.StatefulSetLister
	daemonSets   appslisters.DaemonSetLister
	namespaces   corelisters.NamespaceLister

	changed chan struct{} // capacity 1: bursts of events coalesce into one signal
	stop    context.CancelFunc

	mu        sync.Mutex
	disrupted map[string]map[string]time.Time // budget key -> pod name -> first seen in status.disruptedPods
	pdbChange map[string]time.Time            // budget key -> last status change seen
}

var _ Store = (*Cache)(nil)

// NewCache starts the informers and returns once they are synced. ctx bounds their
// lifetime (and the wait); Close stops them earlier.
//
// Plain shared informers rather than client-go's informer factory, which would
// link an informer for every API type into the binary.
func NewCache(ctx context.Context, kube kubernetes.Interface) (*Cache, error) {
	c := &Cache{changed: make(chan struct{}, 1), disrupted: map[string]map[string]time.Time{}, pdbChange: map[string]time.Time{}}
	core, apps, policy := kube.CoreV1(), kube.AppsV1(), kube.PolicyV1()
	podInf := informer(&corev1.Pod{}, core.Pods("").List, core.Pods("").Watch)
	pdbInf := informer(&policyv1.PodDisruptionBudget{}, policy.PodDisruptionBudgets("").List, policy.PodDisruptionBudgets("").Watch)
	rsInf := informer(&appsv1.ReplicaSet{}, apps.ReplicaSets("").List, apps.ReplicaSets("").Watch)
	depInf := informer(&appsv1.Deployment{}, apps.Deployments("").List, apps.Deployments("").Watch)
	stsInf := informer(&appsv1.StatefulSet{}, apps.StatefulSets("").List, apps.StatefulSets("").Watch)
	dsInf := informer(&appsv1.DaemonSet{}, apps.DaemonSets("").List, apps.DaemonSets("").Watch)
	nsInf := informer(&corev1.Namespace{}, core.Namespaces().List, core.Namespaces().Watch)
	c.pods = corelisters.NewPodLister(podInf.GetIndexer())
	c.pdbs = policylisters.NewPodDisruptionBudgetLister(pdbInf.GetIndexer())
	c.replicaSets = appslisters.NewReplicaSetLister(rsInf.GetIndexer())
	c.deployments = appslisters.NewDeploymentLister(depInf.GetIndexer())
	c.statefulSets = appslisters.NewStatefulSetLister(stsInf.GetIndexer())
	c.daemonSets = appslisters.NewDaemonSetLister(dsInf.GetIndexer())
	c.namespaces = corelisters.NewNamespaceLister(nsInf.GetIndexer())
	all := []cache.SharedIndexInformer{podInf, pdbInf, rsInf, depInf, stsInf, dsInf, nsInf}
	var synced []cache.InformerSynced
	for _, inf := range all {
		if err := inf.SetTransform(trim); err != nil {
			return nil, fmt.Errorf("pod move cache: %w", err)
		}
		h := c.notifier()
		if inf == pdbInf {
			h = cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { c.observePDB(obj); c.signal() },
				UpdateFunc: func(_, obj any) { c.observePDB(obj); c.signal() },
				DeleteFunc: func(any) { c.signal() },
			}
		}
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return nil, fmt.Errorf("pod move cache: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	runCtx, stop := context.WithCancel(ctx)
	c.stop = stop
	for _, inf := range all {
		go inf.RunWithContext(runCtx)
	}
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		stop()
		return nil, fmt.Errorf("pod move cache: waiting for pods, PodDisruptionBudgets and workloads: %w", context.Cause(syncCtx))
	}
	return c, nil
}

// informer is a shared informer over a client's List and Watch, indexed by
// namespace.
func informer[L runtime.Object](example runtime.Object, list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.SharedIndexInformer {
	return kubeclient.Informer(example, list, watchFn, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// Close stops the informers.
func (c *Cache) Close() { c.stop() }

// Changed receives a value (coalesced) after the cache changed.
func (c *Cache) Changed() <-chan struct{} { return c.changed }

func (c *Cache) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *Cache) notifier() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.signal() },
		UpdateFunc: func(_, _ any) { c.signal() },
		DeleteFunc: func(any) { c.signal() },
	}
}

// observePDB remembers every pod name a budget's status lists in disruptedPods, as
// it is seen: the disruption controller drops the name again once it sees the pod
// terminating, usually before the step's next look.
func (c *Cache) observePDB(obj any) {
	pdb, ok := obj.(*policyv1.PodDisruptionBudget)
	if !ok {
		return
	}
	key := pdb.Namespace + "/" + pdb.Name
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pdbChange[key] = now
	seen := c.disrupted[key]
	if seen == nil {
		seen = map[string]time.Time{}
		c.disrupted[key] = seen
	}
	for name := range pdb.Status.DisruptedPods {
		if _, ok := seen[name]; !ok {
			seen[name] = now
		}
	}
}

func (c *Cache) disruptedSince(budget, pod string, since time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.disrupted[budget][pod]
	return ok && !t.Before(since)
}

func (c *Cache) changedSince(budget string, since time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pdbChange[budget].After(since)
}

// changeOf returns when the budget's status last changed, to tell whether a 429
// is still current.
func (c *Cache) changeOf(budget string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pdbChange[budget]
}

// Store, read from the listers. Errors cannot happen with labels.Everything().

func (c *Cache) Pods() []*corev1.Pod {
	ps, _ := c.pods.List(labels.Everything())
	return ps
}

func (c *Cache) PDBs() []*policyv1.PodDisruptionBudget {
	ps, _ := c.pdbs.List(labels.Everything())
	return ps
}

func (c *Cache) ReplicaSet(ns, name string) (*appsv1.ReplicaSet, bool) {
	o, err := c.replicaSets.ReplicaSets(ns).Get(name)
	return o, err == nil
}

func (c *Cache) Deployment(ns, name string) (*appsv1.Deployment, bool) {
	o, err := c.deployments.Deployments(ns).Get(name)
	return o, err == nil
}

func (c *Cache) StatefulSet(ns, name string) (*appsv1.StatefulSet, bool) {
	o, err := c.statefulSets.StatefulSets(ns).Get(name)
	return o, err == nil
}

func (c *Cache) DaemonSet(ns, name string) (*appsv1.DaemonSet, bool) {
	o, err := c.daemonSets.DaemonSets(ns).Get(name)
	return o, err == nil
}

func (c *Cache) NamespaceAnnotations(name string) map[string]string {
	ns, err := c.namespaces.Get(name)
	if err != nil {
		return nil
	}
	return ns.Annotations
}

// trim keeps what the decisions read. The pod cache is most of the step's memory
// on a big cluster; pod templates are most of a workload's size.
func trim(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return trimPod(o), nil
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion,
			Annotations: keep(o.Annotations, annotationIPv4Pools, annotationIPv6Pools)}}, nil
	case *appsv1.ReplicaSet:
		o.Spec.Template = corev1.PodTemplateSpec{}
		o.Annotations = nil
	case *appsv1.Deployment:
		o.Spec.Template = templateMeta(o.Spec.Template)
		o.Annotations = nil
	case *appsv1.StatefulSet:
		o.Spec.Template = templateMeta(o.Spec.Template)
		o.Spec.VolumeClaimTemplates = nil
		o.Annotations = nil
	case *appsv1.DaemonSet:
		o.Spec.Template = templateMeta(o.Spec.Template)
		o.Annotations = nil
	}
	return obj, nil
}

func templateMeta(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: t.Annotations}}
}

func trimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, OwnerReferences: p.OwnerReferences, CreationTimestamp: p.CreationTimestamp,
			DeletionTimestamp: p.DeletionTimestamp},
		Spec: corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs,
			Reason: p.Status.Reason},
	}
	out.Annotations = keep(p.Annotations, corev1.MirrorPodAnnotationKey, annotationIPv4Pools, annotationIPv6Pools, annotationPodIPs)
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.PodScheduled {
			out.Status.Conditions = append(out.Status.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status,
				Reason: c.Reason, LastTransitionTime: c.LastTransitionTime})
		}
	}
	out.Status.ContainerStatuses = trimStatuses(p.Status.ContainerStatuses)
	out.Status.InitContainerStatuses = trimStatuses(p.Status.InitContainerStatuses)
	return out
}

func trimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, s := range ss {
		t := corev1.ContainerStatus{Name: s.Name, RestartCount: s.RestartCount, Ready: s.Ready}
		if w := s.State.Waiting; w != nil {
			t.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason}
		}
		out = append(out, t)
	}
	return out
}

// keep returns the listed keys of m, or nil when none is set.
func keep(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
