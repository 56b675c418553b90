package engine

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// WriteFence keeps a run that lost its lock from changing the cluster. Wrapped
// around the transport of every client a run uses (rest.Config.Wrap, innermost, so
// that each retry is checked too), it refuses a request that could write — any
// method but GET, HEAD and OPTIONS — before it leaves the process, once the fence
// it was armed with (Lock.Fence) fails. Unarmed it lets everything through: the
// lock is acquired through the same clients.
//
// Why in the transport: the engine fences its journal writes, and the lock
// cancels the run's context when a renewal finds the lease gone, but an action
// in flight when its process is paused (SIGSTOP, a stalled VM) carries on the
// moment it wakes up, concurrently with the renewal loop that is about to notice;
// its next request (a test pod of the verification step, an eviction) would
// reach the apiserver before the cancellation does. Checking the lease's renew
// deadline before each write, by the local monotonic clock, needs no request and
// fails at once after such a pause, as client-go leaderelection's RenewDeadline
// does for controllers.
//
// What it cannot close: a write that passed the check an instant before its
// process was paused and is sent after it woke up. Kubernetes has no fencing
// token a write could carry; the journal's compare-and-swap still refuses such a
// stale journal write, and the window is the microseconds between the check and
// the send.
type WriteFence struct {
	fence atomic.Pointer[func() error]
}

// Arm makes the fence refuse writes whenever fence fails (Lock.Fence, which
// keeps failing once it failed).
func (w *WriteFence) Arm(fence func() error) { w.fence.Store(&fence) }

// Wrap returns rt with the fence in front of it. It fits rest.Config.Wrap.
func (w *WriteFence) Wrap(rt http.RoundTripper) http.RoundTripper {
	return &fencedTransport{w: w, next: rt}
}

type fencedTransport struct {
	w    *WriteFence
	next http.RoundTripper
}

func (t *fencedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if f := t.w.fence.Load(); f != nil {
			if err := (*f)(); err != nil {
				// A RoundTripper must close the body, even on error.
				if req.Body != nil {
					_ = req.Body.Close()
				}
				return nil, fmt.Errorf("%s %s not sent: %w", req.Method, req.URL.Path, err)
			}
		}
	}
	return t.next.RoundTrip(req)
}

// WrappedRoundTripper lets client-go's transport helpers see through the fence.
func (t *fencedTransport) WrappedRoundTripper() http.RoundTripper { return t.next }
