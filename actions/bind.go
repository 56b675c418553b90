package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/preflight"
)

// Cluster is how action implementations reach the cluster.
type Cluster struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// CalicoAPI is --calico-api: auto (default when empty), crd or v3.
	CalicoAPI calico.APIChoice
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
	// Preflight runs the cluster-level preflight checks (internal/preflight) over
	// the steps still to run; nil without a cluster connection.
	Preflight func(ctx context.Context, steps []preflight.Step) []preflight.Finding
}

// Bind starts what the actions need on c (informers, clients) and returns their
// implementations. ctx bounds the informers' lifetime; Bind returns once their
// caches are synced, so the first guard already sees the cluster.
//
// A cluster without Calico's resources still binds: pause works, the guard
// functions see no pools, and the Calico actions fail with the reason.
func Bind(ctx context.Context, c *Cluster) (*Bound, error) {
	b := &Bound{Impls: map[string]Impl{}, Funcs: map[string]any{}, Close: func() {}}
	env := &poolEnv{}
	switch {
	case c == nil || c.Kube == nil || c.Dynamic == nil:
		env.unavailable = ErrNoCluster
	default:
		env.kube = c.Kube
		det, err := calico.Detect(ctx, c.Kube.Discovery(), c.Dynamic, c.CalicoAPI)
		switch {
		case errors.Is(err, calico.ErrNotInstalled) && (c.CalicoAPI == "" || c.CalicoAPI == calico.APIAuto):
			env.unavailable = err
		case err != nil:
			// An explicit --calico-api the cluster cannot serve is the user's
			// mistake, reported before anything runs.
			return nil, fmt.Errorf("bind Calico: %w", err)
		default:
			cal, err := calico.New(ctx, c.Kube, c.Dynamic, det)
			if err != nil {
				return nil, fmt.Errorf("bind Calico: %w", err)
			}
			env.cal = cal
			if det.Operator {
				env.op = calico.NewOperator(c.Dynamic)
			}
			b.Changes, b.Close = cal.Changes(), cal.Close
		}
	}
	bc := &binding{ctx: ctx, env: env, cluster: c}
	var closers []func()
	for _, d := range builtins {
		impl := d.New(bc)
		b.Impls[d.Decl.Name] = impl
		if cl, ok := impl.(interface{ close() }); ok {
			closers = append(closers, cl.close)
		}
	}
	closeCalico := b.Close
	b.Close = func() {
		for _, closeImpl := range closers {
			closeImpl()
		}
		closeCalico()
	}
	if env.kube != nil {
		pc := preflight.Cluster{Kube: c.Kube, Dynamic: c.Dynamic, Discovery: c.Kube.Discovery(), Unavailable: env.unavailable}
		if env.cal != nil {
			pc.Calico = env.cal.Live()
		}
		b.Preflight = func(ctx context.Context, steps []preflight.Step) []preflight.Finding {
			// Bounded: a preflight lists every pod and policy once; an API server
			// that cannot answer in this time would not carry the migration either.
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			return preflight.Run(ctx, pc, steps)
		}
	}
	for name, fn := range guardFuncs(env.cal) {
		b.Funcs[name] = fn
	}
	return b, nil
}
