package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/runbookdev/runbook/test/sandbox/cni"
)

// cniComponent runs the CNI stand-in in this process. Each Start runs a fresh
// plugin, so a restart re-lists pods like a restarted calico-node/kubelet pair.
type cniComponent struct {
	cfg cni.Config

	mu     sync.Mutex
	plugin *cni.Plugin
	cancel context.CancelFunc
	done   chan error
}

func (c *cniComponent) Name() string { return CNI }

func (c *cniComponent) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancel != nil
}

// Start returns once the stand-in's watches have synced.
func (c *cniComponent) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		return nil
	}
	// The plugin outlives ctx, which only bounds the start.
	runCtx, cancel := context.WithCancel(context.Background())
	plugin := cni.New(c.cfg)
	done := make(chan error, 1)
	go func() { done <- plugin.Run(runCtx) }()
	select {
	case <-plugin.Synced():
	case err := <-done:
		cancel()
		return fmt.Errorf("starting the CNI stand-in: %w", err)
	case <-ctx.Done():
		cancel()
		<-done
		return fmt.Errorf("starting the CNI stand-in: %w", ctx.Err())
	}
	c.plugin, c.cancel, c.done = plugin, cancel, done
	return nil
}

func (c *cniComponent) Stop(ctx context.Context) error {
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
		return fmt.Errorf("stopping the CNI stand-in: %w", ctx.Err())
	}
}

// Stats returns the running stand-in's counters (zero when stopped).
func (c *cniComponent) Stats() cni.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plugin == nil {
		return cni.Stats{}
	}
	return c.plugin.Stats()
}
