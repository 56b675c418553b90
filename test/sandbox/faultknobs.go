package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox/faultproxy"
)

// Restart stops and starts one component (see the name constants), e.g. etcd or
// the apiserver under a running cluster, and returns how long it was down.
// Clients reconnect: etcd keeps its data, the apiserver its address and
// certificates.
func (c *Cluster) Restart(ctx context.Context, name string) (time.Duration, error) {
	comp := c.Component(name)
	if comp == nil {
		return 0, fmt.Errorf("restarting %s: no such component", name)
	}
	start := time.Now()
	if err := comp.Stop(ctx); err != nil {
		return 0, fmt.Errorf("restarting %s: %w", name, err)
	}
	if err := comp.Start(ctx); err != nil {
		return 0, fmt.Errorf("restarting %s: %w", name, err)
	}
	return time.Since(start), nil
}

// SetNodeReady makes a node's simulated kubelet report NotReady — "container
// runtime network not ready ... cni plugin not initialized", what a node shows when
// calico-node is down on it — or Ready again. It returns once the request is
// made; kwok updates the node's status right after, and kube-controller-manager
// then taints (or untaints) it.
func (c *Cluster) SetNodeReady(ctx context.Context, node string, ready bool) error {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	var value any = "true"
	if ready {
		value = nil // a merge patch with null removes the annotation
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationNodeNotReady: value}}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("setting node %s ready=%v: %w", node, ready, err)
	}
	return nil
}

// StartFaultProxy starts a fault-injecting proxy in front of the apiserver with
// admin rights (see package faultproxy); Stop closes it.
func (c *Cluster) StartFaultProxy() (*faultproxy.Proxy, error) {
	p, err := faultproxy.Start(c.RESTConfig())
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, p.Close)
	return p, nil
}
