// Package access is the permissions preflight: before a command changes anything it
// asks the apiserver, with one SelfSubjectAccessReview per permission, whether the
// identity the command runs as (impersonation included) may make every call the
// runbook's steps need, and names what is missing.
//
// The permissions come from the action registry (decl.Action.Needs, the
// actions.FrameNeeds of the engine and CLI): the same declarations deploy/rbac.yaml
// is tested against, so the preflight, the shipped RBAC and the code cannot drift
// apart silently. Refusing up front matters because a permission missing half-way
// through a migration leaves it half done: the old pool disabled with pods still on
// it, say.
//
// Which permissions apply depends on the Calico install: pools go through
// crd.projectcalico.org/v1 or projectcalico.org/v3, and operator-managed pools
// through the tigera-operator's Installation. Each declared permission names its
// flavour, and Options.Flavours (from the same detection actions.Bind uses)
// selects what to ask: a manifest install is not refused for lacking rights on an
// API it does not serve, and the Calico API server is.
//
// SelfSubjectAccessReview rather than SelfSubjectRulesReview: the rules review is
// documented as incomplete (webhook authorizers, aggregated rules) and must not be
// used for authorization decisions; the access review asks the authorizer itself.
package access

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/runbooks"
)

// Need is one verb on one resource in one scope, and who needs it.
type Need struct {
	Verb     string
	Group    string
	Resource string // with the subresource: "pods/eviction"
	// Name is the one object the call names (RBAC resourceNames); "" for any.
	Name string
	// Namespace is "" for cluster-wide (all namespaces, for namespaced resources).
	Namespace string
	For       []string // "step move-pods (deletePodsInPool): PDB-aware evictions"
}

// String names the permission as kubectl auth can-i would take it.
func (n Need) String() string {
	res := n.Resource
	if n.Group != "" {
		res = n.Group + "/" + n.Resource
	}
	if n.Name != "" {
		res += " named " + n.Name
	}
	where := "cluster-wide"
	if n.Namespace != "" {
		where = "in namespace " + n.Namespace
	}
	return n.Verb + " " + res + " " + where
}

// Options say where the run keeps its state and what kind of Calico it meets.
type Options struct {
	// JournalNamespace is -n: the journal (unless FileJournal), the lock and Events.
	JournalNamespace string
	// FileJournal: --state keeps the journal in a local file; only the lock is in
	// the cluster then.
	FileJournal bool
	// Flavours are the cluster's (actions.FlavoursOf what calico.Detect found):
	// a permission of another flavour is not asked about, since no code path
	// makes that call on this cluster. Permissions of every flavour always are.
	Flavours []decl.Flavour
}

// Needs lists what applying rb needs on a cluster of o.Flavours: connecting to the
// cluster, the journal and lock, and every action of a step, a rollback hook or a
// cleanup hook (an action's needs include its plan, inverse and cleanup). Plan,
// apply and rollback all check the whole list: a plan that passes while apply is
// bound to fail half-way would be a false promise, and a rollback needs what the
// run it undoes needed.
func Needs(rb *runbooks.Runbook, o Options) []Need {
	type key struct{ verb, group, resource, name, ns string }
	byKey := map[key]*Need{}
	add := func(who string, ps []decl.Permission) {
		for _, p := range ps {
			if p.Flavour != decl.AllFlavours && !slices.Contains(o.Flavours, p.Flavour) {
				continue
			}
			ns := p.Namespace
			if ns == decl.JournalNamespace {
				if o.FileJournal {
					continue // the journal and its Events live in a local file then
				}
				ns = o.JournalNamespace
			}
			names := p.Names
			if len(names) == 0 {
				names = []string{""}
			}
			for _, v := range p.Verbs {
				for _, name := range names {
					k := key{v, p.Group, p.Resource, name, ns}
					n := byKey[k]
					if n == nil {
						n = &Need{Verb: v, Group: p.Group, Resource: p.Resource, Name: name, Namespace: ns}
						byKey[k] = n
					}
					reason := who + ": " + p.Why
					if len(n.For) == 0 || n.For[len(n.For)-1] != reason {
						n.For = append(n.For, reason)
					}
				}
			}
		}
	}
	add("watching the cluster", actions.FrameNeeds.Bind)
	add("the run journal", actions.FrameNeeds.Plan)
	add("the run journal and lock", actions.FrameNeeds.Run)
	for _, st := range rb.Steps {
		if st.Decl != nil {
			add(fmt.Sprintf("step %s (%s)", st.ID, st.Action), st.Decl.Needs)
		}
		for _, h := range st.RollbackHooks {
			if h.Decl != nil {
				add(fmt.Sprintf("rollback of step %s (%s)", st.ID, h.Action), h.Decl.Needs)
			}
		}
		for _, h := range st.CleanupHooks {
			if h.Decl != nil {
				add(fmt.Sprintf("cleanup of step %s (%s)", st.ID, h.Action), h.Decl.Needs)
			}
		}
	}
	out := make([]Need, 0, len(byKey))
	for _, n := range byKey {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Verb < b.Verb
	})
	return out
}

// parallel bounds the reviews in flight: enough to hide a remote apiserver's
// round trip, few enough not to matter next to the client's QPS budget.
const parallel = 8

// Check asks the apiserver about every need and returns the denied ones, in the
// order given. An error means the check itself could not be made (the review API
// failed); it says nothing about the permissions.
func Check(ctx context.Context, reviews authorizationclient.SelfSubjectAccessReviewsGetter, needs []Need) ([]Need, error) {
	denied := make([]bool, len(needs))
	errs := make([]error, len(needs))
	// Every review runs even when one fails, and the first failure in the given
	// order is returned, so the outcome does not depend on timing.
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, n := range needs {
		g.Go(func() error {
			res, sub, _ := strings.Cut(n.Resource, "/")
			r, err := reviews.SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: n.Namespace, Verb: n.Verb, Group: n.Group, Resource: res, Subresource: sub, Name: n.Name}},
			}, metav1.CreateOptions{})
			if err != nil {
				errs[i] = fmt.Errorf("SelfSubjectAccessReview for %s: %w", n, err)
				return nil
			}
			denied[i] = !r.Status.Allowed
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through errs

	var out []Need
	for i, n := range needs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if denied[i] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Describe is the refusal for missing permissions: each named with who needs it.
func Describe(missing []Need) string {
	var b strings.Builder
	fmt.Fprintf(&b, "missing %d permission(s); nothing was changed:", len(missing))
	for _, n := range missing {
		fmt.Fprintf(&b, "\n  %s — needed by %s", n, strings.Join(n.For, "; "))
	}
	return b.String()
}
