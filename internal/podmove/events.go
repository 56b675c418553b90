package podmove

import (
	"time"
)

// Event is one line of live progress: a pod that went, came back, was skipped, or
// a periodic progress summary. Emitted as JSON lines by the CLI.
type Event struct {
	Time time.Time `json:"time"`
	// Type: pod.evicted, pod.deleted, pod.replaced, pod.skipped, pod.refused (by a
	// budget, 429), owner.restarted, progress, warning.
	Type  string `json:"type"`
	Pod   string `json:"pod,omitempty"` // namespace/name
	Node  string `json:"node,omitempty"`
	Owner string `json:"owner,omitempty"`
	IP    string `json:"ip,omitempty"`
	// Replacement is the replacement's name where it is one-to-one (StatefulSet:
	// same name; DaemonSet: same node); for other owners a pod is replaced when
	// its owner has as many Ready pods in the target pools as before.
	Replacement string `json:"replacement,omitempty"`
	// Pools are the target pools' names (pod.replaced).
	Pools []string `json:"pools,omitempty"`
	// Took is how long the pod was away (eviction accepted to replacement Ready).
	Took    time.Duration `json:"took,omitempty"`
	Message string        `json:"message,omitempty"`

	// Progress (type progress).
	Moved        int           `json:"moved,omitempty"`
	Total        int           `json:"total,omitempty"`
	Replaced     int           `json:"replaced,omitempty"`
	InFlight     int           `json:"inFlight,omitempty"`
	WaitingOnPDB int           `json:"waitingOnPDB,omitempty"`
	ETA          time.Duration `json:"eta,omitempty"`
}

// progressEvery throttles progress events.
const progressEvery = time.Second

// eta extrapolates the remaining time from the rate so far; zero until something
// has moved.
func eta(start, now time.Time, moved, total int) time.Duration {
	if moved <= 0 || total <= moved {
		return 0
	}
	elapsed := now.Sub(start)
	return time.Duration(float64(elapsed) / float64(moved) * float64(total-moved)).Round(time.Second)
}
