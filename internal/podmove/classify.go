package podmove

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/runbookdev/runbook/internal/textlist"
)

// Disposition is what the step does with a pod that holds an address in the pool.
type Disposition int

const (
	// Move: evict, delete or restart its owner, by the strategy.
	Move Disposition = iota
	// WaitGone: already terminating; wait until it is gone.
	WaitGone
	// WaitJob: a Job's pod is never evicted (that fails or restarts the work); wait
	// until it completes.
	WaitJob
	// Skip: left in place on request (unmanagedPods: skip, jobs: skip).
	Skip
	// Refuse: the step cannot move it safely; it refuses before changing anything.
	Refuse
)

func (d Disposition) String() string {
	return [...]string{"move", "wait until gone", "wait for the job", "skip", "refuse"}[d]
}

// UnmanagedPolicy says what to do with bare pods (no controller, or a controller
// that no longer exists) and static pods.
type UnmanagedPolicy string

const (
	UnmanagedRefuse UnmanagedPolicy = "refuse"
	UnmanagedDelete UnmanagedPolicy = "delete"
	UnmanagedSkip   UnmanagedPolicy = "skip"
)

// JobPolicy says what to do with pods of Jobs.
type JobPolicy string

const (
	JobsWait JobPolicy = "wait"
	JobsSkip JobPolicy = "skip"
)

// Filters are the options the per-pod filters read.
type Filters struct {
	Unmanaged      UnmanagedPolicy
	Jobs           JobPolicy
	AllowLocalData bool
}

// filter is one rule, in the style of kubectl drain's PodFilter: it either decides
// (decided true) or passes the pod on to the next rule.
type filter func(p *corev1.Pod, o Owner, managed bool, f Filters) (d Disposition, why string, decided bool)

// filters run in order; the first that decides wins. Order matters: a terminating
// pod is waited for whatever it is; a static pod is reported as static, not as bare.
var filters = []filter{terminatingFilter, mirrorFilter, jobFilter, unmanagedFilter, localDataFilter}

// classify runs the filters.
func classify(p *corev1.Pod, o Owner, managed bool, f Filters) (Disposition, string) {
	for _, fl := range filters {
		if d, why, ok := fl(p, o, managed, f); ok {
			return d, why
		}
	}
	return Move, ""
}

func terminatingFilter(p *corev1.Pod, _ Owner, _ bool, _ Filters) (Disposition, string, bool) {
	if isTerminating(p) {
		return WaitGone, "terminating", true
	}
	return 0, "", false
}

func mirrorFilter(p *corev1.Pod, _ Owner, _ bool, f Filters) (Disposition, string, bool) {
	if !isMirror(p) {
		return 0, "", false
	}
	if f.Unmanaged == UnmanagedSkip {
		return Skip, "static pod (unmanagedPods: skip)", true
	}
	// Deleting a mirror pod does not restart the static pod behind it: the kubelet
	// recreates the mirror and the pod keeps its address. Only the node can move it.
	return Refuse, "static pods (deleting the mirror pod does not restart them: restart them on their node, or set unmanagedPods: skip)", true
}

func jobFilter(p *corev1.Pod, o Owner, _ bool, f Filters) (Disposition, string, bool) {
	if o.Kind != KindJob {
		return 0, "", false
	}
	if f.Jobs == JobsSkip {
		return Skip, "Job pod (jobs: skip)", true
	}
	return WaitJob, "Job pod: waiting for it to complete", true
}

func unmanagedFilter(p *corev1.Pod, o Owner, managed bool, f Filters) (Disposition, string, bool) {
	if managed {
		return 0, "", false
	}
	switch f.Unmanaged {
	case UnmanagedSkip:
		return Skip, "bare pod (unmanagedPods: skip)", true
	case UnmanagedDelete:
		return 0, "", false // moved like any pod: nothing recreates it, which was asked for
	}
	if o.IsZero() {
		return Refuse, "bare pods (no controller would recreate them: set unmanagedPods: delete or skip)", true
	}
	return Refuse, "orphaned pods (their controller " + o.Kind + " no longer exists, nothing would recreate them: set unmanagedPods: delete or skip)", true
}

func localDataFilter(p *corev1.Pod, _ Owner, _ bool, f Filters) (Disposition, string, bool) {
	if hasLocalData(p) && !f.AllowLocalData {
		return Refuse, "pods with emptyDir volumes (their data is lost when they move: set allowLocalData: true)", true
	}
	return 0, "", false
}

// Refusals collects the pods the step refuses to move, grouped by reason like
// kubectl drain's aggregated errors: an operator fixes every problem in one go.
type Refusals map[string][]string

func (r Refusals) add(why, pod string) { r[why] = append(r[why], pod) }

// Problems renders one line per reason, listing at most max pods each.
func (r Refusals) Problems(max int) []string {
	reasons := make([]string, 0, len(r))
	for why := range r {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	out := make([]string, 0, len(reasons))
	for _, why := range reasons {
		pods := append([]string(nil), r[why]...)
		sort.Strings(pods)
		out = append(out, fmt.Sprintf("%s: %s", why, textlist.Capped(pods, max)))
	}
	return out
}
