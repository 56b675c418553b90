package sandbox

import (
	"context"
	"fmt"
	"sync"
)

// service is a stand-in that runs inside the sandbox's process (the CNI plugin,
// calico-node): Run serves until its context ends, Synced closes once it has
// caught up with the cluster.
type service interface {
	Run(ctx context.Context) error
	Synced() <-chan struct{}
}

// inProcess adapts a service to Component. Each Start runs a fresh service from
// newService, so a restart re-lists everything like a restarted pod would.
type inProcess[S service] struct {
	name       string
	newService func() S

	mu     sync.Mutex
	svc    S
	cancel context.CancelFunc
	done   chan error
}

func (c *inProcess[S]) Name() string { return c.name }

func (c *inProcess[S]) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancel != nil
}

// Start returns once the service has synced.
func (c *inProcess[S]) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		return nil
	}
	// The service outlives ctx, which only bounds the start.
	runCtx, cancel := context.WithCancel(context.Background())
	svc := c.newService()
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	select {
	case <-svc.Synced():
	case err := <-done:
		cancel()
		return fmt.Errorf("starting the %s stand-in: %w", c.name, err)
	case <-ctx.Done():
		cancel()
		<-done
		return fmt.Errorf("starting the %s stand-in: %w", c.name, ctx.Err())
	}
	c.svc, c.cancel, c.done = svc, cancel, done
	return nil
}

func (c *inProcess[S]) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	c.cancel = nil
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the %s stand-in: %w", c.name, ctx.Err())
	}
}

// current returns the running service, if any.
func (c *inProcess[S]) current() (S, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.svc, c.cancel != nil
}
