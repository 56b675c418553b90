package cni

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// task is one unit of work on a node's queue.
type task struct {
	// pod is a live pod to bring to its wanted state (read from the lister).
	pod types.NamespacedName
	// handle, when set, is the IPAM handle of a pod that is gone: release it.
	handle string
}

// nodeQueue serialises the network operations of one node, like the Calico CNI
// plugin's host-wide IPAM lock, and records events as that node's kubelet.
type nodeQueue struct {
	node     string
	queue    workqueue.TypedRateLimitingInterface[task]
	recorder record.EventRecorder
}

func newNodeQueue(node string, retryBase, retryMax time.Duration, events record.EventBroadcaster) *nodeQueue {
	return &nodeQueue{
		node: node,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[task](retryBase, retryMax),
			workqueue.TypedRateLimitingQueueConfig[task]{Name: "cni-" + node}),
		recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: node}),
	}
}

// run processes tasks until the queue shuts down; a failed task is retried with
// back-off, a successful one forgets its failures.
func (q *nodeQueue) run(ctx context.Context, process func(context.Context, *nodeQueue, task) error) {
	for {
		t, shutdown := q.queue.Get()
		if shutdown {
			return
		}
		if err := process(ctx, q, t); err != nil && ctx.Err() == nil {
			q.queue.AddRateLimited(t)
		} else {
			q.queue.Forget(t)
		}
		q.queue.Done(t)
	}
}
