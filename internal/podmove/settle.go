package podmove

import (
	"time"

	"github.com/runbookdev/runbook/internal/kubeclient"
)

// reflectFallback bounds how long an accepted eviction is assumed to be missing
// from its budget's status. The status normally shows it within milliseconds (the
// eviction itself writes disruptedPods); the fallback only covers a watch that
// skipped that version (a relist), so a lost event costs a short wait, not a
// budget slot forever.
const reflectFallback = 10 * time.Second

// budgetEvents is what the PDB informer saw: for each budget, when a pod name
// appeared in status.disruptedPods, and when the status last changed. Events, not
// the current state, because the disruption controller removes a name again as soon
// as it sees the pod terminating, often before the step looks.
type budgetEvents interface {
	disruptedSince(budget, pod string, since time.Time) bool
	changedSince(budget string, since time.Time) bool
}

// settle brings the ledger up to date with an observation: which pods are gone,
// which disruptions the budgets' status shows, which pods are back. It then charges
// the live entries to the budgets and owners of the world (Unreflected, Draining),
// so that pick sees what is already committed.
func settle(l *ledger, w *world, mem *memory, ev budgetEvents, strategy Action) (replaced []*entry) {
	for _, e := range l.order {
		ps := w.pods[e.uid]
		if ps == nil {
			e.gone, e.terminating = true, true
		} else if isTerminating(ps.pod) {
			e.terminating = true
		}
		if !e.accepted || e.reflected {
			continue
		}
		switch {
		case !e.consume || e.budget == "":
			e.reflected = true
		case ev.disruptedSince(e.budget, podName(e.key), e.sent):
			e.reflected = true
		case strategy == ActDelete && e.terminating && ev.changedSince(e.budget, e.sent):
			e.reflected = true
		case w.now.Sub(e.sent) > reflectFallback:
			e.reflected = true
			l.lateReflections++
		}
	}
	replaced = append(replaced, settleOneToOne(l, w)...)
	replaced = append(replaced, settleByGain(l, w, mem)...)
	charge(l, w)
	return replaced
}

// settleOneToOne finds the replacements of StatefulSet pods (same name, new UID) and
// DaemonSet pods (same owner and node, new UID): Ready and in a target pool. A pod
// that was not Ready when it went is done once it is gone: nothing Ready is owed
// for it.
func settleOneToOne(l *ledger, w *world) (out []*entry) {
	var byNode map[ownerNode][]*podState // built when first needed
	claimed := map[string]bool{}
	for _, e := range l.order {
		if e.replaced && e.replacement != "" {
			claimed[e.replacement] = true
		}
	}
	for _, e := range l.order {
		if !e.accepted || e.replaced {
			continue
		}
		if !e.ready {
			if e.gone {
				e.replaced = true
				out = append(out, e)
			}
			continue
		}
		switch e.owner.Kind {
		case KindStatefulSet:
			if ps := w.byKey[e.key]; ps != nil && ps.pod.UID != e.uid && back(ps) {
				e.replaced, e.replacement = true, e.key
				out = append(out, e)
			}
		case KindDaemonSet:
			if byNode == nil {
				byNode = daemonPodsByNode(w)
			}
			for _, ps := range byNode[ownerNode{e.owner, e.node}] {
				k := podKey(ps.pod)
				if ps.pod.UID != e.uid && !claimed[k] && back(ps) {
					e.replaced, e.replacement = true, k
					claimed[k] = true
					out = append(out, e)
					break
				}
			}
		}
	}
	return out
}

// settleByGain attributes an owner's new Ready pods in the target pools to its
// evicted pods, oldest first: a Deployment has no one-to-one replacement, only a
// count. An owner that is fully back settles everything it owes.
func settleByGain(l *ledger, w *world, mem *memory) (out []*entry) {
	for o, os := range w.owners {
		if oneToOne(o) {
			continue // settled pod by pod (settleOneToOne), never by count
		}
		var pending []*entry
		for _, e := range l.pendingFor(o) {
			if e.ready { // the others settle when they are gone (settleOneToOne)
				pending = append(pending, e)
			}
		}
		if len(pending) == 0 {
			continue
		}
		n := os.readyOK - mem.owners[o].readyOK - l.gained[o]
		if os.satisfied() {
			n = len(pending)
		}
		for _, e := range pending[:min(max(n, 0), len(pending))] {
			l.gained[o]++
			e.replaced = true
			out = append(out, e)
		}
	}
	return out
}

// back: a replacement that counts — Ready, not terminating, in a target pool.
func back(ps *podState) bool {
	return kubeclient.PodReady(ps.pod) && !isTerminating(ps.pod) && ps.place == InTarget
}

// charge records the live entries against the world's budgets and owners.
func charge(l *ledger, w *world) {
	for _, e := range l.order {
		if e.answered && !e.accepted {
			continue
		}
		ps := w.pods[e.uid]
		stillHealthy := ps != nil && kubeclient.PodReady(ps.pod) && !isTerminating(ps.pod)
		if b := w.budgets[e.budget]; b != nil {
			if e.consume && !e.reflected {
				b.Unreflected++
			}
			if stillHealthy {
				b.Draining++
			}
		}
		if os := w.owners[e.owner]; os != nil && stillHealthy {
			os.draining++
		}
	}
}

func podName(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

type ownerNode struct {
	owner Owner
	node  string
}

// daemonPodsByNode indexes DaemonSet pods by owner and node.
func daemonPodsByNode(w *world) map[ownerNode][]*podState {
	out := map[ownerNode][]*podState{}
	for _, ps := range w.pods {
		if ps.owner.Kind == KindDaemonSet {
			k := ownerNode{ps.owner, ps.pod.Spec.NodeName}
			out[k] = append(out[k], ps)
		}
	}
	return out
}

// oneToOne: owners whose pods each have a replacement of their own.
func oneToOne(o Owner) bool { return o.Kind == KindStatefulSet || o.Kind == KindDaemonSet }
