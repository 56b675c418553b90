package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// bobsLease is a Lease held by bob, renewed at renewed by bob's clock.
func bobsLease(renewed time.Time) *coordinationv1.Lease {
	holder, secs := "bob@ci pid 1 #00000000", int32(30)
	at := metav1.NewMicroTime(renewed)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "runbook-system", Name: "runbook-lock-calico-ipam"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &at, AcquireTime: &at}}
}

// stepWhileWaiting steps clk by d whenever Acquire waits on it, until done.
func stepWhileWaiting(clk *clocktesting.FakeClock, d time.Duration, between func(step int), done <-chan error) error {
	for step := 0; ; {
		select {
		case err := <-done:
			return err
		default:
		}
		if !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
			continue
		}
		step++
		if between != nil {
			between(step)
		}
		clk.Step(d)
	}
}

// Issue #15 item 5: a holder whose clock runs behind writes renew times that look
// expired to others. Acquire takes such a lease over only once its record stayed
// unchanged for a full lease duration by the local monotonic clock.
func TestTakeoverNeedsAnUnchangedRecordForALeaseDuration(t *testing.T) {
	for _, tc := range []struct {
		name    string
		renewAt int // bob renews at this observation step (0: never: he is gone)
		taken   bool
	}{
		{"holder gone: taken over after a lease duration", 0, true},
		{"holder alive, clock 45 s behind: refused", 5, false},
		{"holder renews in the last second: refused", 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// Bob's renew time is 45 s old by our wall clock: expired, it seems.
			cs := fake.NewClientset(bobsLease(time.Now().Add(-45 * time.Second)))
			clk := clocktesting.NewFakeClock(time.Now())
			l := &Lock{Client: cs, Namespace: "runbook-system", Name: "runbook-lock-calico-ipam", Holder: "alice pid 1",
				LeaseDuration: 30 * time.Second, RenewEvery: 10 * time.Second, clock: clk}
			done := make(chan error, 1)
			go func() { done <- l.Acquire(ctx) }()
			start := clk.Now()
			err := stepWhileWaiting(clk, time.Second, func(step int) {
				if step == tc.renewAt { // bob, alive, renews (with his old clock)
					lease := bobsLease(time.Now().Add(-44 * time.Second))
					cur, _ := cs.CoordinationV1().Leases("runbook-system").Get(ctx, lease.Name, metav1.GetOptions{})
					lease.ResourceVersion = cur.ResourceVersion
					if _, err := cs.CoordinationV1().Leases("runbook-system").Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
						t.Error(err)
					}
				}
			}, done)
			waited := clk.Since(start)
			var held *HeldError
			if tc.taken {
				if err != nil {
					t.Fatalf("Acquire: %v", err)
				}
				if waited < 30*time.Second {
					t.Errorf("took over after watching %v of local time, want at least the lease duration (30s)", waited)
				}
				cur, _ := cs.CoordinationV1().Leases("runbook-system").Get(ctx, "runbook-lock-calico-ipam", metav1.GetOptions{})
				if h := *cur.Spec.HolderIdentity; h != "alice pid 1" {
					t.Errorf("lease holder %q after the takeover", h)
				}
				return
			}
			if !errors.As(err, &held) || !held.Renewed || !strings.Contains(err.Error(), "bob@ci") {
				t.Fatalf("Acquire = %v, want a HeldError saying bob renewed while we watched", err)
			}
			cur, _ := cs.CoordinationV1().Leases("runbook-system").Get(ctx, "runbook-lock-calico-ipam", metav1.GetOptions{})
			if h := *cur.Spec.HolderIdentity; !strings.HasPrefix(h, "bob@ci") {
				t.Errorf("the live holder's lease was taken: holder %q", h)
			}
		})
	}
}

// --lock-timeout: a lock released while waiting is taken; one held past the
// timeout is refused naming the holder.
func TestAcquireWithin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		releaseAt int // bob releases at this wait (0: never)
		timeout   time.Duration
		taken     bool
	}{
		{"released while waiting", 3, time.Minute, true},
		{"held past the timeout", 0, 25 * time.Second, false},
		{"no timeout: refused at once", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cs := fake.NewClientset(bobsLease(time.Now()))
			clk := clocktesting.NewFakeClock(time.Now())
			l := &Lock{Client: cs, Namespace: "runbook-system", Name: "runbook-lock-calico-ipam", Holder: "alice pid 1",
				LeaseDuration: 30 * time.Second, RenewEvery: 10 * time.Second, clock: clk}
			done := make(chan error, 1)
			go func() { done <- l.AcquireWithin(ctx, tc.timeout) }()
			err := stepWhileWaiting(clk, 10*time.Second, func(step int) {
				if step == tc.releaseAt {
					cur, _ := cs.CoordinationV1().Leases("runbook-system").Get(ctx, "runbook-lock-calico-ipam", metav1.GetOptions{})
					cur.Spec.HolderIdentity = nil
					if _, err := cs.CoordinationV1().Leases("runbook-system").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
						t.Error(err)
					}
				}
			}, done)
			var held *HeldError
			switch {
			case tc.taken && err != nil:
				t.Fatalf("AcquireWithin: %v", err)
			case !tc.taken && !errors.As(err, &held):
				t.Fatalf("AcquireWithin = %v, want HeldError", err)
			}
		})
	}
}

// Issue #15 item 7: unlock refuses a live lease unless forced; a holder whose
// Lease is deleted stops at once (its watch), not at the next renewal.
func TestUnlockAndADeletedLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, cs, _ := newTestLock(t)
	l.RenewEvery = 20 * time.Second // no renewal within the test: only the watch can notice
	held := l.Hold(ctx)
	defer func() { _ = l.Release(ctx) }()

	if _, err := Unlock(ctx, cs, l.Namespace, l.Name, false); !errors.Is(err, ErrLockLive) || !strings.Contains(err.Error(), "alice pid 1") {
		t.Fatalf("unlock of a live lock = %v, want ErrLockLive naming the holder", err)
	}
	if err := l.Fence(); err != nil {
		t.Fatalf("a refused unlock fenced the holder: %v", err)
	}
	for !watching(cs) {
		time.Sleep(time.Millisecond)
	}
	holder, err := Unlock(ctx, cs, l.Namespace, l.Name, true)
	if err != nil || holder != "alice pid 1" {
		t.Fatalf("unlock --force = %q, %v", holder, err)
	}
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder of a deleted lease kept its context")
	}
	if err := l.Fence(); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("fence after the lease was deleted: %v, want ErrFenced saying it was deleted", err)
	}
}

func watching(cs *fake.Clientset) bool {
	for _, a := range cs.Actions() {
		if a.GetVerb() == "watch" && a.GetResource().Resource == "leases" {
			return true
		}
	}
	return false
}

// Issue #15 item 8: two processes with one user, host and pid (pid 1 in two
// containers of one image) still have different holder identities.
func TestDefaultHolderIsUnique(t *testing.T) {
	a, b := DefaultHolder(), DefaultHolder()
	if a == b {
		t.Fatalf("two holders are both %q", a)
	}
	if !strings.Contains(a, " pid ") || !strings.Contains(a, "#") {
		t.Errorf("holder %q: want user@host pid N #nonce", a)
	}
}
