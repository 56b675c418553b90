package podmove

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Plan is what the step would do, observed read-only.
type Plan struct {
	Total   int         // pods to move
	Groups  []GroupPlan // per namespace and owner
	Blocked []string    // budgets that allow no disruption right now
	Refused []string    // problems that make the step refuse
	Skipped []string
	Waiting []string // terminating pods and Job pods the step waits for
	Flags   []string // single-replica owners, pods moved first
	Warns   []string
}

// GroupPlan is the pods of one owner (or the bare pods of one namespace).
type GroupPlan struct {
	Namespace string
	Owner     string
	Pods      int
	Action    Action
	Budget    string // the PDB, or "maxUnavailable N" without one
}

func (g GroupPlan) String() string {
	return fmt.Sprintf("%s: %d pod(s) by %s (%s)", g.Owner, g.Pods, g.Action, g.Budget)
}

// MakePlan observes what Run would do, without changing anything.
func MakePlan(ctx context.Context, kube kubernetes.Interface, c *Cache, cfg Config) (*Plan, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	crit, warnings, err := discoverCritical(ctx, kube, cfg.Dynamic)
	if err != nil {
		return nil, err
	}
	if cfg.Since.IsZero() {
		cfg.Since = time.Now()
	}
	w := observe(c, cfg.setup(crit), newMemory(), time.Now())
	p := &Plan{Total: len(w.cands), Refused: w.refused.Problems(maxListed), Skipped: w.skipped, Warns: warnings}
	restarts := p.group(w, cfg.MaxUnavailable)
	p.Flags = append(p.Flags, singleReplicaFlags(w)...)
	sort.Strings(p.Flags)
	for _, wt := range w.waits {
		p.Waiting = append(p.Waiting, wt.key+": "+wt.why)
	}
	sort.Strings(p.Waiting)
	if restarts {
		p.Warns = append(p.Warns, "rollout restarts bypass PodDisruptionBudgets (the owner's rolling update decides) and change the pod template (kubectl.kubernetes.io/restartedAt, runbook.dev/restarted-by): GitOps tools show them as drift")
	}
	return p, nil
}

// group sorts the candidates into one GroupPlan per owner and action, lists
// the budgets that admit no disruption now, and flags the pods that back
// critical services. It reports whether any group moves by rollout restart.
func (p *Plan) group(w *world, maxUnavailable int) (restarts bool) {
	groups := map[string]*GroupPlan{}
	blocked := map[*Budget]int{}
	for _, cd := range w.cands {
		name, key := "bare pods in "+cd.pod.Namespace, cd.pod.Namespace+"/"
		if !cd.owner.IsZero() {
			name, key = cd.owner.String(), cd.owner.String()
		}
		key += "/" + string(cd.action)
		g := groups[key]
		if g == nil {
			g = &GroupPlan{Namespace: cd.pod.Namespace, Owner: name, Action: cd.action, Budget: fmt.Sprintf("no PodDisruptionBudget: maxUnavailable %d", maxUnavailable)}
			if cd.budget != nil {
				g.Budget = cd.budget.String()
			}
			if cd.action == ActRestart {
				g.Budget = "rollout restart: the owner's own rolling update"
			}
			groups[key] = g
		}
		g.Pods++
		restarts = restarts || cd.action == ActRestart
		if cd.budget != nil && cd.action != ActRestart && !cd.budget.admit(true, false).OK {
			blocked[cd.budget]++
		}
		if cd.critical != "" {
			p.Flags = append(p.Flags, fmt.Sprintf("%s backs %s: moved first, one at a time, Ready before the next", cd.key, cd.critical))
		}
	}
	for _, g := range groups {
		p.Groups = append(p.Groups, *g)
	}
	sort.Slice(p.Groups, func(i, j int) bool {
		if p.Groups[i].Namespace != p.Groups[j].Namespace {
			return p.Groups[i].Namespace < p.Groups[j].Namespace
		}
		return p.Groups[i].Owner < p.Groups[j].Owner
	})
	for b, n := range blocked {
		p.Blocked = append(p.Blocked, fmt.Sprintf("%s allows no disruption now (%s): %d pod(s) wait for it", b, b.State(), n))
	}
	sort.Strings(p.Blocked)
	return restarts
}

// singleReplicaFlags says, for each single-replica owner with pods to move,
// whether it surges (rollout restart) or is briefly unavailable.
func singleReplicaFlags(w *world) []string {
	var flags []string
	for _, os := range w.owners {
		if os.desired != 1 || os.inOld == 0 || os.Kind == KindDaemonSet {
			continue
		}
		surge := false
		for _, cd := range w.restarts[os.Owner] {
			surge = surge || cd.action == ActRestart
		}
		if surge {
			flags = append(flags, fmt.Sprintf("%s has a single replica: moved by a rollout restart (the new pod is Ready before the old one goes)", os.Owner))
		} else {
			flags = append(flags, fmt.Sprintf("%s has a single replica: unavailable while its pod restarts (singleReplica: rolloutRestart surges instead, for Deployments)", os.Owner))
		}
	}
	return flags
}
