package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestLockContentionTakeoverAndFencing exercises the run lock on a real apiserver:
// a second holder is refused with the first one's name, an expired lease is taken
// over, and a holder that stopped renewing (as after SIGSTOP) can no longer write.
func TestLockContentionTakeoverAndFencing(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ns := createNamespace(ctx, t, cs, "lock-test")
	newLock := func(holder string) *engine.Lock {
		return &engine.Lock{Client: cs, Namespace: ns, Name: "runbook-lock-calico-ipam", Holder: holder,
			LeaseDuration: 2 * time.Second, RenewEvery: 300 * time.Millisecond}
	}

	a := newLock("alice@laptop pid 1")
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Fence(); err != nil {
		t.Fatalf("fresh holder is fenced: %v", err)
	}
	b := newLock("bob@ci pid 2")
	var held *engine.HeldError
	if err := b.Acquire(ctx); !errors.As(err, &held) || held.Holder != "alice@laptop pid 1" {
		t.Fatalf("second acquire: want HeldError naming alice, got %v", err)
	}

	// Alice holds and renews: Bob is still refused after a lease duration.
	aCtx := a.Hold(ctx)
	time.Sleep(2500 * time.Millisecond)
	if err := b.Acquire(ctx); !errors.As(err, &held) {
		t.Fatalf("a renewed lease must not be taken over: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if aCtx.Err() != nil {
		t.Fatalf("release is not a loss: %v", context.Cause(aCtx))
	}

	// Released: Bob acquires at once. Then Bob stops renewing (paused): after the
	// lease duration his fence fails, Carol takes over, and Bob's journal write is
	// refused twice over — by the fence and by the journal's resourceVersion.
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	store := &engine.ConfigMapStore{Client: cs, Namespace: ns, Name: "runbook-fenced"}
	rev, err := store.Save(ctx, &engine.Journal{RunID: "bob", Status: engine.StatusRunning}, "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := b.Fence(); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("a holder past its lease must be fenced: %v", err)
	}
	carol := newLock("carol@ci pid 3")
	if err := carol.Acquire(ctx); err != nil {
		t.Fatalf("takeover of an expired lease: %v", err)
	}
	carolCtx := carol.Hold(ctx)
	defer carol.Release(ctx)
	if _, err := store.Save(ctx, &engine.Journal{RunID: "bob", Status: engine.StatusRunning, Holder: "carol"}, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Save(ctx, &engine.Journal{RunID: "bob", Holder: "bob"}, rev); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("the old holder's stale write must conflict: %v", err)
	}

	// A holder whose lease is deleted from under it (unlock --force) notices at
	// once (it watches its Lease) and its context is cancelled, so mutation stops.
	if _, err := engine.Unlock(ctx, cs, ns, "runbook-lock-calico-ipam", true); err != nil {
		t.Fatal(err)
	}
	dave := newLock("dave@ci pid 4")
	if err := dave.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-carolCtx.Done():
		if !errors.Is(context.Cause(carolCtx), engine.ErrFenced) {
			t.Fatalf("cause: %v", context.Cause(carolCtx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("carol did not notice losing the lock")
	}
	if err := carol.Fence(); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("carol must be fenced: %v", err)
	}
}

// TestLockHolderWithASlowClock (issue #15 item 5): a live holder whose clock runs
// behind writes renew times that look expired to everyone else. On the real
// apiserver, a second run watches the record, sees it renewed, and refuses
// instead of taking the lease over; once the holder is gone it takes over.
func TestLockHolderWithASlowClock(t *testing.T) {
	c := sandbox.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	ns := createNamespace(ctx, t, cs, "lock-skew")
	const name = "runbook-lock-calico-ipam"
	holder, secs := "bob@slow-clock pid 1 #00000000", int32(2)
	skewed := func() *metav1.MicroTime { m := metav1.NewMicroTime(time.Now().Add(-10 * time.Second)); return &m }
	if _, err := cs.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: skewed(), AcquireTime: skewed()}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Bob is alive: he renews every 300 ms, with his clock 10 s behind.
	bobCtx, bobStop := context.WithCancel(ctx)
	bobDone := make(chan struct{})
	go func() {
		defer close(bobDone)
		for bobCtx.Err() == nil {
			if l, err := cs.CoordinationV1().Leases(ns).Get(bobCtx, name, metav1.GetOptions{}); err == nil {
				l.Spec.RenewTime = skewed()
				_, _ = cs.CoordinationV1().Leases(ns).Update(bobCtx, l, metav1.UpdateOptions{})
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	carol := &engine.Lock{Client: cs, Namespace: ns, Name: name, Holder: "carol@ci pid 3", LeaseDuration: 2 * time.Second, RenewEvery: 300 * time.Millisecond}
	var held *engine.HeldError
	if err := carol.Acquire(ctx); !errors.As(err, &held) || !held.Renewed || held.Holder != holder {
		bobStop()
		t.Fatalf("acquire over a live holder with a slow clock: %v, want a HeldError saying %s renewed it", err, holder)
	}
	bobStop()
	<-bobDone
	if err := carol.Acquire(ctx); err != nil {
		t.Fatalf("takeover once the holder is gone: %v", err)
	}
	_ = carol.Release(ctx)
}
