package calico

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ErrNotInstalled means the cluster does not serve the Calico resources a flavour
// needs.
var ErrNotInstalled = errors.New("calico resources not served")

// fieldManager names runbook in managedFields of what it writes.
const fieldManager = "runbook"

// cacheCatchUp bounds the wait for the cache to show runbook's own write. Not
// catching up in time is not an error: the write succeeded, only a guard evaluated
// at once could still see the old state.
const cacheCatchUp = 10 * time.Second

// cacheSyncTimeout bounds the initial list of every informer.
const cacheSyncTimeout = 2 * time.Minute

// CRD is the Client of every flavour: pools through crd.projectcalico.org/v1 (a
// manifest install) or projectcalico.org/v3 (the Calico API server or native v3
// CRDs), IPAM state always through the v1 CRDs. The two pool APIs share the spec
// JSON and this code; only the group, and what the server validates, differ.
type CRD struct {
	kube  kubernetes.Interface
	dyn   dynamic.Interface
	det   Detection
	pools poolAPI
	cache *crdCache
	live  *crdLive
	stop  context.CancelFunc
	once  sync.Once
}

// poolAPI is the API pools are read and written through.
type poolAPI struct {
	gvr        schema.GroupVersionResource
	apiVersion string
}

func poolAPIOf(f Flavour) poolAPI {
	if f == FlavourV3 {
		return poolAPI{gvr: gvrV3Pools, apiVersion: "projectcalico.org/v3"}
	}
	return poolAPI{gvr: gvrPools, apiVersion: poolAPIVersion}
}

var _ Client = (*CRD)(nil)

// NewCRD checks that the cluster serves Calico's v1 CRDs, starts the informers and
// returns once their caches are synced. ctx bounds both the wait and, until Close,
// the informers' lifetime.
func NewCRD(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) (*CRD, error) {
	if err := checkServed(kube); err != nil {
		return nil, err
	}
	return New(ctx, kube, dyn, Detection{Flavour: FlavourCRD, V1: true})
}

// New starts the Client of the flavour Detect chose: informers over the pool API
// of det.Flavour and the v1 IPAM CRDs. It returns once their caches are synced.
func New(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, det Detection) (*CRD, error) {
	api := poolAPIOf(det.Flavour)
	c := &CRD{kube: kube, dyn: dyn, det: det, pools: api, cache: newCRDCache(), live: &crdLive{kube: kube, dyn: dyn, poolGVR: api.gvr}}
	informers, err := c.cache.register(kube, dyn, api.gvr)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	c.stop = stop
	for _, inf := range informers {
		go inf.RunWithContext(runCtx)
	}
	syncCtx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), c.cache.synced...) {
		c.Close()
		return nil, fmt.Errorf("calico: waiting for the informer caches: %w", context.Cause(syncCtx))
	}
	return c, nil
}

// checkServed verifies the v1 CRDs exist, so that a cluster without Calico fails
// with a clear message instead of informers retrying a 404 forever.
func checkServed(kube kubernetes.Interface) error {
	const gv = "crd.projectcalico.org/v1"
	list, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s is not served by this cluster (is Calico installed?)", ErrNotInstalled, gv)
	}
	if err != nil {
		return fmt.Errorf("calico: discovery of %s: %w", gv, err)
	}
	var have []string
	for _, r := range list.APIResources {
		have = append(have, r.Name)
	}
	for _, want := range []string{gvrPools.Resource, gvrBlocks.Resource, gvrAffinities.Resource} {
		if !slices.Contains(have, want) {
			return fmt.Errorf("%w: %s/%s is not served by this cluster", ErrNotInstalled, gv, want)
		}
	}
	return nil
}

func (c *CRD) Detection() Detection                               { return c.det }
func (c *CRD) Live() Reader                                       { return c.live }
func (c *CRD) Changes() <-chan struct{}                           { return c.cache.notify.changes }
func (c *CRD) Close()                                             { c.once.Do(c.stop) }
func (c *CRD) Pools(ctx context.Context) ([]Pool, error)          { return c.cache.Pools(ctx) }
func (c *CRD) Blocks(ctx context.Context) ([]Block, error)        { return c.cache.Blocks(ctx) }
func (c *CRD) Affinities(ctx context.Context) ([]Affinity, error) { return c.cache.Affinities(ctx) }
func (c *CRD) Pods(ctx context.Context) ([]Pod, error)            { return c.cache.Pods(ctx) }
func (c *CRD) Nodes(ctx context.Context) ([]Node, error)          { return c.cache.Nodes(ctx) }
func (c *CRD) ClusterCIDRs(ctx context.Context) ([]CIDRSource, error) {
	return c.cache.ClusterCIDRs(ctx)
}

// Await implements Client.
func (c *CRD) Await(ctx context.Context, cond func(Reader) (bool, error)) error {
	var condErr error
	err := c.cache.waitFor(ctx, func() bool {
		ok, err := cond(c.cache)
		condErr = err
		return ok || err != nil
	})
	if condErr != nil {
		return condErr
	}
	return err
}
