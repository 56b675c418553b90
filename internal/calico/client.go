package calico

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/types"
)

// Flavour names how Calico is installed, which decides how pools are written.
type Flavour string

const (
	// FlavourCRD is the manifest install: pools and IPAM in crd.projectcalico.org/v1
	// CRDs, no server-side Calico validation.
	FlavourCRD Flavour = "crd"
	// FlavourV3 reads and writes pools through projectcalico.org/v3 (the Calico API
	// server, or native v3 CRDs): the server validates and defaults them. IPAM
	// blocks, affinities and handles stay crd.projectcalico.org/v1 (KDD) in every
	// flavour. Operator-managed pools are a matter of ownership, not of the API:
	// see Operator.
	FlavourV3 Flavour = "v3"
)

// Reader reads pools and IPAM state. Results are copies the caller may keep.
type Reader interface {
	Pools(ctx context.Context) ([]Pool, error)
	// Blocks and Affinities may return what they could read together with an error
	// naming objects that could not be read: callers deciding whether a pool is
	// empty must treat that error as "not known to be empty".
	Blocks(ctx context.Context) ([]Block, error)
	Affinities(ctx context.Context) ([]Affinity, error)
	Pods(ctx context.Context) ([]Pod, error)
	Nodes(ctx context.Context) ([]Node, error)
	ClusterCIDRs(ctx context.Context) ([]CIDRSource, error)
}

// PoolPatch is a JSON merge patch of a pool: only the listed fields change.
type PoolPatch struct {
	// Spec holds spec fields by their JSON name.
	Spec map[string]any
	// Annotations to set; a nil value removes the annotation.
	Annotations map[string]*string
	// ResourceVersion, when set, makes the patch conditional on the pool being
	// unchanged since it was observed (ErrConflict otherwise).
	ResourceVersion string
}

// Writer changes pools. Every write is validated server-side with
// fieldValidation=Strict: a field the installed Calico does not know is an error.
// After a write returns, the Client's cache has seen it (read-your-writes for the
// guards that run next), or a short bound has passed.
type Writer interface {
	// CreatePool creates a pool with exactly these spec fields; ErrExists when a
	// pool of that name exists.
	CreatePool(ctx context.Context, name string, spec map[string]any, annotations map[string]string) (*Pool, error)
	// PatchPool merge-patches a pool; ErrNotFound when it does not exist.
	PatchPool(ctx context.Context, name string, p PoolPatch) (*Pool, error)
	// DeletePool deletes the pool with this UID the way Calico does (disable, release
	// the pool's block affinities, delete), except that it only ever releases
	// affinities of empty blocks: a block that holds an address stops the deletion
	// with ErrInUse and the pool stays (disabled). ErrNotFound when the pool is gone.
	DeletePool(ctx context.Context, name string, uid types.UID) (DeleteReport, error)
}

// DeleteReport says what DeletePool did.
type DeleteReport struct {
	Disabled          bool // the pool was enabled and DeletePool disabled it
	ReleasedBlocks    []string
	DeletedAffinities []string
}

// Client is access to one cluster's Calico pools and IPAM state.
type Client interface {
	// Detection is what discovery found and the flavour chosen from it.
	Detection() Detection
	// Reader reads the shared informer cache: no API call, possibly a little behind.
	Reader
	// Live reads straight from the API server, for decisions that must not act on a
	// lagging cache (what a point of no return checks).
	Live() Reader
	Writer
	// Changes receives a value (coalesced) whenever the cache changes.
	Changes() <-chan struct{}
	// Await evaluates cond on the cache now and after every change until it holds,
	// returns an error, or ctx ends: waiting on other components (calico-node
	// moving tunnel addresses) without polling the API server.
	Await(ctx context.Context, cond func(Reader) (bool, error)) error
	// Close stops the informers.
	Close()
}

// Errors of the Writer, matched with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed since it was read")
	ErrInUse    = errors.New("in use")
)
