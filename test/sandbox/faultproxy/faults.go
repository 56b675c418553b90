package faultproxy

import (
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Fault is one misbehaviour of the proxy. It applies to requests that match and,
// when Times is set, only to the next Times of them. Latency combines with the
// other effects; Status and Reset exclude each other.
type Fault struct {
	// Methods restricts the fault to these HTTP methods (GET, POST, PATCH, ...);
	// empty matches all.
	Methods []string
	// Path restricts it to request paths matching this expression, e.g.
	// `/ippools` or `^/api/v1/namespaces/[^/]+/pods$`; nil matches all.
	Path *regexp.Regexp
	// Watch, when set, matches only watch requests (true) or only the others
	// (false).
	Watch *bool

	// Latency delays the request before anything else happens.
	Latency time.Duration
	// Status answers with this HTTP status and a Kubernetes Status body instead of
	// forwarding (e.g. 500, 503, 429); the apiserver never sees the request.
	Status int
	// RetryAfter sets the Retry-After header of a Status answer (whole seconds),
	// which client-go honours for 429 and 5xx.
	RetryAfter time.Duration
	// Reset aborts the connection with a TCP reset instead of forwarding: the
	// client sees "connection reset by peer".
	Reset bool

	// Times limits the fault to the next Times matching requests; 0 means every one.
	Times int
}

// matches reports whether the fault applies to r.
func (f *Fault) matches(r *http.Request) bool {
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, r.Method) {
		return false
	}
	if f.Path != nil && !f.Path.MatchString(r.URL.Path) {
		return false
	}
	if f.Watch != nil && *f.Watch != isWatch(r) {
		return false
	}
	return true
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1"
}

// faultSet is the proxy's current faults, consumed in order.
type faultSet struct {
	mu     sync.Mutex
	faults []*activeFault
}

type activeFault struct {
	Fault
	left int // remaining uses when Times > 0
}

func (s *faultSet) set(faults []Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = s.faults[:0]
	for _, f := range faults {
		s.faults = append(s.faults, &activeFault{Fault: f, left: f.Times})
	}
}

func (s *faultSet) add(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &activeFault{Fault: f, left: f.Times})
}

// take returns the first fault that applies to r, using up one of its Times.
func (s *faultSet) take(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !f.matches(r) {
			continue
		}
		if f.Times > 0 {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}
