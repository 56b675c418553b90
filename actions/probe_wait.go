package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/internal/textlist"
)

// waitProbePods watches the run's test pods until every expected one is Running
// with its addresses, and returns them by name. A pod that fails ends the wait; on
// timeout the error says, per pod, what it is waiting for (the CNI's own message
// from the pod's events, e.g. "the given pool ... does not exist, or is not
// enabled").
func waitProbePods(ctx context.Context, kube kubernetes.Interface, ns, runID string, expected []string) (map[string]*corev1.Pod, error) {
	sel := labels.SelectorFromSet(labels.Set{calico.LabelRunID: runID}).String()
	lw := kubeclient.ListWatch(kube.CoreV1().Pods(ns).List, kube.CoreV1().Pods(ns).Watch, kubeclient.Selecting(sel, ""))
	var store cache.Store
	var done map[string]*corev1.Pod
	check := func() (bool, error) {
		done = map[string]*corev1.Pod{}
		for _, name := range expected {
			obj, ok, err := store.GetByKey(ns + "/" + name)
			if err != nil || !ok {
				return false, err
			}
			p := obj.(*corev1.Pod)
			switch {
			case p.Status.Phase == corev1.PodFailed:
				return false, fmt.Errorf("test pod %s on node %s failed: %s %s", name, p.Spec.NodeName, p.Status.Reason, p.Status.Message)
			case p.Status.Phase == corev1.PodRunning && len(p.Status.PodIPs) > 0:
				done[name] = p.DeepCopy()
			}
		}
		return len(done) == len(expected), nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{},
		func(s cache.Store) (bool, error) { store = s; return check() },
		func(watch.Event) (bool, error) { return check() })
	if err == nil {
		return done, nil
	}
	if ctx.Err() == nil {
		return nil, err
	}
	// Timed out: say what each missing pod is waiting for. The context is spent,
	// so the diagnosis gets a short one of its own.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), diagnoseTimeout)
	defer cancel()
	var missing []string
	for _, name := range expected {
		if done[name] == nil {
			missing = append(missing, name+": "+diagnosePod(dctx, kube, ns, name))
		}
	}
	return nil, fmt.Errorf("%d of %d test pod(s) not Running with an address in time: %s", len(missing), len(expected), textlist.Capped(missing, maxListed))
}

// diagnoseTimeout bounds the reads that explain a timeout.
const diagnoseTimeout = 15 * time.Second

// diagnosePod describes why a pod is not running: its phase, a waiting container's
// reason, and its latest warning event.
func diagnosePod(ctx context.Context, kube kubernetes.Interface, ns, name string) string {
	p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	parts := []string{string(p.Status.Phase)}
	if p.Spec.NodeName == "" {
		parts = append(parts, "not scheduled")
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			parts = append(parts, w.Reason)
		}
	}
	if w := kubeclient.LatestWarning(ctx, kube, ns, name); w != "" {
		parts = append(parts, w)
	}
	return strings.Join(parts, ", ")
}
