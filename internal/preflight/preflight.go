package preflight

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/poolsahead"
)

// Severity says what a finding does to the run.
type Severity string

const (
	// Block refuses plan and apply: nothing is changed.
	Block Severity = "block"
	// Warn is shown and recorded; the run goes ahead.
	Warn Severity = "warn"
	// Info is a report (counts, what was checked).
	Info Severity = "info"
)

// Finding is one result of a check.
type Finding struct {
	// ID names the check (and the kind of finding), stable for scripts: e.g.
	// "coverage", "pins.namespace".
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Step is the step the finding is about, when it is about one.
	Step string `json:"step,omitempty"`
	// Subject is the object (and field) the finding is about, e.g.
	// "NetworkPolicy shop/allow-old spec.ingress[0].from[0].ipBlock.cidr".
	Subject string `json:"subject,omitempty"`
	Message string `json:"message"`
	// Fix says what to do about it.
	Fix string `json:"fix,omitempty"`
}

func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.ID)
	if f.Subject != "" {
		b.WriteString(" (" + f.Subject + ")")
	}
	b.WriteString(": " + f.Message)
	if f.Fix != "" {
		b.WriteString("; fix: " + f.Fix)
	}
	return b.String()
}

// Blocking returns the findings of severity block.
func Blocking(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == Block {
			out = append(out, f)
		}
	}
	return out
}

// Sort orders findings by severity (block first), then id, subject.
func Sort(fs []Finding) {
	rank := map[Severity]int{Block: 0, Warn: 1, Info: 2}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if rank[a.Severity] != rank[b.Severity] {
			return rank[a.Severity] < rank[b.Severity]
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Subject < b.Subject
	})
}

// Step is what a check knows of a step still to run: what it does to which
// pools (its action's declared roles), never its action's name, so a new pool
// action takes part in the checks by declaring roles.
type Step struct {
	ID string
	// Pools are the parameters of the step's action that name pools, with the
	// role the step plays on each (decl.Action.PoolParams).
	Pools []decl.PoolParam
	// With is the step's rendered parameters; nil when they are known only after
	// earlier steps ran (they read those steps' outputs).
	With map[string]any
}

// Named returns the name of the pool the step's parameter pp names ("" when
// its parameters are known only after apply).
func (s Step) Named(pp decl.PoolParam) string {
	name, _ := s.With[pp.Param].(string)
	return name
}

// Plays reports whether the step plays one of roles on a pool.
func (s Step) Plays(roles ...decl.PoolRole) bool {
	return slices.ContainsFunc(s.Pools, func(pp decl.PoolParam) bool { return slices.Contains(roles, pp.Role) })
}

// Check is a cluster-level check.
type Check struct {
	ID string
	// Roles, when not empty, runs the check only when a step still to run plays
	// one of these roles on a pool.
	Roles []decl.PoolRole
	Run   func(ctx context.Context, in *Input) ([]Finding, error)
}

// registry is written only by init functions, which run one at a time before main,
// and read after: it needs no lock.
var registry []Check

// Register adds a check; call it from an init function.
func Register(c Check) {
	registry = append(registry, c)
}

// Checks returns the registered checks, by id.
func Checks() []Check {
	out := slices.Clone(registry)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Cluster is how checks reach the cluster.
type Cluster struct {
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	// Calico reads pools and IPAM state straight from the API server; nil when
	// Calico is not installed (then Unavailable says why).
	Calico      calico.Reader
	Unavailable error
}

// Input is what a check gets: the cluster, the steps still to run, and lists
// read once and shared by every check of the same Run.
type Input struct {
	Cluster
	Steps []Step

	mu    sync.Mutex
	memo  map[string]memoEntry
	mig   *Migration
	migEr error
	// ahead (one move of several, see hops) is what the steps before this move
	// do to the pools; live reads the cluster's pools as they are now.
	ahead *poolsahead.Model
	live  calico.Reader
}

type memoEntry struct {
	v   any
	err error
}

// once memoises an expensive read under key.
func once[T any](in *Input, key string, read func() (T, error)) (T, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if e, ok := in.memo[key]; ok {
		v, _ := e.v.(T)
		return v, e.err
	}
	v, err := read()
	if in.memo == nil {
		in.memo = map[string]memoEntry{}
	}
	in.memo[key] = memoEntry{v: v, err: err}
	return v, err
}

// HasRole reports whether a step still to run plays one of roles on a pool.
func (in *Input) HasRole(roles ...decl.PoolRole) bool {
	return slices.ContainsFunc(in.Steps, func(s Step) bool { return s.Plays(roles...) })
}

// Pods lists every pod (with annotations, unlike the Calico reader's view).
func (in *Input) Pods(ctx context.Context) ([]corev1.Pod, error) {
	return once(in, "pods", func() ([]corev1.Pod, error) {
		l, err := in.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		return l.Items, nil
	})
}

// Namespaces lists every namespace.
func (in *Input) Namespaces(ctx context.Context) ([]corev1.Namespace, error) {
	return once(in, "namespaces", func() ([]corev1.Namespace, error) {
		l, err := in.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		return l.Items, nil
	})
}

// ConfigMap reads a ConfigMap; nil (no error) when it does not exist.
func (in *Input) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return once(in, "cm/"+namespace+"/"+name, func() (*corev1.ConfigMap, error) {
		cm, err := in.Kube.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read ConfigMap %s/%s: %w", namespace, name, err)
		}
		return cm, nil
	})
}

// List lists a custom resource in every namespace; an empty list (no error) when
// the cluster does not serve it.
func (in *Input) List(ctx context.Context, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	return once(in, "list/"+gvr.String(), func() ([]unstructured.Unstructured, error) {
		l, err := in.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.GroupResource(), err)
		}
		return l.Items, nil
	})
}

// Serves reports whether the cluster serves an API group (any version).
func (in *Input) Serves(group string) (bool, error) {
	return once(in, "group/"+group, func() (bool, error) {
		if in.Discovery == nil {
			return false, nil
		}
		groups, err := in.Discovery.ServerGroups()
		if err != nil {
			return false, fmt.Errorf("discover API groups: %w", err)
		}
		for _, g := range groups.Groups {
			if g.Name == group {
				return true, nil
			}
		}
		return false, nil
	})
}

// Run runs every registered check relevant to the steps and returns their
// findings, sorted. A check that fails becomes a warn finding naming it: a
// preflight that cannot look is reported, not silently passed.
func Run(ctx context.Context, cl Cluster, steps []Step) []Finding {
	return RunChecks(ctx, cl, steps, Checks())
}

// RunChecks is Run with an explicit set of checks (tests).
func RunChecks(ctx context.Context, cl Cluster, steps []Step, checks []Check) []Finding {
	in := &Input{Cluster: cl, Steps: steps}
	hs := hops(steps)
	if hs == nil {
		out := runChecks(ctx, in, checks, func(Check) bool { return true })
		Sort(out)
		return out
	}
	// A runbook of several moves: the cluster-wide checks once, the pool checks
	// (those gated on pool roles) once per move.
	out := runChecks(ctx, in, checks, func(c Check) bool { return len(c.Roles) == 0 })
	out = append(out, runHops(in, hs, func(sub *Input) []Finding {
		return runChecks(ctx, sub, checks, func(c Check) bool { return len(c.Roles) > 0 })
	})...)
	Sort(out)
	return out
}

func runChecks(ctx context.Context, in *Input, checks []Check, include func(Check) bool) []Finding {
	var out []Finding
	for _, c := range checks {
		if !include(c) || len(c.Roles) > 0 && !in.HasRole(c.Roles...) {
			continue
		}
		fs, err := c.Run(ctx, in)
		if err != nil {
			out = append(out, Finding{ID: c.ID, Severity: Warn, Message: "check could not run: " + err.Error(),
				Fix: "grant read access to what it names (or fix the error) and plan again; until then this risk is not checked"})
		}
		for _, f := range fs {
			if f.ID == "" {
				f.ID = c.ID
			}
			out = append(out, f)
		}
	}
	return out
}

// listLimit is how many objects a finding names before "and N more".
const listLimit = 5
