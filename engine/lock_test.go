package engine

// Internal tests of the lock's fencing rule: they step a fake clock, which the
// exported API does not expose. test/e2e/lock_test.go covers the lease against a
// real apiserver, test/reliability/lock_test.go real processes paused past it.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

// newTestLock acquires a 30 s lease renewed every 10 s (the CLI's values) on a
// fake clientset, with a fake clock for the fence.
func newTestLock(t *testing.T) (*Lock, *fake.Clientset, *clocktesting.FakeClock) {
	t.Helper()
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Now())
	l := &Lock{Client: cs, Namespace: "runbook-system", Name: "runbook-lock-calico-ipam", Holder: "alice pid 1",
		LeaseDuration: 30 * time.Second, RenewEvery: 10 * time.Second, clock: clk}
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l, cs, clk
}

func leaseUpdates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "leases" {
			n++
		}
	}
	return n
}

// TestFenceRenewDeadline: the lock counts as ours until the renew deadline (lease
// minus half a renewal period) after its last renewal, by the local clock; from
// then on the fence fails for good, and the renewal loop does not renew a lease
// that still names us (a holder paused past its deadline must not carry on as if
// nothing happened).
func TestFenceRenewDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		elapsed time.Duration // since the acquisition, without a renewal
		fenced  bool
	}{
		{"fresh", 0, false},
		{"one renewal period", 10 * time.Second, false},
		{"just before the renew deadline", 25*time.Second - time.Millisecond, false},
		{"at the renew deadline", 25 * time.Second, true},
		{"lease expired", 30 * time.Second, true},
		{"woken from a long SIGSTOP", 10 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, cs, clk := newTestLock(t)
			clk.Step(tc.elapsed)
			err := l.Fence()
			if got := errors.Is(err, ErrFenced); got != tc.fenced {
				t.Fatalf("after %v: Fence() = %v, want fenced %v", tc.elapsed, err, tc.fenced)
			}
			before := leaseUpdates(cs)
			err = l.renew(context.Background())
			if tc.fenced {
				if !errors.Is(err, ErrFenced) {
					t.Errorf("renew past the deadline: %v, want ErrFenced", err)
				}
				if n := leaseUpdates(cs) - before; n != 0 {
					t.Errorf("renew past the deadline updated the lease %d times", n)
				}
				// Sticky: even right after "now" the fence keeps failing.
				if err := l.Fence(); !errors.Is(err, ErrFenced) {
					t.Errorf("fence after a failed deadline: %v, want ErrFenced for good", err)
				}
				return
			}
			if err != nil || leaseUpdates(cs)-before != 1 {
				t.Fatalf("renew within the deadline: %v, %d updates", err, leaseUpdates(cs)-before)
			}
			// A renewal restarts the deadline.
			clk.Step(20 * time.Second)
			if err := l.Fence(); err != nil {
				t.Errorf("20 s after a renewal: %v", err)
			}
		})
	}
}

// TestHoldLosesATakenOverLease: when the renewal finds another holder in the
// lease, the run's context is cancelled with ErrFenced and the fence fails,
// although the renew deadline has not passed.
func TestHoldLosesATakenOverLease(t *testing.T) {
	l, cs, _ := newTestLock(t)
	l.RenewEvery = 10 * time.Millisecond // the renewal loop's real ticker
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	held := l.Hold(ctx)
	defer func() { _ = l.Release(ctx) }()
	lease, err := cs.CoordinationV1().Leases(l.Namespace).Get(ctx, l.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob := "bob pid 2"
	lease.Spec.HolderIdentity = &bob
	if _, err := cs.CoordinationV1().Leases(l.Namespace).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
	case <-ctx.Done():
		t.Fatal("the holder never noticed the takeover")
	}
	if cause := context.Cause(held); !errors.Is(cause, ErrFenced) || !strings.Contains(cause.Error(), bob) {
		t.Errorf("cause %v, want ErrFenced naming %s", cause, bob)
	}
	if err := l.Fence(); !errors.Is(err, ErrFenced) {
		t.Errorf("fence after the takeover: %v", err)
	}
}

// countingTransport is the wire: it counts what reaches it.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}}, nil
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestWriteFence: reads always pass; writes pass while the lock is ours and are
// refused before they reach the wire once it may not be, whatever the method.
func TestWriteFence(t *testing.T) {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	for _, tc := range []struct {
		name    string
		arm     bool
		elapsed time.Duration
		refused []string // methods refused
	}{
		{name: "unarmed (no lock yet)", arm: false, elapsed: time.Hour},
		{name: "lock ours", arm: true, elapsed: 10 * time.Second},
		{name: "past the renew deadline", arm: true, elapsed: 25 * time.Second,
			refused: []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _, clk := newTestLock(t)
			clk.Step(tc.elapsed)
			var wf WriteFence
			if tc.arm {
				wf.Arm(l.Fence)
			}
			wire := &countingTransport{}
			rt := wf.Wrap(wire)
			for _, m := range methods {
				body := &closeRecorder{Reader: strings.NewReader("{}")}
				req := httptest.NewRequest(m, "https://apiserver/api/v1/namespaces/ippool-test/pods", body)
				before := wire.n.Load()
				resp, err := rt.RoundTrip(req)
				sent := wire.n.Load() - before
				want := !slices.Contains(tc.refused, m)
				if want {
					if err != nil || sent != 1 {
						t.Errorf("%s: err %v, sent %d; want it sent", m, err, sent)
					}
					if resp != nil {
						_ = resp.Body.Close()
					}
					continue
				}
				if !errors.Is(err, ErrFenced) || sent != 0 {
					t.Errorf("%s: err %v, sent %d; want ErrFenced and nothing sent", m, err, sent)
				}
				if !body.closed {
					t.Errorf("%s: the refused request's body was not closed", m)
				}
			}
		})
	}
}

// TestWriteFenceThroughClientGo: a typed client built on a fenced config returns
// an error that is ErrFenced for a write once the lock is lost, and the apiserver
// never sees the request; reads still reach it.
func TestWriteFenceThroughClientGo(t *testing.T) {
	var seen atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ippool-test"}}`)
	}))
	defer srv.Close()
	l, _, clk := newTestLock(t)
	var wf WriteFence
	wf.Arm(l.Fence)
	cfg := &rest.Config{Host: srv.URL, WrapTransport: wf.Wrap}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	if _, err := cs.CoreV1().Pods("ippool-test").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create while the lock is ours: %v", err)
	}
	clk.Step(time.Minute) // paused past the lease
	before := seen.Load()
	_, err = cs.CoreV1().Pods("ippool-test").Create(ctx, pod, metav1.CreateOptions{})
	if !errors.Is(err, ErrFenced) {
		t.Errorf("create after the lease: %v, want ErrFenced", err)
	}
	if err := cs.CoreV1().Pods("ippool-test").Delete(ctx, "p", metav1.DeleteOptions{}); !errors.Is(err, ErrFenced) {
		t.Errorf("delete after the lease: %v, want ErrFenced", err)
	}
	if n := seen.Load() - before; n != 0 {
		t.Errorf("the apiserver saw %d writes after the lease", n)
	}
	if _, err := cs.CoreV1().Pods("ippool-test").Get(ctx, "p", metav1.GetOptions{}); err != nil {
		t.Errorf("reads must still work (the run reports what it saw): %v", err)
	}
}
