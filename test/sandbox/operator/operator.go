// Package operator is the sandbox's stand-in for the part of tigera-operator
// that IP pool migrations meet, at the release Config.Version names (v1.34.13,
// the one the pinned Calico 3.28.5 ships, or the newer v1.40.0; what differs is
// in Version): its IP pool controller (pkg/controller/ippool/pool_controller.go),
// which makes the pools listed in Installation "default"
// spec.calicoNetwork.ipPools exist exactly as listed — creating them, reverting
// direct edits, deleting managed pools that leave the list — and only through
// the Calico API server while APIServer "default" is Ready; otherwise
// TigeraStatus "ippools" goes Degraded. It also plays the operator's apiserver
// controller to the extent of setting APIServer "default" Ready once the
// calico-apiserver Deployment is available, and never clearing it.
//
// Like the operator it is driven by watches (Installation, APIServer, IP pools,
// and the calico-apiserver Deployment the status manager polls), plus a periodic
// reconciliation every 5 minutes.
package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config wires the stand-in to a cluster with the operator's (cluster-wide) rights.
type Config struct {
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface // reads kube-system/kubeadm-config
	// Resync is the periodic reconciliation (the operator's
	// utils.PeriodicReconcileTime). Default 5 minutes.
	Resync time.Duration
	// RetryBase and RetryMax bound the back-off after a failed pass. Defaults:
	// 250ms, 30s.
	RetryBase, RetryMax time.Duration
	// Log receives one line per pool written or deleted and per degraded pass.
	Log *log.Logger
	// Version is the operator release modelled. Default: V1_34_13.
	Version Version
}

// Stats counts what the stand-in did.
type Stats struct {
	Reconciles, Created, Updated, Deleted, Degraded int64
}

// Operator is a running stand-in; create it with New, run it with Run.
type Operator struct {
	cfg    Config
	status statusWriter
	queue  workqueue.TypedRateLimitingInterface[string]

	installations, apiServers, pools, deployments cache.GenericLister

	synced chan struct{}
	busy   atomic.Bool // a pass is running
	stats  struct{ reconciles, created, updated, deleted, degraded atomic.Int64 }
}

// key is the queue's only item: every event means "reconcile the Installation".
const key = DefaultName

// New returns a stand-in for cfg; nothing runs until Run.
func New(cfg Config) *Operator {
	if cfg.Resync == 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 250 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	if cfg.Version.Name == "" {
		cfg.Version = V1_34_13
	}
	return &Operator{
		cfg:    cfg,
		status: statusWriter{dyn: cfg.Dynamic},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBase, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "tigera-operator"}),
		synced: make(chan struct{}),
	}
}

// Synced is closed once the watches have synced and the first pass has run.
func (o *Operator) Synced() <-chan struct{} { return o.synced }

// Stats returns the counters so far.
func (o *Operator) Stats() Stats {
	return Stats{
		Reconciles: o.stats.reconciles.Load(), Created: o.stats.created.Load(), Updated: o.stats.updated.Load(),
		Deleted: o.stats.deleted.Load(), Degraded: o.stats.degraded.Load(),
	}
}

// Idle reports whether no pass is running, none is queued and no failed pass
// waits for its retry: whatever the operator saw so far, it has applied. Tests
// that restart what the operator depends on wait for it, since TigeraStatus
// alone may still say Available from before a pass that is about to fail.
func (o *Operator) Idle() bool {
	return !o.busy.Load() && o.queue.Len() == 0 && o.queue.NumRequeues(key) == 0
}

// Run watches and reconciles until ctx ends; it returns an error only if the
// caches never sync.
func (o *Operator) Run(ctx context.Context) error {
	factory := dynamicinformer.NewDynamicSharedInformerFactory(o.cfg.Dynamic, o.cfg.Resync)
	// The status manager reads only the Deployments it monitors
	// (status.go:478-484); a watch of the one namespace stands for its 5 s poll.
	apiNS := dynamicinformer.NewFilteredDynamicSharedInformerFactory(o.cfg.Dynamic, o.cfg.Resync, APIServerNamespace, nil)
	enqueue := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { o.queue.Add(key) },
		UpdateFunc: func(any, any) { o.queue.Add(key) },
		DeleteFunc: func(any) { o.queue.Add(key) },
	}
	inst, apis, pools, deps := factory.ForResource(Installations), factory.ForResource(APIServers), factory.ForResource(CRDPools), apiNS.ForResource(Deployments)
	// The Deployment matters only until APIServer "default" is Ready: the pool
	// controller does not watch it (pool_controller.go:54-111), and once Ready
	// nothing reads it again, so an API server outage triggers no pass.
	untilReady := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { o.enqueueUntilReady() },
		UpdateFunc: func(any, any) { o.enqueueUntilReady() },
		DeleteFunc: func(any) { o.enqueueUntilReady() },
	}
	for gvr, w := range map[string]struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		Installations.Resource: {inst.Informer(), enqueue}, APIServers.Resource: {apis.Informer(), enqueue},
		CRDPools.Resource: {pools.Informer(), enqueue}, Deployments.Resource: {deps.Informer(), untilReady},
	} {
		if _, err := w.informer.AddEventHandler(w.handler); err != nil {
			return fmt.Errorf("tigera-operator: watching %s: %w", gvr, err)
		}
	}
	o.installations, o.apiServers = inst.Lister(), apis.Lister()
	o.pools, o.deployments = pools.Lister(), deps.Lister()

	factory.Start(ctx.Done())
	apiNS.Start(ctx.Done())
	defer func() {
		o.queue.ShutDown()
		factory.Shutdown()
		apiNS.Shutdown()
	}()
	for _, f := range []dynamicinformer.DynamicSharedInformerFactory{factory, apiNS} {
		for gvr, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("tigera-operator: %v cache did not sync", gvr)
			}
		}
	}
	o.queue.Add(key)
	first := true
	done := make(chan struct{})
	go func() {
		defer close(done)
		for o.work(ctx) {
			if first {
				first = false
				close(o.synced)
			}
		}
	}()
	<-ctx.Done()
	o.queue.ShutDown()
	<-done
	return nil
}

// enqueueUntilReady queues a pass while APIServer "default" is not Ready yet.
func (o *Operator) enqueueUntilReady() {
	if o.apiServers == nil {
		return
	}
	if obj, err := o.apiServers.Get(DefaultName); err == nil {
		if state, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "status", "state"); state == StateReady {
			return
		}
	}
	o.queue.Add(key)
}

// work runs one pass; false once the queue shuts down.
func (o *Operator) work(ctx context.Context) bool {
	k, shutdown := o.queue.Get()
	if shutdown {
		return false
	}
	o.busy.Store(true)
	defer o.busy.Store(false)
	defer o.queue.Done(k)
	o.stats.reconciles.Add(1)
	err := o.reconcile(ctx)
	switch {
	case err == nil, errors.Is(err, errDegraded), ctx.Err() != nil:
		o.queue.Forget(k)
	default:
		o.cfg.Log.Printf("reconcile failed (retrying): %v", err)
		o.queue.AddRateLimited(k)
	}
	return true
}

func (o *Operator) count(c *atomic.Int64, format string, args ...any) {
	c.Add(1)
	o.cfg.Log.Printf(format, args...)
}
