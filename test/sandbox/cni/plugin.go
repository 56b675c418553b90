// Package cni is the sandbox's stand-in for the kubelet's network set-up with the
// Calico CNI plugin and calico-ipam: for every pod bound to a node it performs what
// CNI ADD does on a real node (assign addresses with libcalico-go IPAM, write them
// to the pod's annotations), and CNI DEL when the pod terminates (release the
// handle, clear the annotations). kwok then marks the pod Running with those IPs.
//
// It is driven by a pod watch, with one work queue and one worker per node: Calico's
// CNI plugin holds a host-wide IPAM lock, so a node assigns one address at a time
// while nodes proceed in parallel, as on a real cluster.
package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Config wires the stand-in to a cluster.
type Config struct {
	// Kubelet is the simulated kubelets' client: it watches pods, namespaces and the
	// CNI configuration and records pod events.
	Kubelet kubernetes.Interface
	// Plugin is the CNI plugin's client (the calico-cni-plugin identity); it patches
	// the pod annotations, as Calico's WorkloadEndpoint client does.
	Plugin kubernetes.Interface
	// Calico is the CNI plugin's libcalico-go client, used for IPAM.
	Calico clientv3.Interface
	// RetryBase and RetryMax bound the exponential back-off of a failed ADD (the
	// kubelet keeps retrying sandbox creation). Defaults: 250ms, 10s.
	RetryBase, RetryMax time.Duration
	// NewContainerID returns the ID of a new pod sandbox. Default: 64 random hex
	// digits, like containerd's.
	NewContainerID func() string
	// ShutdownDelay is how long a terminating pod's containers take to exit, unless
	// the pod's AnnotationShutdownDelay says otherwise; its addresses are released
	// only then (or when its grace period ends, if sooner). Default 0.
	ShutdownDelay time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Stats counts what the stand-in did since it started.
type Stats struct {
	Assigned, Released, Failed int64
}

// Plugin is a running stand-in; create it with New and run it with Run.
type Plugin struct {
	cfg Config

	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	events     record.EventBroadcaster

	mu      sync.Mutex
	nodes   map[string]*nodeQueue
	workers sync.WaitGroup
	ctx     context.Context // the Run context, for workers started by event handlers

	// sandboxes holds the pods this plugin set up, until each is torn down or gone:
	// the next event for a pod can arrive before the lister shows the annotations
	// just written, and a second ADD would leak the first sandbox's addresses.
	sandboxMu sync.Mutex
	sandboxes map[types.UID]struct{}
	// terminating holds when each terminating pod was first seen so, which starts
	// its shutdown (shutdown.go).
	terminating map[types.UID]time.Time

	synced                        chan struct{}
	nAssigned, nReleased, nFailed atomic.Int64
}

// New returns a stand-in for cfg; nothing runs until Run.
func New(cfg Config) *Plugin {
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 250 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 10 * time.Second
	}
	if cfg.NewContainerID == nil {
		cfg.NewContainerID = randomContainerID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Plugin{cfg: cfg, nodes: map[string]*nodeQueue{},
		sandboxes: map[types.UID]struct{}{}, terminating: map[types.UID]time.Time{}, synced: make(chan struct{})}
}

// Run watches the cluster and serves pods until ctx ends, then drains its workers.
// It returns an error only if the caches never sync.
func (p *Plugin) Run(ctx context.Context) error {
	p.ctx = ctx
	factory := informers.NewSharedInformerFactoryWithOptions(p.cfg.Kubelet, 0,
		informers.WithTransform(stripManagedFields))
	// Only the one ConfigMap, not every ConfigMap of the cluster.
	cmFactory := informers.NewSharedInformerFactoryWithOptions(p.cfg.Kubelet, 0,
		informers.WithNamespace(ConfigMapNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
		}))
	podInformer := factory.Core().V1().Pods()
	p.pods = podInformer.Lister()
	p.namespaces = factory.Core().V1().Namespaces().Lister()
	p.configMaps = cmFactory.Core().V1().ConfigMaps().Lister()
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.onPod(obj) },
		UpdateFunc: func(_, obj any) { p.onPod(obj) },
		DeleteFunc: p.onPodGone,
	}); err != nil {
		return fmt.Errorf("cni: registering pod handler: %w", err)
	}

	p.events = record.NewBroadcaster(record.WithContext(ctx))
	p.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.cfg.Kubelet.CoreV1().Events("")})

	factory.Start(ctx.Done())
	cmFactory.Start(ctx.Done())
	defer func() {
		p.shutdown()
		factory.Shutdown()
		cmFactory.Shutdown()
		p.events.Shutdown()
	}()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cni: %v cache did not sync", typ)
		}
	}
	for typ, ok := range cmFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cni: %v cache did not sync", typ)
		}
	}
	close(p.synced)
	<-ctx.Done()
	return nil
}

// Synced is closed once the watches have synced.
func (p *Plugin) Synced() <-chan struct{} { return p.synced }

// Stats returns the counters so far.
func (p *Plugin) Stats() Stats {
	return Stats{Assigned: p.nAssigned.Load(), Released: p.nReleased.Load(), Failed: p.nFailed.Load()}
}

func (p *Plugin) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || WantedAction(pod) == None {
		return
	}
	p.enqueue(pod.Spec.NodeName, task{pod: types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}})
}

// onPodGone releases the addresses of a pod that disappeared without a CNI DEL
// (force-deleted, or deleted while the stand-in was down), using the container ID
// recorded at ADD.
func (p *Plugin) onPodGone(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.forgetSandbox(pod.UID)
	if pod.Spec.NodeName == "" || pod.Annotations[AnnotationPodIPs] == "" {
		return
	}
	if handle := p.handle(pod); handle != "" {
		p.enqueue(pod.Spec.NodeName, task{handle: handle})
	}
}

func (p *Plugin) enqueue(node string, t task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.nodes[node]
	if !ok {
		if p.ctx.Err() != nil {
			return // shutting down
		}
		q = newNodeQueue(node, p.cfg.RetryBase, p.cfg.RetryMax, p.events)
		p.nodes[node] = q
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			q.run(p.ctx, p.process)
		}()
	}
	q.queue.Add(t)
}

func (p *Plugin) shutdown() {
	p.mu.Lock()
	for _, q := range p.nodes {
		q.queue.ShutDown()
	}
	p.mu.Unlock()
	p.workers.Wait()
}

func (p *Plugin) hasSandbox(uid types.UID) bool {
	p.sandboxMu.Lock()
	defer p.sandboxMu.Unlock()
	_, ok := p.sandboxes[uid]
	return ok
}

func (p *Plugin) recordSandbox(uid types.UID) {
	p.sandboxMu.Lock()
	defer p.sandboxMu.Unlock()
	p.sandboxes[uid] = struct{}{}
}

func (p *Plugin) forgetSandbox(uid types.UID) {
	p.sandboxMu.Lock()
	defer p.sandboxMu.Unlock()
	delete(p.sandboxes, uid)
	delete(p.terminating, uid)
}

func randomContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// stripManagedFields drops managedFields from cached objects: the stand-in never
// reads them, and at thousands of pods they are most of the cache's memory.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
