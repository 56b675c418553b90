package calico

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/runbookdev/runbook/internal/kubeclient"
)

// crdCache is the informer-backed Reader of the CRD flavour.
type crdCache struct {
	pools      *index[Pool]
	blocks     *index[Block]
	affinities *index[Affinity]
	pods       *index[Pod]
	nodes      *index[Node]
	kcmPods    *index[corev1.Pod]
	configMaps *index[corev1.ConfigMap]
	notify     *notifier
	synced     []cache.InformerSynced
}

func newCRDCache() *crdCache {
	return &crdCache{pools: newIndex[Pool](), blocks: newIndex[Block](), affinities: newIndex[Affinity](),
		pods: newIndex[Pod](), nodes: newIndex[Node](), kcmPods: newIndex[corev1.Pod](),
		configMaps: newIndex[corev1.ConfigMap](), notify: newNotifier()}
}

// register creates the informers the inventory needs. Each informer's store keeps
// a trimmed object (transform), and an event handler converts it once into the
// index its Reader method serves. Plain shared informers over list/watch functions,
// not client-go's informer factories: the typed factory links an informer for every
// Kubernetes API group, 10 MB of binary for the three used here.
func (c *crdCache) register(kube kubernetes.Interface, dyn dynamic.Interface, poolGVR schema.GroupVersionResource) ([]cache.SharedIndexInformer, error) {
	var started []cache.SharedIndexInformer
	for _, r := range []struct {
		inf   cache.SharedIndexInformer
		trim  cache.TransformFunc
		apply func(key string, obj any) bool
		del   func(key string)
	}{
		{calicoInformer(dyn, poolGVR), nil, unstructuredInto(c.pools, poolFromObject), c.pools.del},
		{calicoInformer(dyn, gvrBlocks), nil, unstructuredInto(c.blocks, blockFromObject), c.blocks.del},
		{calicoInformer(dyn, gvrAffinities), nil, unstructuredInto(c.affinities, affinityFromObject), c.affinities.del},
		{informer(&corev1.Pod{}, kube.CoreV1().Pods("").List, kube.CoreV1().Pods("").Watch), trimPod, c.applyPod,
			func(k string) { c.pods.del(k); c.kcmPods.del(k) }},
		{informer(&corev1.Node{}, kube.CoreV1().Nodes().List, kube.CoreV1().Nodes().Watch), trimNode, c.applyNode, c.nodes.del},
		{informer(&corev1.ConfigMap{}, kube.CoreV1().ConfigMaps("kube-system").List, kube.CoreV1().ConfigMaps("kube-system").Watch),
			trimConfigMap, c.applyConfigMap, c.configMaps.del},
	} {
		if err := r.inf.SetTransform(stripManagedFields(r.trim)); err != nil {
			return nil, fmt.Errorf("informer transform: %w", err)
		}
		reg, err := r.inf.AddEventHandler(c.handler(r.apply, r.del))
		if err != nil {
			return nil, fmt.Errorf("informer handler: %w", err)
		}
		c.synced = append(c.synced, reg.HasSynced)
		started = append(started, r.inf)
	}
	return started, nil
}

// informer is a shared informer over a client's List and Watch, without indexes
// (the cache keeps its own).
func informer[L runtime.Object](example runtime.Object, list func(context.Context, metav1.ListOptions) (L, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.SharedIndexInformer {
	return kubeclient.Informer(example, list, watchFn, cache.Indexers{})
}

// calicoInformer is a shared informer over a Calico CRD through the dynamic client.
// The Calico API server (projectcalico.org/v3) has its own storage without
// watch-list semantics (initial events ending in a bookmark): its informer is
// told so, and lists then watches, instead of trying a streaming list first.
func calicoInformer(dyn dynamic.Interface, gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	if gvr.Group == gvrV3Pools.Group {
		lw := &noWatchListLW{*kubeclient.ListWatch(dyn.Resource(gvr).List, dyn.Resource(gvr).Watch, nil)}
		return cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	}
	return informer(&unstructured.Unstructured{}, dyn.Resource(gvr).List, dyn.Resource(gvr).Watch)
}

// noWatchListLW marks a ListWatch whose server does not implement watch-list
// (client-go's util/watchlist checks for this method).
type noWatchListLW struct{ cache.ListWatch }

func (*noWatchListLW) IsWatchListSemanticsUnSupported() bool { return true }

// handler applies informer events to an index and signals the change.
func (c *crdCache) handler(apply func(string, any) bool, del func(string)) cache.ResourceEventHandler {
	set := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil && apply(key, obj) {
			c.notify.fire()
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				del(key)
				c.notify.fire()
			}
		},
	}
}

func unstructuredInto[T any](x *index[T], convert func(*unstructured.Unstructured) (T, error)) func(string, any) bool {
	return func(key string, obj any) bool {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return x.set(key, *new(T), fmt.Errorf("unexpected object %T", obj))
		}
		v, err := convert(u)
		return x.set(key, v, err)
	}
}

func (c *crdCache) applyPod(key string, obj any) bool {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	changed := c.pods.set(key, podFromObject(p), nil)
	if IsKCMPod(p) {
		changed = c.kcmPods.set(key, *p, nil) || changed
	}
	return changed
}

func (c *crdCache) applyNode(key string, obj any) bool {
	n, ok := obj.(*corev1.Node)
	return ok && c.nodes.set(key, NodeFromObject(n), nil)
}

func (c *crdCache) applyConfigMap(key string, obj any) bool {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return false
	}
	v := *cm // never modify an informer's object
	v.ResourceVersion = ""
	return c.configMaps.set(key, v, nil)
}

// stripManagedFields drops managedFields (often the bulk of an object) before
// trim, if any, keeps only what the inventory reads.
func stripManagedFields(trim cache.TransformFunc) cache.TransformFunc {
	return func(obj any) (any, error) {
		if m, ok := obj.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		if trim != nil {
			return trim(obj)
		}
		return obj, nil
	}
}

// trimPod keeps what the inventory reads of a pod; for kube-controller-manager
// pods also the command lines (--cluster-cidr). On a big cluster the pod cache is
// most of runbook's memory.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			OwnerReferences: p.OwnerReferences, DeletionTimestamp: p.DeletionTimestamp},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	if IsKCMPod(p) {
		out.Labels = p.Labels
		for _, c := range p.Spec.Containers {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Command: c.Command, Args: c.Args})
		}
	}
	return out, nil
}

// trimNode keeps labels (Calico nodeSelectors), scheduling fields, readiness and
// Calico's annotations. The Ready condition is kept without its heartbeat times, so
// that status heartbeats do not count as changes.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels},
		Spec:       corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable, Taints: n.Spec.Taints},
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, "projectcalico.org/") {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out, nil
}

// trimConfigMap keeps the data of the two ConfigMaps that configure the cluster CIDR.
func trimConfigMap(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	out := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cm.Name, Namespace: cm.Namespace, UID: cm.UID, ResourceVersion: cm.ResourceVersion}}
	if cm.Name == kubeadmConfigMap || cm.Name == kubeProxyConfigMap {
		out.Data = cm.Data
	}
	return out, nil
}

// The Reader of the cache. ctx is unused: nothing here waits.

func (c *crdCache) Pools(context.Context) ([]Pool, error)          { return c.pools.list() }
func (c *crdCache) Blocks(context.Context) ([]Block, error)        { return c.blocks.list() }
func (c *crdCache) Affinities(context.Context) ([]Affinity, error) { return c.affinities.list() }
func (c *crdCache) Pods(context.Context) ([]Pod, error)            { return c.pods.list() }
func (c *crdCache) Nodes(context.Context) ([]Node, error)          { return c.nodes.list() }

func (c *crdCache) ClusterCIDRs(context.Context) ([]CIDRSource, error) {
	cms, _ := c.configMaps.list()
	kcm, _ := c.kcmPods.list()
	return ClusterCIDRSources(cms, kcm)
}

// waitFor blocks until cond holds on the cache, or ctx ends.
func (c *crdCache) waitFor(ctx context.Context, cond func() bool) error {
	for {
		next := c.notify.wait()
		if cond() {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
