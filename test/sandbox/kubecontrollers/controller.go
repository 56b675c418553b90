// Package kubecontrollers is the sandbox's stand-in for the IPAM garbage
// collection of calico-kube-controllers (node controller, pinned source
// kube-controllers/pkg/controllers/node/ipam.go): addresses whose pod is gone
// are released after the leak grace period, and a deleted node's addresses,
// tunnel addresses and block affinities are released once nothing valid is left
// on it. Its settings come from KubeControllersConfiguration "default"
// (spec.controllers.node.leakGracePeriod, Calico's default 15m), which it
// creates when missing, as kube-controllers does.
//
// Like kube-controllers it runs a pass when IPAM blocks change or a node is
// deleted, and periodically every leakGracePeriod/2 (5 minutes when leak GC is
// off) — not on pod events.
package kubecontrollers

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync/atomic"
	"time"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

var (
	ipamBlocks = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
	configs    = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "kubecontrollersconfigurations"}
)

// DefaultLeakGracePeriod is Calico's default leakGracePeriod.
const DefaultLeakGracePeriod = 15 * time.Minute

// Config wires the stand-in to a cluster; the clients should act as
// calico-kube-controllers.
type Config struct {
	Kube    kubernetes.Interface // pods and nodes
	Dynamic dynamic.Interface    // IPAM blocks and KubeControllersConfiguration
	Calico  clientv3.Interface   // IPAM releases
	// Log receives one line per leak candidate and per release. Default: discarded.
	Log *log.Logger
}

// Stats counts addresses released and deleted nodes cleaned up.
type Stats struct {
	Passes, Released, NodesCleaned int64
}

// Controller is a running stand-in; create it with New, run it with Run.
type Controller struct {
	cfg    Config
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	blocks cache.GenericLister
	config cache.GenericLister

	kick  chan struct{}
	leaks map[string]time.Time // candidate since; only touched by the sync loop
	// decoded caches each block's allocations by resourceVersion: a pass reads
	// every block, and most have not changed since the last one.
	decoded map[string]decodedBlock

	synced chan struct{}
	stats  struct{ passes, released, nodes atomic.Int64 }
}

// New returns a stand-in for cfg; nothing runs until Run.
func New(cfg Config) *Controller {
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	return &Controller{cfg: cfg, kick: make(chan struct{}, 1), leaks: map[string]time.Time{}, decoded: map[string]decodedBlock{}, synced: make(chan struct{})}
}

// Synced is closed once the watches have synced and the configuration exists.
func (c *Controller) Synced() <-chan struct{} { return c.synced }

// Stats returns the counters so far.
func (c *Controller) Stats() Stats {
	return Stats{Passes: c.stats.passes.Load(), Released: c.stats.released.Load(), NodesCleaned: c.stats.nodes.Load()}
}

// Run watches and collects until ctx ends; it returns an error only if the
// caches never sync or the configuration cannot be created.
func (c *Controller) Run(ctx context.Context) error {
	kube := informers.NewSharedInformerFactory(c.cfg.Kube, 0)
	dyn := dynamicinformer.NewDynamicSharedInformerFactory(c.cfg.Dynamic, 0)
	c.pods = kube.Core().V1().Pods().Lister()
	c.nodes = kube.Core().V1().Nodes().Lister()
	c.blocks = dyn.ForResource(ipamBlocks).Lister()
	c.config = dyn.ForResource(configs).Lister()
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
	for name, inf := range map[string]cache.SharedIndexInformer{
		"ipamblocks": dyn.ForResource(ipamBlocks).Informer(), "kubecontrollersconfigurations": dyn.ForResource(configs).Informer(),
	} {
		if _, err := inf.AddEventHandler(kick); err != nil {
			return fmt.Errorf("kube-controllers: watching %s: %w", name, err)
		}
	}
	if _, err := kube.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(any) { c.trigger() }}); err != nil {
		return fmt.Errorf("kube-controllers: watching nodes: %w", err)
	}
	_ = kube.Core().V1().Pods().Informer() // the pod cache allocationIsValid reads first
	kube.Start(ctx.Done())
	dyn.Start(ctx.Done())
	defer func() {
		kube.Shutdown()
		dyn.Shutdown()
	}()
	for typ, ok := range kube.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kube-controllers: %v cache did not sync", typ)
		}
	}
	for typ, ok := range dyn.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kube-controllers: %v cache did not sync", typ)
		}
	}
	if err := c.ensureConfig(ctx); err != nil {
		return err
	}
	close(c.synced)
	c.loop(ctx)
	return nil
}

// minPassInterval spaces event-triggered passes. A pass reads every allocation of
// the cluster, and while pods start every address assigned changes a block:
// kube-controllers batches such updates too, and runs on a node of its own
// rather than on the two cores the whole sandbox shares.
const minPassInterval = time.Second

// loop runs a pass on each kick (at most one per minPassInterval) and every
// leakGracePeriod/2.
func (c *Controller) loop(ctx context.Context) {
	period := c.period()
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-ticker.C:
		}
		if p := c.period(); p != period { // the configuration changed
			period = p
			ticker.Reset(period)
		}
		c.stats.passes.Add(1)
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			c.logf("IPAM sync: %v (retrying)", err)
			c.trigger()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minPassInterval):
		}
	}
}

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// gracePeriod reads spec.controllers.node.leakGracePeriod; a missing node
// controller section means the default.
func (c *Controller) gracePeriod() time.Duration {
	obj, err := c.config.Get("default")
	if err != nil {
		return DefaultLeakGracePeriod
	}
	raw, found, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "spec", "controllers", "node", "leakGracePeriod")
	if !found {
		return DefaultLeakGracePeriod
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return DefaultLeakGracePeriod
	}
	return d
}

// period is kube-controllers' periodic IPAM sync interval.
func (c *Controller) period() time.Duration {
	if g := c.gracePeriod(); g > 0 {
		return max(g/2, 100*time.Millisecond)
	}
	return 5 * time.Minute
}

// ensureConfig creates KubeControllersConfiguration "default" with Calico's
// defaults when it does not exist, as kube-controllers does on start.
func (c *Controller) ensureConfig(ctx context.Context) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1",
		"kind":       "KubeControllersConfiguration",
		"metadata":   map[string]any{"name": "default"},
		"spec": map[string]any{
			"healthChecks":           "Enabled",
			"etcdV3CompactionPeriod": "10m0s",
			"controllers": map[string]any{
				"node": map[string]any{
					"reconcilerPeriod": "5m0s", "syncLabels": "Enabled",
					"leakGracePeriod": DefaultLeakGracePeriod.String(),
					"hostEndpoint":    map[string]any{"autoCreate": "Disabled"},
				},
				"policy":           map[string]any{"reconcilerPeriod": "5m0s"},
				"workloadEndpoint": map[string]any{"reconcilerPeriod": "5m0s"},
				"serviceAccount":   map[string]any{"reconcilerPeriod": "5m0s"},
				"namespace":        map[string]any{"reconcilerPeriod": "5m0s"},
			},
		},
	}}
	_, err := c.cfg.Dynamic.Resource(configs).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube-controllers: creating KubeControllersConfiguration default: %w", err)
	}
	return nil
}

func (c *Controller) logf(format string, args ...any) { c.cfg.Log.Printf(format, args...) }
