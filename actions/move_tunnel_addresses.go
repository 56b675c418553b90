package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/textlist"
	"github.com/runbookdev/runbook/internal/tunnelmove"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var moveTunnelAddresses = Definition{
	Decl: &decl.Action{
		Name:    "moveTunnelAddresses",
		Summary: "Move node tunnel addresses out of a pool that no longer serves them, restarting calico-node one node at a time.",
		Description: `Calico v3.28's calico-node moves a node's IPIP/VXLAN/WireGuard address out of a pool when the
pool's disabled flag or encapsulation changes, but not when only its nodeSelector changes (its
tunnel allocator does not watch nodeSelector: node/pkg/allocateip) — and nodeSelector: "!all()" is
how tigera-operator v1.34 disables a pool. Those addresses then stay in the old pool, and
deletePool (rightly) refuses. This step restarts calico-node on each node still holding one: it
deletes that node's calico-node pod (the DaemonSet recreates it; calico-node allocates the tunnel
address at start, before felix runs, and the Node keeps its old address until the new one is
written), waits until the new pod is Ready and the address lies outside the pool, then goes on to
the next node. One node at a time: a calico-node that does not come back stops the step with one
node affected, not all.

Refuses, before restarting anything, when the pool still serves a node's tunnel kind (disable it
first, or calico-node takes the address from it again), when no other pool would give the node an
address of that kind (it would lose its tunnel), or when a node has no Ready calico-node pod.
Satisfied when no node tunnel address is in the pool (or the pool does not exist): on a pool
disabled with spec.disabled, calico-node has already moved them.`,
		Params: []decl.Param{
			poolRole(checked(p("pool", value.String, true, nil, "Name of the IPPool the tunnel addresses must leave."), check.PoolName), decl.PoolMovesTunnelsFrom),
			p("nodeTimeout", value.Duration, false, 3*time.Minute, "How long one node's calico-node may take to come back Ready with its address moved."),
		},
		Outputs: []decl.Output{
			{Name: "restarted", Type: value.Int, Description: "Nodes whose calico-node this step restarted."},
			{Name: "maxGap", Type: value.Duration, Description: "Longest time a node published no tunnel address of a moved kind (watch-measured; 0 when each address was replaced in one write)."},
		},
		Needs: slices.Concat(
			poolPerms([]string{"list"}, "the pool and the pools that take the addresses (internal/calico/crd_live.go)"),
			[]decl.Permission{
				{Resource: "nodes", Verbs: []string{"list", "watch"}, Why: "the nodes' tunnel addresses, watched while calico-node restarts (internal/tunnelmove)"},
				{Resource: "pods", Verbs: []string{"list", "watch", "delete"}, Why: "restart calico-node: delete its pod on one node, watch the replacement (internal/tunnelmove)"},
			}),
	},
	New: func(b *binding) Impl { return &moveTunnelsImpl{env: b.env} },
}

// moveTunnelsImpl restarts calico-node node by node until no tunnel address is
// left in a pool.
type moveTunnelsImpl struct{ env *poolEnv }

// tunnelVerdict is what moveTunnelAddresses found.
type tunnelVerdict struct {
	pool    *calico.Pool // nil: absent
	targets []tunnelmove.Target
	moves   []string               // "node-1: IPIP 192.168.0.1 -> new-pool"
	pods    map[string]*corev1.Pod // calico-node per node
	serving []string               // addresses the pool still serves (plan: an earlier step disables it)
	// problems refuse the step; serving ones are in serving, not here.
	problems []string
	facts    []string
}

type moveTunnelsInput struct {
	pool        string
	nodeTimeout time.Duration
	// allowRemoval: a tunnel kind no other pool serves may go (ensurePool's
	// inverse removing a pool this run created: the nodes end as before the run).
	allowRemoval bool
}

func (a *moveTunnelsImpl) start(c *Call) (moveTunnelsInput, calico.Client, error) {
	var in moveTunnelsInput
	var err error
	if in.pool, err = paramString(c, "pool"); err != nil {
		return in, nil, fmt.Errorf("moveTunnelAddresses: %w", err)
	}
	if in.nodeTimeout, err = paramDuration(c, "nodeTimeout", 3*time.Minute); err != nil {
		return in, nil, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, err)
	}
	cal, err := a.env.client()
	if err != nil {
		return in, nil, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, err)
	}
	if a.env.kube == nil {
		return in, nil, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, ErrNoCluster)
	}
	return in, cal, nil
}

// decide reads pools, nodes and calico-node pods from the API server. resumed
// names nodes an earlier attempt already restarted (their pod may be coming back).
func (a *moveTunnelsImpl) decide(ctx context.Context, cal calico.Client, name string, resumed map[string]string, allowRemoval bool) (tunnelVerdict, error) {
	var v tunnelVerdict
	p, pools, err := livePool(ctx, cal, name)
	if err != nil {
		return v, err
	}
	v.pool = p
	v.facts = append(v.facts, apiFact(cal), poolFact(name, p))
	if p == nil {
		return v, nil
	}
	nodes, err := cal.Live().Nodes(ctx)
	if err != nil {
		return v, fmt.Errorf("read nodes: %w", err)
	}
	held := calico.TunnelAddressesIn(nodes, p.CIDR)
	if len(held) == 0 {
		return v, nil
	}
	if v.pods, err = tunnelmove.CalicoNodePods(ctx, a.env.kube); err != nil {
		return v, err
	}
	others := make([]calico.Pool, 0, len(pools))
	for _, q := range pools {
		if q.Name != name {
			others = append(others, q)
		}
	}
	byNode := map[string]*tunnelmove.Target{}
	var order []string
	for _, t := range held {
		n := nodeNamed(nodes, t.Node)
		what := fmt.Sprintf("node %s's %s tunnel address %s", t.Node, t.Kind, t.IP)
		if servedBy(calico.TunnelPools(n, pools, t.Kind), name) {
			v.serving = append(v.serving, what)
			continue
		}
		to := calico.TunnelPools(n, others, t.Kind)
		if len(to) == 0 && !allowRemoval {
			v.problems = append(v.problems, what+" would be lost: no other enabled pool with matching encapsulation and Tunnel use selects the node")
			continue
		}
		tg := byNode[t.Node]
		if tg == nil {
			tg = &tunnelmove.Target{Node: t.Node, Pool: p.CIDR}
			byNode[t.Node] = tg
			order = append(order, t.Node)
		}
		if len(to) == 0 {
			v.moves = append(v.moves, fmt.Sprintf("%s: %s %s removed (no other pool serves it)", t.Node, t.Kind, t.IP))
			tg.Remove = append(tg.Remove, t.Kind)
			continue
		}
		v.moves = append(v.moves, fmt.Sprintf("%s: %s %s -> %s", t.Node, t.Kind, t.IP, poolNames(to)))
		tg.Kinds = append(tg.Kinds, t.Kind)
	}
	sort.Strings(order)
	var noPod, notReady []string
	for _, node := range order {
		v.targets = append(v.targets, *byNode[node])
		if _, again := resumed[node]; again {
			continue // restarted by an earlier attempt: its pod may still be coming back
		}
		switch pod := v.pods[node]; {
		case pod == nil:
			noPod = append(noPod, node)
		case !kubeclient.PodReady(pod):
			notReady = append(notReady, node+" ("+pod.Namespace+"/"+pod.Name+")")
		}
	}
	if len(noPod) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("no calico-node pod (%s, DaemonSet calico-node in kube-system or calico-system) on node(s) %s: their tunnel addresses cannot be moved by a restart",
			tunnelmove.PodLabel, textlist.Capped(noPod, maxListed)))
	}
	if len(notReady) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("calico-node is not Ready on node(s) %s: make it healthy first (a restart is not a repair)", textlist.Capped(notReady, maxListed)))
	}
	for _, t := range held {
		v.facts = append(v.facts, fmt.Sprintf("node %s %s tunnel: %s", t.Node, t.Kind, t.IP))
	}
	return v, nil
}

func nodeNamed(nodes []calico.Node, name string) *calico.Node {
	for i := range nodes {
		if nodes[i].Name == name {
			return &nodes[i]
		}
	}
	return &calico.Node{Name: name}
}

func servedBy(pools []*calico.Pool, name string) bool {
	for _, p := range pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

func poolNames(pools []*calico.Pool) string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Name
	}
	return textlist.Capped(names, maxListed)
}

func (a *moveTunnelsImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Planned{}, err
	}
	fut, _ := c.Ahead.Touched(in.pool)
	// Disabled by an earlier step but serving now: that disable moves the
	// addresses by itself where calico-node reacts to it, so which nodes this
	// step restarts is known only after apply.
	disabledLater := false
	if fut != nil && fut.DisabledBy != "" {
		live, _, err := livePool(ctx, cal, in.pool)
		if err != nil {
			return Planned{}, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, err)
		}
		disabledLater = live != nil && !disabled(live)
	}
	cal = c.Ahead.Client(cal) // the pools as the earlier steps leave them
	v, err := a.decide(ctx, cal, in.pool, nil, false)
	if err != nil {
		return Planned{}, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, err)
	}
	if len(v.problems) > 0 {
		return Planned{}, refuse("moveTunnelAddresses", in.pool, v.problems)
	}
	switch {
	case v.pool == nil:
		return Planned{Change: plans.None, Details: []string{"pool " + in.pool + " does not exist: no tunnel address to move"}, Facts: v.facts}, nil
	case len(v.serving) > 0:
		// Judged against today's cluster: the step is meant to run after the pool
		// is disabled, which an earlier step may do. Apply refuses if it still serves.
		return Planned{Change: plans.Unknown, Facts: v.facts, Details: []string{
			fmt.Sprintf("pool %s still serves %d tunnel address(es) (%s): once an earlier step disables it, calico-node is restarted on each node still holding one, one node at a time (known after apply; refused if the pool still serves them then)",
				in.pool, len(v.serving), textlist.Capped(v.serving, maxListed))}}, nil
	case len(v.targets) > 0 && disabledLater:
		return Planned{Change: plans.Unknown, Facts: v.facts, Details: []string{fmt.Sprintf(
			"once %s disables pool %s, calico-node moves its tunnel addresses by itself where it reacts to the change (spec.disabled, disableNewAllocations); this step then restarts calico-node one node at a time on each node still holding one (known after apply): %s",
			fut.DisabledBy, in.pool, textlist.Capped(v.moves, maxListed))}}, nil
	case len(v.targets) == 0:
		if fut.MayHoldTunnels() {
			return Planned{Change: plans.Unknown, Facts: v.facts, Details: []string{fmt.Sprintf(
				"no node tunnel address is in pool %s now, but calico-node may move some there after %s (pool %s): those nodes' calico-node is restarted one at a time where the addresses stay (known after apply)",
				in.pool, fut.TunnelsFrom, fut.Why())}}, nil
		}
		return Planned{Change: plans.None, Details: []string{"no node tunnel address is in pool " + in.pool}, Facts: v.facts}, nil
	}
	return Planned{Change: plans.Update, Facts: v.facts, Details: []string{
		fmt.Sprintf("restart calico-node on %d node(s), one at a time (delete its pod, wait until the new one is Ready and the address moved, %s each at most), so their tunnel addresses leave pool %s: %s",
			len(v.targets), in.nodeTimeout, in.pool, textlist.Capped(v.moves, maxListed))},
		Warnings: []string{"each restart briefly stops that node's calico-node (felix, BGP); established pod traffic keeps flowing through the programmed dataplane"}}, nil
}

// cacheCatchUp bounds the wait for the shared cache to show the moves.
const cacheCatchUp = 30 * time.Second

// restartIntent is the journal key under which the UID of the calico-node pod
// deleted on a node is recorded, before the delete.
func restartIntent(node string) string { return "restart/" + node }

func (a *moveTunnelsImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, cal, err := a.start(c)
	if err != nil {
		return Outcome{}, err
	}
	m, err := a.run(ctx, cal, c, in)
	out := Outcome{Changed: m.restarted > 0 || m.deleted, Outputs: map[string]any{"restarted": m.restarted, "maxGap": m.gap}, Message: m.message}
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return Outcome{}, err
		}
		return out, fmt.Errorf("moveTunnelAddresses %q: %w", in.pool, err)
	}
	return out, nil
}

// tunnelMoves is what restarting calico-node node by node did.
type tunnelMoves struct {
	restarted int
	deleted   bool // a pod was deleted (also by an attempt that then failed)
	gap       time.Duration
	message   string
}

// run restarts calico-node on each node holding a tunnel address in the pool, one
// node at a time, after refusing (ErrRefused, nothing restarted) what a restart
// cannot fix. Also the way ensurePool's inverse empties a pool it disabled by
// nodeSelector.
func (a *moveTunnelsImpl) run(ctx context.Context, cal calico.Client, c *Call, in moveTunnelsInput) (tunnelMoves, error) {
	var m tunnelMoves
	resumed := map[string]string{}
	for k, uid := range c.Prior.Intent {
		if node, ok := strings.CutPrefix(k, "restart/"); ok {
			resumed[node] = uid
		}
	}
	v, err := a.decide(ctx, cal, in.pool, resumed, in.allowRemoval)
	if err != nil {
		return m, err
	}
	if len(v.serving) > 0 {
		v.problems = append(v.problems, fmt.Sprintf("pool %s still serves %s: disable it first (disablePool), or calico-node takes the address from it again", in.pool, textlist.Capped(v.serving, maxListed)))
	}
	if len(v.problems) > 0 {
		return m, refuse("moveTunnelAddresses", in.pool, v.problems)
	}
	if v.pool == nil || len(v.targets) == 0 {
		m.message = "no node tunnel address is in pool " + in.pool
		return m, nil
	}
	var lines []string
	for i, t := range v.targets {
		if i > 0 && !c.Deadline.IsZero() && time.Now().After(c.Deadline) {
			return m, fmt.Errorf("%w after %d of %d node(s)", ErrDeadline, i, len(v.targets))
		}
		pod := v.pods[t.Node]
		var old types.UID
		if pod != nil {
			old = pod.UID
		}
		if uid, again := resumed[t.Node]; again && (pod == nil || string(pod.UID) != uid) {
			pod, old = nil, types.UID(uid) // deleted by the earlier attempt: wait for its replacement
		}
		res, err := tunnelmove.Restart(ctx, a.env.kube, t, pod, old, in.nodeTimeout, func() error {
			m.deleted = true
			return c.Recorder.Intent(ctx, restartIntent(t.Node), string(old))
		})
		if err != nil {
			return m, fmt.Errorf("%w (%d of %d node(s) done)", err, i, len(v.targets))
		}
		if res.Skipped {
			lines = append(lines, "node "+t.Node+": already moved")
			continue
		}
		m.restarted++
		m.gap = max(m.gap, res.MaxGap)
		lines = append(lines, res.String())
	}
	m.message = fmt.Sprintf("restarted calico-node on %d node(s), one at a time; tunnel addresses left pool %s: %s", m.restarted, in.pool, textlist.Capped(lines, maxListed))
	// The step's guards (assert: tunnelAddresses(...)) read the shared cache,
	// which may not have seen the last node's update yet (seen on the operator
	// flavour: the assert failed while the restarts had moved every address).
	// Return once it has, so a guard judges what this step did.
	wctx, cancel := context.WithTimeout(ctx, cacheCatchUp)
	defer cancel()
	if err := cal.Await(wctx, func(r calico.Reader) (bool, error) {
		nodes, err := r.Nodes(wctx)
		if err != nil {
			return false, nil
		}
		return len(calico.TunnelAddressesIn(nodes, v.pool.CIDR)) == 0, nil
	}); err != nil && ctx.Err() == nil {
		return m, fmt.Errorf("the nodes' tunnel addresses left pool %s, but the watch cache did not show it within %s: %w", in.pool, cacheCatchUp, err)
	}
	return m, nil
}
