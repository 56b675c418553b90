package actions

import (
	"context"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is how action implementations reach the cluster.
type Cluster struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Bound is the registry's behaviour bound to one cluster.
type Bound struct {
	Impls map[string]Impl
	// Funcs implement the guard functions declared in the registry, reading a shared
	// informer cache (no API call per evaluation).
	Funcs map[string]any
	// Changes receives a value when the cache changes, so `until` guards re-evaluate.
	Changes <-chan struct{}
	// Close stops the informers.
	Close func()
}

// Bind starts what the actions need on c (informers, clients) and returns their
// implementations. ctx bounds the informers' lifetime.
func Bind(ctx context.Context, c *Cluster) (*Bound, error) {
	b := &Bound{Impls: map[string]Impl{}, Funcs: map[string]any{}, Close: func() {}}
	b.Impls["pause"] = pauseImpl{}
	return b, nil
}
