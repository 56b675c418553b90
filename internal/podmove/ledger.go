package podmove

import (
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// entry is one pod this invocation evicted, deleted, or is evicting: what the
// budgets, limits and progress must account for until the owner has the pod back.
// The ledger lives in memory only; after a restart, what it tracked is re-observed
// from the cluster (the pods are gone or terminating, their replacements starting).
type entry struct {
	key     string // namespace/name
	uid     types.UID
	node    string
	owner   Owner
	budget  string // PDB key, or ""
	consume bool   // takes one of the budget's allowed disruptions
	ready   bool   // was Ready when it went: its owner must get a Ready pod back
	sent    time.Time
	crit    bool   // backs a webhook or APIService
	ip      string // its address in the old pool
	act     Action
	// admitted: a delete finishing an eviction the API admitted earlier (see
	// Budget.AdmittedEviction).
	admitted bool

	answered bool // the API call returned
	accepted bool // ... and the pod is going
	// reflected: the budget's status accounts for this disruption (its
	// disruptedPods listed the pod, or a fallback delay passed).
	reflected   bool
	terminating bool // the cache shows the pod terminating or gone
	gone        bool // the pod (this UID) no longer exists
	replaced    bool
	replacement string // the replacement's name, when one-to-one (StatefulSet, DaemonSet)
}

// live: the request is out or the pod is going, and nothing has replaced it yet.
func (e *entry) live() bool { return (!e.answered || e.accepted) && !e.replaced }

func (e *entry) critical() bool { return e.crit }

// ledger keeps the entries in send order (replacements of Deployment pods are
// attributed first in, first out).
type ledger struct {
	order []*entry
	// gained counts, per owner, Ready pods in a target pool already attributed to
	// an entry (Deployments and other owners without one-to-one replacements).
	gained map[Owner]int
	// lateReflections counts accepted evictions the budget's status never showed
	// within reflectFallback (a diagnostic: it should stay zero).
	lateReflections int
}

func newLedger() *ledger {
	return &ledger{gained: map[Owner]int{}}
}

func (l *ledger) add(e *entry) { l.order = append(l.order, e) }

// inFlight counts live entries: the global concurrency.
func (l *ledger) inFlight() int {
	n := 0
	for _, e := range l.order {
		if e.live() {
			n++
		}
	}
	return n
}

// perNode counts, per node, entries whose pod is still there: the node's kubelet
// and CNI still have work to do for them.
func (l *ledger) perNode() map[string]int {
	out := map[string]int{}
	for _, e := range l.order {
		if (!e.answered || e.accepted) && !e.gone {
			out[e.node]++
		}
	}
	return out
}

// counts returns how many pods went (accepted) and how many were replaced.
func (l *ledger) counts() (moved, replaced int) {
	for _, e := range l.order {
		if e.accepted {
			moved++
		}
		if e.accepted && e.replaced {
			replaced++
		}
	}
	return moved, replaced
}

// pendingFor lists the live entries of an owner, oldest first.
func (l *ledger) pendingFor(o Owner) []*entry {
	var out []*entry
	for _, e := range l.order {
		if e.owner == o && e.accepted && !e.replaced {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].sent.Before(out[j].sent) })
	return out
}

// awaitingOneToOne lists StatefulSet and DaemonSet pods that went Ready and whose
// own replacement (same name; same node) is not Ready in a target pool yet: the
// step is not done while there is one, whatever the owner's counts say.
func (l *ledger) awaitingOneToOne() []string {
	var out []string
	for _, e := range l.order {
		if e.accepted && e.ready && !e.replaced && oneToOne(e.owner) {
			out = append(out, e.key)
		}
	}
	return out
}
