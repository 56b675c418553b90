package sandbox_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	cnet "github.com/projectcalico/calico/libcalico-go/lib/net"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox/cni"
)

const lifecycleScenario = `
apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: pod-lifecycle
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
pods: {startDelay: 200ms, shutdownDelay: 3s}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 2}
workloads:
- {name: web, namespace: shop, replicas: 2, readinessDelay: 2s}
- {name: stuck, namespace: shop, kind: Pod, shutdownDelay: 1h, terminationGracePeriodSeconds: 2}
`

// podTimeline records, from a watch, when each pod (by UID) was first seen in
// each state.
type podTimeline struct {
	mu      sync.Mutex
	running map[string]time.Time // Running and not Ready
	ready   map[string]time.Time
	noIPs   map[string]time.Time // terminating with its addresses torn down (CNI DEL)
	gone    map[string]time.Time
	created map[string]time.Time
}

func watchPods(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) *podTimeline {
	t.Helper()
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tl := &podTimeline{running: map[string]time.Time{}, ready: map[string]time.Time{},
		noIPs: map[string]time.Time{}, gone: map[string]time.Time{}, created: map[string]time.Time{}}
	first := func(m map[string]time.Time, uid string, at time.Time) {
		if _, ok := m[uid]; !ok {
			m[uid] = at
		}
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now, uid := time.Now(), string(p.UID)
			tl.mu.Lock()
			first(tl.created, uid, now)
			switch {
			case ev.Type == watch.Deleted:
				first(tl.gone, uid, now)
			case p.DeletionTimestamp != nil && p.Annotations[cni.AnnotationPodIPs] == "":
				first(tl.noIPs, uid, now)
			case podIsReady(*p):
				first(tl.ready, uid, now)
			case p.Status.Phase == corev1.PodRunning:
				first(tl.running, uid, now)
			}
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *podTimeline) at(m map[string]time.Time, uid string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	v, ok := m[uid]
	return v, ok
}

// A pod is Running but not Ready until its readiness probe's initial delay has
// passed; a terminating pod keeps its address — allocated in Calico IPAM — while
// its containers shut down (pods.shutdownDelay), and a shutdown longer than the
// grace period is cut short by it, as the kubelet's SIGKILL does. A Deployment's
// replacement starts at once, while the evicted pod is still draining.
func TestPodLifecycle(t *testing.T) {
	ic, ctx := startInline(t, lifecycleScenario, 2*time.Minute)
	cs, calico := ic.kube, ic.calico
	tl := watchPods(ctx, t, cs, "shop")

	// Readiness: a new replica (created while we watch) is Running, not Ready, for
	// the probe's 2 s.
	poll(ctx, t, "web Ready", func(ctx context.Context) (bool, error) {
		pods := podsOf(ctx, t, cs, "shop", "app=web")
		return len(pods) == 2 && podIsReady(pods[0]) && podIsReady(pods[1]), nil
	})
	victim := podsOf(ctx, t, cs, "shop", "app=web")[0]
	ip := strings.Split(victim.Annotations[cni.AnnotationPodIPs], "/")[0]
	evictedAt := time.Now()
	if err := evict(ctx, cs, victim); err != nil {
		t.Fatalf("evicting %s: %v", victim.Name, err)
	}

	// The replacement is created while the victim still drains with its address.
	var replacement corev1.Pod
	poll(ctx, t, "web replacement created", func(ctx context.Context) (bool, error) {
		for _, p := range podsOf(ctx, t, cs, "shop", "app=web") {
			if p.DeletionTimestamp == nil && p.UID != victim.UID && p.CreationTimestamp.After(evictedAt.Add(-time.Second)) {
				replacement = p
				return true, nil
			}
		}
		return false, nil
	})
	if at, ok := tl.at(tl.noIPs, string(victim.UID)); ok {
		t.Fatalf("the victim's addresses were torn down %v after its eviction, before its replacement existed", at.Sub(evictedAt))
	}
	attrs, _, err := calico.IPAM().GetAssignmentAttributes(ctx, cnet.MustParseIP(ip))
	if err != nil || attrs["pod"] != victim.Name {
		t.Fatalf("while draining, %s is not allocated to %s in IPAM: %v %v", ip, victim.Name, attrs, err)
	}

	poll(ctx, t, "victim gone", func(ctx context.Context) (bool, error) {
		_, ok := tl.at(tl.gone, string(victim.UID))
		return ok, nil
	})
	torn, _ := tl.at(tl.noIPs, string(victim.UID))
	if drained := torn.Sub(evictedAt); drained < 2900*time.Millisecond {
		t.Errorf("the victim's addresses were torn down %v after the eviction, before its 3 s shutdown", drained)
	} else {
		t.Logf("victim drained for %v, then CNI DEL", drained.Round(time.Millisecond))
	}
	if _, _, err := calico.IPAM().GetAssignmentAttributes(ctx, cnet.MustParseIP(ip)); err == nil {
		t.Errorf("%s still allocated after the victim is gone", ip)
	}

	poll(ctx, t, "replacement Ready", func(ctx context.Context) (bool, error) {
		_, ok := tl.at(tl.ready, string(replacement.UID))
		return ok, nil
	})
	running, okRunning := tl.at(tl.running, string(replacement.UID))
	ready, _ := tl.at(tl.ready, string(replacement.UID))
	switch {
	case !okRunning:
		t.Errorf("replacement %s was never seen Running and not Ready", replacement.Name)
	case ready.Sub(running) < 1900*time.Millisecond:
		t.Errorf("replacement Ready %v after Running, before its probe's 2 s initial delay", ready.Sub(running))
	default:
		t.Logf("replacement Running, not Ready, for %v (probe initialDelaySeconds 2)", ready.Sub(running).Round(time.Millisecond))
	}

	// The grace period ends a shutdown that would take an hour.
	deletedAt := time.Now()
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	stuck, err := cs.CoreV1().Pods("shop").Get(ctx, "stuck", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := stuck.DeletionGracePeriodSeconds; g == nil || *g != 2 {
		t.Fatalf("deletionGracePeriodSeconds = %v, want the spec's 2", g)
	}
	poll(ctx, t, "stuck gone", func(ctx context.Context) (bool, error) {
		_, ok := tl.at(tl.gone, string(stuck.UID))
		return ok, nil
	})
	torn, _ = tl.at(tl.noIPs, string(stuck.UID))
	if d := torn.Sub(deletedAt); d < 1900*time.Millisecond {
		t.Errorf("stuck torn down %v after its deletion, before its 2 s grace period", d)
	} else {
		t.Logf("stuck (shutdown 1h, grace 2 s) torn down after %v", d.Round(time.Millisecond))
	}
}
