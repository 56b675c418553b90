// Package calinode is the sandbox's stand-in for the part of calico-node that
// matters to IP pool migrations: on every node it keeps the tunnel addresses
// (IPIP, VXLAN, WireGuard) that calico-node's allocateip keeps, in an enabled pool
// with matching encapsulation and Tunnel use that selects the node, and moves or
// removes them the moment the pools change, as the real one does. It also records
// each node's BGP address, as calico-node's start-up does.
//
// Like calico-node it is driven by watches (its tunnel IP syncer watches IP pools
// and the node's WireGuard key), not by polling, and it reads the node and the
// pools live before each reconciliation.
package calinode

import (
	"context"
	"fmt"
	"io"
	"log"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// IPPools is the resource the Kubernetes datastore stores pools as.
var IPPools = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}

// Node annotations calico-node reacts to besides pool changes: a node's WireGuard
// keys decide whether it gets WireGuard addresses.
var watchedAnnotations = []string{"projectcalico.org/WireguardPublicKey", "projectcalico.org/WireguardPublicKeyV6"}

// Config wires the stand-in to a cluster; every client should act as calico-node
// (the calico-node service account).
type Config struct {
	Kube    kubernetes.Interface // watches nodes
	Dynamic dynamic.Interface    // watches crd.projectcalico.org IP pools
	Calico  clientv3.Interface   // reads nodes and pools, IPAM, writes the node
	// Workers reconcile nodes in parallel (one node at a time each, like one
	// calico-node per node). Default 4.
	Workers int
	// RetryBase and RetryMax bound the back-off after a failed reconciliation (the
	// real calico-node exits and is restarted). Defaults: 250ms, 10s.
	RetryBase, RetryMax time.Duration
	// Log receives one line per address assigned or released. Default: discarded.
	Log *log.Logger
}

// Stats counts tunnel addresses assigned and released, and failed reconciliations.
type Stats struct {
	Assigned, Released, Failed int64
}

// Allocator is a running stand-in; create it with New, run it with Run.
type Allocator struct {
	cfg   Config
	nodes corelisters.NodeLister
	queue workqueue.TypedRateLimitingInterface[string]

	// initial holds the nodes known at sync that have not been reconciled yet;
	// synced closes when it empties, so a started cluster has its tunnel addresses.
	initialMu sync.Mutex
	initial   map[string]bool
	synced    chan struct{}

	stats struct{ assigned, released, failed atomic.Int64 }
}

// New returns a stand-in for cfg; nothing runs until Run.
func New(cfg Config) *Allocator {
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 250 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	return &Allocator{
		cfg: cfg,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBase, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "calico-node"}),
		synced: make(chan struct{}),
	}
}

// Synced is closed once every node that existed when the watches synced has been
// reconciled once.
func (a *Allocator) Synced() <-chan struct{} { return a.synced }

// Stats returns the counters so far.
func (a *Allocator) Stats() Stats {
	return Stats{Assigned: a.stats.assigned.Load(), Released: a.stats.released.Load(), Failed: a.stats.failed.Load()}
}

// Run watches pools and nodes and reconciles until ctx ends. It returns an error
// only if the caches never sync.
func (a *Allocator) Run(ctx context.Context) error {
	kube := informers.NewSharedInformerFactory(a.cfg.Kube, 0)
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(a.cfg.Dynamic, 0)
	nodeInformer := kube.Core().V1().Nodes()
	a.nodes = nodeInformer.Lister()
	if _, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.enqueueNode(obj) },
		UpdateFunc: a.onNodeUpdate,
	}); err != nil {
		return fmt.Errorf("calico-node: registering node handler: %w", err)
	}
	if _, err := dyn.ForResource(IPPools).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { a.enqueueAll() },
		UpdateFunc: a.onPoolUpdate,
		DeleteFunc: func(any) { a.enqueueAll() },
	}); err != nil {
		return fmt.Errorf("calico-node: registering pool handler: %w", err)
	}

	kube.Start(ctx.Done())
	dyn.Start(ctx.Done())
	var workers sync.WaitGroup
	defer func() {
		a.queue.ShutDown()
		workers.Wait()
		kube.Shutdown()
		dyn.Shutdown()
	}()
	for typ, ok := range kube.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("calico-node: %v cache did not sync", typ)
		}
	}
	for typ, ok := range dyn.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("calico-node: %v cache did not sync", typ)
		}
	}
	if err := a.startInitialRound(); err != nil {
		return err
	}
	for range a.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			a.work(ctx)
		}()
	}
	<-ctx.Done()
	return nil
}

// startInitialRound queues every node once, as calico-node does when its syncer is
// in sync.
func (a *Allocator) startInitialRound() error {
	nodes, err := a.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("calico-node: listing nodes: %w", err)
	}
	a.initialMu.Lock()
	a.initial = map[string]bool{}
	for _, n := range nodes {
		a.initial[n.Name] = true
	}
	if len(a.initial) == 0 {
		close(a.synced)
	}
	a.initialMu.Unlock()
	for _, n := range nodes {
		a.queue.Add(n.Name)
	}
	return nil
}

func (a *Allocator) work(ctx context.Context) {
	for {
		name, shutdown := a.queue.Get()
		if shutdown {
			return
		}
		err := a.reconcileIfPresent(ctx, name)
		switch {
		case err != nil && ctx.Err() == nil:
			a.stats.failed.Add(1)
			a.cfg.Log.Printf("node %s: %v (retrying)", name, err)
			a.queue.AddRateLimited(name)
		default:
			a.queue.Forget(name)
			a.reconciled(name)
		}
		a.queue.Done(name)
	}
}

// reconcileIfPresent skips nodes that are gone: their calico-node is gone too
// (releasing their addresses is kube-controllers' garbage collection).
func (a *Allocator) reconcileIfPresent(ctx context.Context, name string) error {
	if _, err := a.nodes.Get(name); err != nil {
		return nil
	}
	return a.reconcile(ctx, name)
}

func (a *Allocator) reconciled(name string) {
	a.initialMu.Lock()
	defer a.initialMu.Unlock()
	if a.initial == nil || !a.initial[name] {
		return
	}
	delete(a.initial, name)
	if len(a.initial) == 0 {
		close(a.synced)
		a.initial = nil
	}
}

func (a *Allocator) enqueueNode(obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		a.queue.Add(n.Name)
	}
}

func (a *Allocator) onNodeUpdate(oldObj, newObj any) {
	oldNode, ok1 := oldObj.(*corev1.Node)
	newNode, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	for _, key := range watchedAnnotations {
		if oldNode.Annotations[key] != newNode.Annotations[key] {
			a.queue.Add(newNode.Name)
			return
		}
	}
}

// onPoolUpdate reacts to spec changes only; calico-node compares the pool model.
func (a *Allocator) onPoolUpdate(oldObj, newObj any) {
	oldPool, ok1 := oldObj.(*unstructured.Unstructured)
	newPool, ok2 := newObj.(*unstructured.Unstructured)
	if ok1 && ok2 && reflect.DeepEqual(oldPool.Object["spec"], newPool.Object["spec"]) {
		return
	}
	a.enqueueAll()
}

// enqueueAll queues every node: a pool change may move any node's address.
func (a *Allocator) enqueueAll() {
	if a.nodes == nil {
		return
	}
	nodes, err := a.nodes.List(labels.Everything())
	if err != nil {
		return // a lister over a synced cache does not fail
	}
	for _, n := range nodes {
		a.queue.Add(n.Name)
	}
}

func (a *Allocator) logf(format string, args ...any) { a.cfg.Log.Printf(format, args...) }
