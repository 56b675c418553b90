package podmove

import (
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// podMemo is what observe derives from one version of a pod.
type podMemo struct {
	rv      string
	gen     uint64 // budgetsGeneration the matches were computed against
	round   uint64 // last round the pod was seen, for pruning
	place   Placement
	owner   Owner
	managed bool
	covers  []string // keys of the budgets whose selector matches the pod
}

// analyse returns the pod's placement, owner and budgets, computed again only when
// the pod or the set of budgets changed. An unresolved owner is not remembered:
// its controller may just not be in the cache yet.
func (m *memory) analyse(p *corev1.Pod, st Workloads, s *setup, byNS map[string][]*Budget, gen uint64) *podMemo {
	pm := m.pods[p.UID]
	if pm == nil || pm.rv != p.ResourceVersion || p.ResourceVersion == "" || !pm.managed {
		owner, managed := ownerOf(p, st)
		pm = &podMemo{rv: p.ResourceVersion, place: placementOf(p, s.pool, s.targets), owner: owner, managed: managed}
		m.pods[p.UID] = pm
		pm.gen = gen + 1 // force matching below
	}
	if pm.gen != gen {
		pm.covers = pm.covers[:0]
		for _, b := range byNS[p.Namespace] {
			if b.Matches(p) {
				pm.covers = append(pm.covers, b.Key())
			}
		}
		pm.gen = gen
	}
	pm.round = m.round
	return pm
}

// prune starts a round and forgets pods not seen in the previous one, when the
// memo has grown well past the number of pods.
func (m *memory) prune(pods int) {
	m.round++
	if len(m.pods) <= 2*pods+64 {
		return
	}
	for uid, pm := range m.pods {
		if pm.round+1 < m.round {
			delete(m.pods, uid)
		}
	}
}

// budgetsGeneration fingerprints the budgets' identities and specs (not their
// status): matches are computed again only when a budget appears, goes, or
// changes its selector. The sum of per-budget hashes does not depend on order.
func budgetsGeneration(bs map[string]*Budget) uint64 {
	var sum uint64
	for k, b := range bs {
		h := fnv.New64a()
		_, _ = h.Write([]byte(k + "/" + string(b.uid) + "/" + strconv.FormatInt(b.generation, 10)))
		sum += h.Sum64()
	}
	return sum + uint64(len(bs))
}
