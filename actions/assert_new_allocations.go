package actions

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/textlist"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

var assertNewAllocations = Definition{
	Decl: &decl.Action{
		Name:    "assertNewAllocations",
		Summary: "Prove that new pods get addresses from the given pool, with temporary test pods.",
		Description: `Creates a temporary namespace labelled with the run id, one pod pinned to each selected node
(capped at maxNodes and sampled across zones on big clusters), waits for them to be Running and
asserts each IP lies in the pool. The namespace is always deleted (a cleanup hook that also runs
on failure, interrupt, and on resume after a crash). A check: it verifies again on every run and
changes nothing lasting.`,
		Params: []decl.Param{
			poolRole(checked(p("pool", value.String, true, nil, "Pool the new addresses must come from."), check.PoolName), decl.PoolVerifies),
			checked(p("namespace", value.String, false, "ippool-test", "Name of the temporary namespace (must not exist unless this run created it)."), check.NamespaceName),
			p("image", value.String, false, "registry.k8s.io/pause:3.10", "Image of the test pods."),
			checked(p("maxNodes", value.Int, false, 20, "Test at most this many nodes."), check.AtLeast(1)),
			p("nodeSelector", value.Map, false, nil, "Only test nodes with these labels."),
			p("tolerations", value.List, false, nil, "Tolerations of the test pods."),
			p("imagePullSecrets", value.List, false, nil, "Names of image pull secrets for the test pods."),
			p("securityContext", value.Map, false, nil, "Pod securityContext of the test pods."),
			p("timeout", value.Duration, false, 5*time.Minute, "Give up (and fail the step) after this long."),
		},
		Outputs: []decl.Output{
			{Name: "ips", Type: value.List, Description: "Addresses the test pods received."},
			{Name: "nodes", Type: value.List, Description: "Names of the nodes tested (one test pod each)."},
		},
		Needs: []decl.Permission{
			{Resource: "namespaces", Verbs: []string{"get", "list", "watch", "create", "delete"}, Why: "the verification namespace, created and deleted (actions/probe_namespace.go)"},
			{Resource: "pods", Verbs: []string{"get", "create"}, Why: "the test pods (actions/assert_new_allocations.go, probe_wait.go)"},
			{Resource: "events", Verbs: []string{"list"}, Why: "why a test pod did not start (actions/probe_wait.go)"},
		},
	},
	New: func(b *binding) Impl { return &assertNewAllocationsImpl{env: b.env} },
}

// probeInput is assertNewAllocations' parameters, decoded.
type probeInput struct {
	pool            string
	namespace       string
	image           string
	maxNodes        int
	nodeLabels      map[string]string
	tolerations     []corev1.Toleration
	pullSecrets     []corev1.LocalObjectReference
	securityContext *corev1.PodSecurityContext
	timeout         time.Duration
}

func probeInputFrom(c *Call) (probeInput, error) {
	in := probeInput{maxNodes: 20}
	var err error
	if in.pool, err = paramString(c, "pool"); err != nil {
		return in, err
	}
	if in.namespace, err = paramString(c, "namespace"); err != nil {
		return in, err
	}
	if in.image, err = paramString(c, "image"); err != nil {
		return in, err
	}
	if n, ok, err := paramInt(c, "maxNodes"); err != nil {
		return in, err
	} else if ok {
		if n < 1 {
			return in, fmt.Errorf("parameter maxNodes: must be at least 1, got %d", n)
		}
		in.maxNodes = n
	}
	if _, err := paramStrict(c, "nodeSelector", &in.nodeLabels); err != nil {
		return in, err
	}
	if _, err := paramStrict(c, "tolerations", &in.tolerations); err != nil {
		return in, err
	}
	var sc corev1.PodSecurityContext
	if ok, err := paramStrict(c, "securityContext", &sc); err != nil {
		return in, err
	} else if ok {
		in.securityContext = &sc
	}
	if secrets, ok := c.With["imagePullSecrets"].([]any); ok {
		for _, s := range secrets {
			switch v := s.(type) {
			case string:
				in.pullSecrets = append(in.pullSecrets, corev1.LocalObjectReference{Name: v})
			case map[string]any:
				name, _ := v["name"].(string)
				if name == "" || len(v) != 1 {
					return in, fmt.Errorf("parameter imagePullSecrets: expected a name or {name: ...}, got %v", v)
				}
				in.pullSecrets = append(in.pullSecrets, corev1.LocalObjectReference{Name: name})
			default:
				return in, fmt.Errorf("parameter imagePullSecrets: expected a name or {name: ...}, got %T", s)
			}
		}
	}
	if in.timeout, err = paramDuration(c, "timeout", 5*time.Minute); err != nil {
		return in, err
	}
	return in, nil
}

// assertNewAllocationsImpl proves, with temporary pods, that new pods get
// addresses from a pool.
type assertNewAllocationsImpl struct{ env *poolEnv }

// probePlan is the pool and nodes a verification would use.
type probePlan struct {
	pool    *calico.Pool
	nodes   []calico.Node
	skipped []string
}

func (a *assertNewAllocationsImpl) prepare(ctx context.Context, c *Call) (probeInput, probePlan, error) {
	var pp probePlan
	in, err := probeInputFrom(c)
	if err != nil {
		return in, pp, fmt.Errorf("assertNewAllocations: %w", err)
	}
	cal, err := a.env.client()
	if err != nil {
		return in, pp, fmt.Errorf("assertNewAllocations %q: %w", in.pool, err)
	}
	p, _, err := livePool(ctx, c.Ahead.Client(cal), in.pool) // plan: the pool as the earlier steps leave it
	if err != nil {
		return in, pp, fmt.Errorf("assertNewAllocations %q: %w", in.pool, err)
	}
	switch {
	case p == nil:
		return in, pp, fmt.Errorf("assertNewAllocations %q: the pool does not exist", in.pool)
	case !p.Enabled():
		return in, pp, fmt.Errorf("assertNewAllocations %q: the pool is disabled: new pods cannot get addresses from it", in.pool)
	case !p.Allows(v3.IPPoolAllowedUseWorkload):
		return in, pp, fmt.Errorf("assertNewAllocations %q: the pool does not allow Workload use", in.pool)
	}
	nodes, err := cal.Live().Nodes(ctx)
	if err != nil {
		return in, pp, fmt.Errorf("assertNewAllocations %q: read nodes: %w", in.pool, err)
	}
	pp.pool = p
	pp.nodes, pp.skipped = pickNodes(nodes, p, in.nodeLabels, in.tolerations, in.maxNodes)
	if len(pp.nodes) == 0 {
		return in, pp, fmt.Errorf("assertNewAllocations %q: no node to test on: %s", in.pool, textlist.Capped(pp.skipped, maxListed))
	}
	return in, pp, nil
}

func (a *assertNewAllocationsImpl) Plan(ctx context.Context, c *Call) (Planned, error) {
	in, pp, err := a.prepare(ctx, c)
	if err != nil {
		return Planned{}, err
	}
	names := make([]string, len(pp.nodes))
	for i, n := range pp.nodes {
		names[i] = n.Name
	}
	out := Planned{Change: plans.Check, Facts: []string{poolFact(in.pool, pp.pool)}, Details: []string{
		fmt.Sprintf("create namespace %s with a test pod on each of %d node(s) (%s), assert their addresses lie in pool %s (%s), delete the namespace",
			in.namespace, len(names), textlist.Capped(names, maxListed), in.pool, pp.pool.CIDR)}}
	if fut, _ := c.Ahead.Touched(in.pool); fut.Why() != "" {
		out.Details[0] += " (pool " + fut.Why() + ")"
	}
	if len(pp.skipped) > 0 {
		out.Details = append(out.Details, "not tested: "+textlist.Capped(pp.skipped, maxListed))
	}
	ns, err := a.env.kube.CoreV1().Namespaces().Get(ctx, in.namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return Planned{}, fmt.Errorf("assertNewAllocations %q: get namespace %s: %w", in.pool, in.namespace, err)
	case ns.Labels[calico.LabelManagedBy] == "runbook" && ns.Labels[calico.LabelRunID] != "":
		out.Warnings = append(out.Warnings, fmt.Sprintf("namespace %s is left over from run %s: used only if it is that run, else waited out when terminating", in.namespace, ns.Labels[calico.LabelRunID]))
	default:
		return Planned{}, fmt.Errorf("assertNewAllocations %q %w: namespace %s exists and was not created by runbook: choose another namespace", in.pool, ErrRefused, in.namespace)
	}
	return out, nil
}

// Apply creates the namespace and one pod per selected node, waits for them to
// run, and asserts every address of the pool's family lies in the pool. It
// changes nothing lasting (Cleanup deletes the namespace), so it reports no change.
func (a *assertNewAllocationsImpl) Apply(ctx context.Context, c *Call) (Outcome, error) {
	in, pp, err := a.prepare(ctx, c)
	if err != nil {
		return Outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	fail := func(err error) (Outcome, error) {
		return Outcome{}, fmt.Errorf("assertNewAllocations %q: %w", in.pool, err)
	}
	if err := ensureProbeNamespace(ctx, a.env.kube, c, in.namespace); err != nil {
		return fail(err)
	}
	var expected []string
	for _, n := range pp.nodes {
		pod := probePod(in, c.RunID, n.Name)
		expected = append(expected, pod.Name)
		_, err := a.env.kube.CoreV1().Pods(in.namespace).Create(ctx, pod, metav1.CreateOptions{FieldManager: "runbook"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fail(fmt.Errorf("create test pod for node %s: %w", n.Name, err))
		}
	}
	pods, err := waitProbePods(ctx, a.env.kube, in.namespace, c.RunID, expected)
	if err != nil {
		return fail(err)
	}
	ips, problems := checkProbeAddresses(pp.pool, expected, pods)
	if len(problems) > 0 {
		return fail(fmt.Errorf("new pods do not get addresses from pool %s (%s): %s", in.pool, pp.pool.CIDR, textlist.Capped(problems, maxListed)))
	}
	out := make([]any, len(ips))
	for i, ip := range ips {
		out[i] = ip
	}
	nodes := make([]any, len(pp.nodes))
	for i, n := range pp.nodes {
		nodes[i] = n.Name
	}
	return Outcome{Outputs: map[string]any{"ips": out, "nodes": nodes},
		Message: fmt.Sprintf("%d test pod(s) on %d node(s) got addresses in pool %s (%s): %s", len(pods), len(pp.nodes), in.pool, pp.pool.CIDR, textlist.Capped(ips, maxListed))}, nil
}

// checkProbeAddresses returns the test pods' addresses of the pool's family and the
// pods whose address lies outside the pool (or who got none of that family).
func checkProbeAddresses(pool *calico.Pool, expected []string, pods map[string]*corev1.Pod) (ips, problems []string) {
	for _, name := range expected {
		p := pods[name]
		var mine []string
		for _, pip := range p.Status.PodIPs {
			ip, err := netip.ParseAddr(pip.IP)
			if err != nil || calico.AddrFamily(ip) != pool.Family() {
				continue
			}
			ip = ip.Unmap()
			mine = append(mine, ip.String())
			if !pool.CIDR.Contains(ip) {
				problems = append(problems, fmt.Sprintf("pod %s on node %s got %s", name, p.Spec.NodeName, ip))
			}
		}
		if len(mine) == 0 {
			problems = append(problems, fmt.Sprintf("pod %s on node %s got no IPv%d address", name, p.Spec.NodeName, pool.Family()))
		}
		ips = append(ips, mine...)
	}
	return ips, problems
}

// Cleanup deletes the temporary namespace if this run created it: after success,
// failure or interrupt, and on resume after a crash (the journal's intent names the
// namespace even when the step never finished).
func (a *assertNewAllocationsImpl) Cleanup(ctx context.Context, c *Call) error {
	name := c.Prior.Intent["namespace"]
	if name == "" {
		return nil // this run never created one
	}
	if a.env.kube == nil {
		return fmt.Errorf("assertNewAllocations cleanup: %w", ErrNoCluster)
	}
	if _, err := deleteProbeNamespace(ctx, a.env.kube, c.RunID, name); err != nil {
		return fmt.Errorf("assertNewAllocations cleanup: %w", err)
	}
	return nil
}
