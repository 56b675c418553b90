package podmove

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// noWatchList turns off client-go's streaming initial list, which the fake
// clientset cannot serve (it sends no bookmark), for the informers of NewCache.
type noWatchList struct{ clientfeatures.Gates }

func (g noWatchList) Enabled(f clientfeatures.Feature) bool {
	return f != clientfeatures.WatchListClient && g.Gates.Enabled(f)
}

func TestMain(m *testing.M) {
	clientfeatures.ReplaceFeatureGates(noWatchList{clientfeatures.FeatureGates()})
	os.Exit(m.Run())
}

// movingCluster is a fake API whose evictions behave like a cluster's: the pod
// goes and its ReplicaSet's replacement comes up Ready in the new pool at once.
type movingCluster struct {
	kube      *fake.Clientset
	evictions atomic.Int32
}

func newMovingCluster(t *testing.T, pods int) *movingCluster {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "d-web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(pods))}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-abc", UID: "rs-web",
		OwnerReferences: []metav1.OwnerReference{{Kind: KindDeployment, Name: "web", UID: d.UID, Controller: ptr(true), APIVersion: "apps/v1"}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(pods))}}
	objs := []runtime.Object{d, rs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}}
	for i := range pods {
		objs = append(objs, rsPod(rs, fmt.Sprintf("web-abc-old%d", i), fmt.Sprintf("192.168.0.%d", 10+i), time.Now().Add(-time.Hour)))
	}
	c := &movingCluster{kube: fake.NewClientset(objs...)}
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	c.kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		n := c.evictions.Add(1)
		tr := c.kube.Tracker()
		if err := tr.Delete(podsGVR, ev.Namespace, ev.Name); err != nil {
			return true, nil, err
		}
		p := rsPod(rs, fmt.Sprintf("web-abc-new%d", n), fmt.Sprintf("10.0.0.%d", n), time.Now())
		return true, nil, tr.Create(podsGVR, p, p.Namespace)
	})
	return c
}

// rsPod is a Running, Ready pod of the ReplicaSet at ip.
func rsPod(rs *appsv1.ReplicaSet, name, ip string, created time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: name, UID: types.UID(name), Labels: map[string]string{"app": "web"},
			CreationTimestamp: metav1.NewTime(created),
			OwnerReferences:   []metav1.OwnerReference{{Kind: KindReplicaSet, Name: rs.Name, UID: rs.UID, Controller: ptr(true), APIVersion: "apps/v1"}}},
		Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created)}}},
	}
}

func (c *movingCluster) run(ctx context.Context, t *testing.T, events func(Event)) (Result, error) {
	t.Helper()
	cache, err := NewCache(ctx, c.kube)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	return Run(ctx, c.kube, cache, Config{Pool: oldPool, Targets: []Pool{newPool}, Since: time.Now().Add(-time.Minute),
		Timeout: time.Minute, Events: events})
}

// blockOnFirstReplaced is an event sink that blocks for d on the first
// replacement it is told of (a slow pipe, a slow audit sink, a process paused
// mid-round), then runs after (may be nil).
func blockOnFirstReplaced(d time.Duration, after func()) func(Event) {
	var once sync.Once
	return func(e Event) {
		if e.Type == "pod.replaced" {
			once.Do(func() {
				time.Sleep(d)
				if after != nil {
					after()
				}
			})
		}
	}
}

// A round that spent N seconds blocked outside its decisions must not make the
// next round wait a multiple of N (issue #24: 27 s blocked became a 220 s sleep).
func TestBlockedRoundIsNotMultiplied(t *testing.T) {
	const blocked = 2 * time.Second
	c := newMovingCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	res, err := c.run(ctx, t, blockOnFirstReplaced(blocked, nil))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Moved != 3 || res.Replaced != 3 {
		t.Fatalf("moved %d, replaced %d; want 3 and 3", res.Moved, res.Replaced)
	}
	// The old spacing (8 × the round's wall time) waits at least 8 × blocked
	// after the blocked round; the bound here is far from both.
	if limit := 4 * blocked; took > limit {
		t.Errorf("3 pods took %v with one round blocked %v: the next round waited a multiple of the block (limit %v)", took, blocked, limit)
	}
}

// A context cancelled while the mover waits between rounds ends the step at once.
func TestCancelDuringSpacingReturnsAtOnce(t *testing.T) {
	const blocked = 2 * time.Second
	c := newMovingCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cancelled atomic.Int64
	// Cancel a moment after the blocked round, while its successor is spaced.
	sink := blockOnFirstReplaced(blocked, func() {
		go func() {
			time.Sleep(300 * time.Millisecond)
			cancelled.Store(time.Now().UnixNano())
			cancel()
		}()
	})
	// Slow every later round's replacement so the run is still going at the cancel.
	c.kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "eviction" && c.evictions.Load() >= 1 {
			time.Sleep(time.Second)
		}
		return false, nil, nil
	})
	_, err := c.run(ctx, t, sink)
	returned := time.Now()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want interrupted by the cancelled context", err)
	}
	at := cancelled.Load()
	if at == 0 {
		t.Fatal("Run returned before the context was cancelled")
	}
	if late := returned.Sub(time.Unix(0, at)); late > time.Second {
		t.Errorf("Run returned %v after its context was cancelled", late)
	}
}

func TestRoundSpacing(t *testing.T) {
	for _, tc := range []struct {
		decided, want time.Duration
	}{
		{0, minRound},
		{time.Millisecond, minRound},
		{10 * time.Millisecond, 80 * time.Millisecond},
		{time.Second, maxRound},
		{27 * time.Second, maxRound},
	} {
		if got := roundSpacing(tc.decided); got != tc.want {
			t.Errorf("roundSpacing(%v) = %v, want %v", tc.decided, got, tc.want)
		}
	}
}
