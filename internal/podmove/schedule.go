package podmove

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// choice is a pod pick lets go, and whether it takes an allowed disruption.
type choice struct {
	c        *candidate
	consumes bool
}

// limits bound how much moves at once.
type limits struct {
	global  int // pods in flight cluster-wide (evicted, not yet back)
	perNode int // pods leaving or arriving on one node at once
	// maxUnavailable is the per-owner budget of owners no PDB covers.
	maxUnavailable int
}

// load is what is already in flight.
type load struct {
	inFlight     int
	perNode      map[string]int
	criticalBusy bool            // a critical pod is moving and not yet back
	cooling      map[string]bool // budgets that answered 429 since their last status change
	parked       map[string]bool // pods not to try again now (namespace terminating, backing off)
	// going: pods whose eviction is out, or accepted while the cache does not show
	// them terminating yet. Never sent twice.
	going map[types.UID]bool
}

// pick chooses, in order, the pods that may go now, and groups the others by what
// they wait for. It charges each pick to the budgets and counters it passes, so one
// round never over-commits a budget. Pods of owners being restarted are not its
// business (see restartsDue).
//
// Order: pods backing webhooks and APIServices first and alone, one at a time; then
// pods that are not Ready (they cost no budget); then by rank, which interleaves
// owners so that all of them advance together.
func pick(w *world, lim limits, ld load) (out []choice, waits map[string][]string) {
	waits = map[string][]string{}
	cs, critical := pickOrder(w.cands, ld.perNode)
	perNode := map[string]int{}
	for n, k := range ld.perNode {
		perNode[n] = k
	}
	inFlight := ld.inFlight
	for i, c := range cs {
		wait := func(why string) { waits[why] = append(waits[why], c.key) }
		if (critical || ld.criticalBusy) && c.critical == "" {
			wait("pods backing webhooks and APIServices move first")
			continue
		}
		if c.critical != "" && (ld.criticalBusy || len(out) > 0) {
			wait("one pod backing " + c.critical + " at a time, Ready before the next")
			continue
		}
		if inFlight >= lim.global {
			why := fmt.Sprintf("concurrency limit (%d in flight)", lim.global)
			for _, rest := range cs[i:] {
				waits[why] = append(waits[why], rest.key)
			}
			break
		}
		if ld.going[c.pod.UID] {
			continue // already counted in flight
		}
		if ld.parked[c.key] {
			wait("retrying later")
			continue
		}
		node := c.pod.Spec.NodeName
		if perNode[node] >= lim.perNode {
			wait(fmt.Sprintf("node %s: %d pods leaving or arriving (perNodeConcurrency)", node, lim.perNode))
			continue
		}
		v := admission(c, lim, ld)
		if !v.OK {
			wait(v.Why)
			continue
		}
		out = append(out, choice{c: c, consumes: v.Consumes})
		inFlight++
		perNode[node]++
		c.chargePick(v.Consumes)
	}
	return out, waits
}

// pickOrder is the candidates pick weighs, in the order it weighs them (see pick),
// and whether any backs a webhook or APIService: then nothing else may go.
func pickOrder(cands []*candidate, busy map[string]int) (cs []*candidate, critical bool) {
	cs = make([]*candidate, 0, len(cands))
	for _, c := range cands {
		if c.action == ActRestart {
			continue
		}
		cs = append(cs, c)
		critical = critical || c.critical != ""
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if (a.critical != "") != (b.critical != "") {
			return a.critical != ""
		}
		if a.ready != b.ready {
			return !a.ready
		}
		return a.rank < b.rank
	})
	return spreadOverNodes(cs, busy), critical
}

// admission is whether the candidate's budget lets it go now: its PDB, or its
// owner's maxUnavailable when no PDB covers it.
func admission(c *candidate, lim limits, ld load) Verdict {
	switch {
	case c.admitted:
		return Verdict{OK: true} // its disruption is granted and counted already
	case c.budget != nil && ld.cooling[c.budget.Key()]:
		return Verdict{Why: c.budget.String() + " refused an eviction (429): waiting for its status to change"}
	case c.budget != nil:
		return c.budget.admit(c.ready, c.ignores)
	case c.os != nil:
		return ownerAdmit(c.owner, c.os.goal, c.os.readyNow, c.os.draining, lim.maxUnavailable, c.ready && !c.ignores)
	default:
		return Verdict{OK: true}
	}
}

// chargePick counts a picked pod against its budget and its owner, so the rest of
// the round sees the disruption before any status shows it.
func (c *candidate) chargePick(consumes bool) {
	if c.budget != nil {
		if consumes {
			c.budget.Unreflected++
		}
		if c.ready {
			c.budget.Draining++
		}
	}
	if c.os != nil && c.ready {
		c.os.draining++
	}
}

// spreadOverNodes reorders each tier of equally urgent candidates (same
// criticality, readiness and rank) so that consecutive picks leave different
// nodes, least busy first. Each node's kubelet and CNI tear pods down one at a
// time, and a replacement usually lands where its predecessor left: spreading
// keeps every node's queue short and none idle, which is what the migration's
// pace depends on once budgets allow many pods at once.
func spreadOverNodes(cs []*candidate, busy map[string]int) []*candidate {
	out := make([]*candidate, 0, len(cs))
	for start := 0; start < len(cs); {
		end := start + 1
		for end < len(cs) && sameTier(cs[start], cs[end]) {
			end++
		}
		out = append(out, roundRobin(cs[start:end], busy)...)
		start = end
	}
	return out
}

func sameTier(a, b *candidate) bool {
	return (a.critical != "") == (b.critical != "") && a.ready == b.ready && a.rank == b.rank
}

// roundRobin takes one candidate per node in turn, nodes ordered by how busy they
// are, then by name; within a node, candidates keep their order.
func roundRobin(tier []*candidate, busy map[string]int) []*candidate {
	if len(tier) < 2 {
		return tier
	}
	byNode := map[string][]*candidate{}
	var nodes []string
	for _, c := range tier {
		n := c.pod.Spec.NodeName
		if byNode[n] == nil {
			nodes = append(nodes, n)
		}
		byNode[n] = append(byNode[n], c)
	}
	sort.Slice(nodes, func(i, j int) bool {
		if busy[nodes[i]] != busy[nodes[j]] {
			return busy[nodes[i]] < busy[nodes[j]]
		}
		return nodes[i] < nodes[j]
	})
	out := make([]*candidate, 0, len(tier))
	for len(out) < len(tier) {
		for _, n := range nodes {
			if q := byNode[n]; len(q) > 0 {
				out = append(out, q[0])
				byNode[n] = q[1:]
			}
		}
	}
	return out
}

// blockedOnBudget counts the waiting pods a PodDisruptionBudget holds back, for
// progress reports.
func blockedOnBudget(waits map[string][]string) int {
	n := 0
	for why, pods := range waits {
		if strings.Contains(why, "PodDisruptionBudget") {
			n += len(pods)
		}
	}
	return n
}
