package podmove

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/internal/textlist"
)

// Budget is a PodDisruptionBudget as the eviction API judges it (its status), plus
// what this step knows and the status does not show yet. The API decides on the
// stored status alone, so the step mirrors that arithmetic to send only evictions
// that will be accepted; it also checks its own, fresher count of healthy pods, so
// a status that lags behind a pod turning unhealthy cannot talk it into one
// disruption too many.
type Budget struct {
	Namespace, Name string
	selector        labels.Selector
	uid             types.UID
	generation      int64

	// From status.
	Allowed        int32
	CurrentHealthy int32
	DesiredHealthy int32
	ExpectedPods   int32
	// Synced: the disruption controller has observed the current spec; until then
	// the API answers every eviction with 429.
	Synced bool
	// AlwaysAllow: unhealthyPodEvictionPolicy AlwaysAllow (not-Ready pods may always
	// be evicted). The default, IfHealthyBudget, allows it only while the budget
	// is healthy.
	AlwaysAllow bool

	// admitted: status.disruptedPods, pod name -> when the eviction API admitted its
	// eviction. The API writes the entry, then deletes the pod; if that delete never
	// happens (the client vanished mid-request: a killed run, a dropped connection),
	// the disruption controller keeps counting the pod as disrupted for two minutes
	// (its DeletionTimeout) and the budget allows nothing else meanwhile.
	// The informer's own map, read-only: copying it every round would allocate
	// for nothing.
	admitted map[string]metav1.Time

	// From the step's own view.
	Healthy     int // matched pods Ready and not terminating
	Unreflected int // own evictions that consume budget and the status does not show yet
	Draining    int // own evictions whose pods the cache still shows healthy
}

// newBudget reads a PDB. A selector that does not parse matches nothing, as in the
// eviction API.
func newBudget(pdb *policyv1.PodDisruptionBudget) *Budget {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		sel = labels.Nothing()
	}
	b := &Budget{Namespace: pdb.Namespace, Name: pdb.Name, selector: sel, uid: pdb.UID, generation: pdb.Generation,
		Allowed: pdb.Status.DisruptionsAllowed, CurrentHealthy: pdb.Status.CurrentHealthy,
		DesiredHealthy: pdb.Status.DesiredHealthy, ExpectedPods: pdb.Status.ExpectedPods,
		Synced: pdb.Status.ObservedGeneration >= pdb.Generation && pdb.Generation > 0}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
		b.AlwaysAllow = true
	}
	b.admitted = pdb.Status.DisruptedPods
	return b
}

// AdmittedEviction reports whether the budget's status already counts an eviction
// of this very pod that the API admitted but whose delete did not happen: the pod
// is listed in status.disruptedPods, with a time after the pod's creation (a
// StatefulSet pod recreated under the same name is another pod), and
// is not terminating. Deleting such a pod takes nothing more from the budget: the
// disruption it stands for has been granted and counted. Waiting instead blocks
// the budget until the disruption controller gives up on the entry.
func (b *Budget) AdmittedEviction(p *corev1.Pod) bool {
	at, ok := b.admitted[p.Name]
	// Both times are whole seconds: an entry from the very second the pod was
	// created may be its predecessor's (a StatefulSet pod recreated at once), so
	// only a strictly later one counts.
	return ok && p.DeletionTimestamp == nil && at.After(p.CreationTimestamp.Time) && b.Matches(p)
}

// Key is namespace/name.
func (b *Budget) Key() string { return b.Namespace + "/" + b.Name }

func (b *Budget) String() string { return "PodDisruptionBudget " + b.Key() }

// Matches is the eviction API's rule: same namespace, selector matches the labels
// (policy/v1: an empty selector matches every pod of the namespace).
func (b *Budget) Matches(p *corev1.Pod) bool {
	return p.Namespace == b.Namespace && b.selector.Matches(labels.Set(p.Labels))
}

// NeverAllows reports a budget under which no Ready pod can ever be evicted as the
// workload stands (minAvailable equal to the replicas, maxUnavailable 0): waiting
// cannot help, so the step refuses up front instead of timing out.
func (b *Budget) NeverAllows() bool {
	return b.Synced && b.ExpectedPods > 0 && b.DesiredHealthy >= b.ExpectedPods
}

// State is one line on the budget for messages: what the API would answer.
func (b *Budget) State() string {
	if !b.Synced {
		return "status not yet updated by the disruption controller"
	}
	s := fmt.Sprintf("%d disruption(s) allowed, needs %d healthy, has %d", b.Allowed, b.DesiredHealthy, b.CurrentHealthy)
	if len(b.admitted) > 0 {
		// Evictions admitted and not yet seen deleted count as disruptions for up to
		// two minutes: name them, they are often why nothing is allowed.
		names := make([]string, 0, len(b.admitted))
		for n := range b.admitted {
			names = append(names, n)
		}
		sort.Strings(names)
		s += "; evicting " + textlist.Capped(names, 0)
	}
	return s
}

// Verdict is whether a pod may go now.
type Verdict struct {
	OK bool
	// Consumes: the eviction takes one of the budget's allowed disruptions (the API
	// decrements status.disruptionsAllowed).
	Consumes bool
	// Why the pod must wait, naming what blocks it.
	Why string
}

// admit decides whether a pod the budget covers may go now. ready and ignoresBudget
// describe the pod (see isReady, ignoresBudget).
//
// Evict mirrors the eviction API: a pod that is not Running ignores budgets; a
// not-Ready pod goes without consuming budget under AlwaysAllow, or under
// IfHealthyBudget while currentHealthy >= desiredHealthy > 0; anything else needs
// an allowed disruption the status shows and this step has not already claimed.
// On top of the API's rule, a Ready pod also needs the step's own count of healthy
// pods to stay at or above desiredHealthy after it goes.
//
// Delete has no server-side check, so the same rules are applied from the status
// and the step's own count (not atomic against other actors: evict is the default).
func (b *Budget) admit(ready, ignoresBudget bool) Verdict {
	if ignoresBudget {
		return Verdict{OK: true}
	}
	if !ready {
		if b.AlwaysAllow {
			return Verdict{OK: true}
		}
		if b.Synced && b.CurrentHealthy >= b.DesiredHealthy && b.DesiredHealthy > 0 {
			return Verdict{OK: true}
		}
	}
	if !b.Synced {
		return Verdict{Why: b.String() + ": " + b.State()}
	}
	if b.Allowed-int32(b.Unreflected) <= 0 {
		return Verdict{Why: fmt.Sprintf("%s allows no disruption now (%s)", b, b.State())}
	}
	if ready && b.Healthy-b.Draining-1 < int(b.DesiredHealthy) {
		return Verdict{Why: fmt.Sprintf("%s: %d healthy pod(s) seen, %d needed", b, b.Healthy-b.Draining, b.DesiredHealthy)}
	}
	return Verdict{OK: true, Consumes: true}
}

// ownerAdmit is the budget of an owner no PDB covers: at most maxUnavailable of the
// pods it should have Ready (goal) may be missing at a time. Not-Ready pods cost
// nothing: moving them loses no availability, and it is what keeps a crashlooping
// pod from blocking the rest.
func ownerAdmit(o Owner, goal, readyNow, draining, maxUnavailable int, ready bool) Verdict {
	if !ready {
		return Verdict{OK: true}
	}
	unavailable := max(0, goal-(readyNow-draining))
	if unavailable+1 > maxUnavailable {
		return Verdict{Why: fmt.Sprintf("%s (no PodDisruptionBudget): %d of %d pod(s) unavailable, maxUnavailable %d", o, unavailable, goal, maxUnavailable)}
	}
	return Verdict{OK: true}
}
