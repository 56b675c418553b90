// Package kuberetry makes the tool's API requests ride out a restarting control
// plane: a kube-apiserver restart refuses connections for a few seconds, and a
// load balancer or the aggregator in front of an apiserver answers 502/503/504
// while it is away. client-go retries only a GET whose connection was
// reset and a 429/5xx that carries Retry-After; anything else fails the request,
// and for runbook that fails a step half-way through a migration (or a journal
// write), which is far worse than waiting a few seconds.
//
// Wrap retries a request only when retrying cannot apply it twice:
//
//   - the connection could not be made (dial error, connection refused): the
//     request never left, whatever its method;
//   - 503 Service Unavailable: the server did not process it (RFC 9110 15.6.4);
//   - 502 and 504, and a connection reset or EOF before a response: only for
//     GET and HEAD, which are safe to repeat. A write cut off this way may have
//     been applied, and repeating it would turn the server's success into a
//     conflict (a create into AlreadyExists, a compare-and-swap journal write into
//     a Conflict); the caller sees the error and the engine's resume re-observes.
//
// 500 and 429 are left to their callers: an eviction of a pod covered by several
// disruption budgets answers 500 for ever, and 429 without Retry-After is an
// eviction the budget does not allow now; both are answers, not outages.
package kuberetry

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Backoff is how long a request keeps trying: about 12 s in all, longer than an
// apiserver restart (3-4 s on the sandbox), short enough that an API that is
// really gone (an aggregated API whose server is down answers 503 too) fails the
// request soon and the step within its timeout.
var Backoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 7, Cap: 4 * time.Second}

// Wrap returns rt retrying as described in the package documentation. It fits
// rest.Config.Wrap.
func Wrap(rt http.RoundTripper) http.RoundTripper { return &transport{next: rt, backoff: Backoff} }

type transport struct {
	next    http.RoundTripper
	backoff wait.Backoff
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.backoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if req.Body != nil && req.Body != http.NoBody {
				if req.GetBody == nil {
					// Cannot replay the body: the last answer stands.
					return nil, errors.New("kuberetry: request body cannot be replayed")
				}
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				req = req.Clone(req.Context())
				req.Body = body
			}
		}
		resp, err := t.next.RoundTrip(req)
		if !retriable(req, resp, err) || b.Steps <= 1 {
			return resp, err
		}
		delay := b.Step()
		if resp != nil {
			if ra := retryAfter(resp); ra > delay {
				delay = ra
			}
			// Drain and close so the connection is reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		timer := time.NewTimer(delay)
		select {
		case <-req.Context().Done():
			timer.Stop()
			if resp != nil {
				return nil, req.Context().Err()
			}
			return nil, err
		case <-timer.C:
		}
	}
}

// retriable decides per the package documentation.
func retriable(req *http.Request, resp *http.Response, err error) bool {
	safe := req.Method == http.MethodGet || req.Method == http.MethodHead
	if err != nil {
		if req.Context().Err() != nil {
			return false
		}
		if notSent(err) {
			return true
		}
		return safe && (utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err))
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return safe
	}
	return false
}

// notSent reports an error from before the request was written: the dial failed.
func notSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryAfter is the server's Retry-After in whole seconds, capped at a minute.
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Minute)
}
