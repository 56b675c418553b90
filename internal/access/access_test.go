package access

import (
	"context"
	"errors"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/runbooks"
)

const hooks = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: t}
steps:
  - id: wait
    action: pause
    rollback:
      - action: disablePool
        with: {name: p}
    cleanup:
      - action: assertNewAllocations
        with: {pool: q, namespace: t}
`

func parse(t *testing.T, file string, src []byte) *runbooks.Runbook {
	t.Helper()
	var err error
	var rb *runbooks.Runbook
	if src == nil {
		rb, err = runbooks.ParseFile(file, actions.Default)
	} else {
		rb, err = runbooks.Parse(file, src, actions.Default)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func find(needs []Need, s string) *Need {
	for i := range needs {
		if needs[i].String() == s {
			return &needs[i]
		}
	}
	return nil
}

func TestNeeds(t *testing.T) {
	example := parse(t, "../../examples/migrate-ippool/runbook.yaml", nil)
	crd := []decl.Flavour{decl.FlavourCRD}
	v3 := []decl.Flavour{decl.FlavourV3}
	operator := []decl.Flavour{decl.FlavourV3, decl.FlavourOperator}
	v3Only := []string{"create projectcalico.org/ippools cluster-wide", "watch projectcalico.org/ippools cluster-wide",
		"delete projectcalico.org/ippools cluster-wide", "get apiregistration.k8s.io/apiservices named v3.projectcalico.org cluster-wide"}
	operatorOnly := []string{"get operator.tigera.io/installations named default cluster-wide",
		"update operator.tigera.io/installations named default cluster-wide",
		"get operator.tigera.io/apiservers named default cluster-wide",
		"get operator.tigera.io/tigerastatuses named apiserver cluster-wide",
		"get operator.tigera.io/tigerastatuses named ippools cluster-wide",
		"get apiextensions.k8s.io/customresourcedefinitions named installations.operator.tigera.io cluster-wide"}
	for _, tc := range []struct {
		name         string
		rb           *runbooks.Runbook
		o            Options
		want, absent []string
		whoContains  map[string]string
	}{
		{
			name: "example migration", rb: example, o: Options{JournalNamespace: "rb-ns", Flavours: crd},
			want: []string{"create pods/eviction cluster-wide", "create crd.projectcalico.org/ippools cluster-wide",
				"delete crd.projectcalico.org/ipamblocks cluster-wide", "update configmaps in namespace rb-ns",
				"update coordination.k8s.io/leases named runbook-lock-calico-ipam in namespace runbook-system", "watch configmaps in namespace kube-system",
				"create namespaces cluster-wide"},
			// unlock's verb is not a run's
			absent: []string{"delete coordination.k8s.io/leases named runbook-lock-calico-ipam in namespace runbook-system",
				"update coordination.k8s.io/leases in namespace rb-ns"}, // the lock is per cluster, not per journal namespace
			whoContains: map[string]string{"create pods/eviction cluster-wide": "step move-pods (deletePodsInPool)"},
		},
		{
			name: "file journal keeps only the lock in the cluster", rb: example, o: Options{JournalNamespace: "rb-ns", FileJournal: true, Flavours: crd},
			want:   []string{"update coordination.k8s.io/leases named runbook-lock-calico-ipam in namespace runbook-system"},
			absent: []string{"update configmaps in namespace rb-ns", "create events in namespace rb-ns"},
		},
		{
			name: "hooks count", rb: parse(t, "hooks.yaml", []byte(hooks)), o: Options{JournalNamespace: "x", Flavours: crd},
			want:   []string{"patch crd.projectcalico.org/ippools cluster-wide", "create pods cluster-wide"},
			absent: []string{"create pods/eviction cluster-wide", "create crd.projectcalico.org/ippools cluster-wide", "delete crd.projectcalico.org/ipamblocks cluster-wide"},
			whoContains: map[string]string{"patch crd.projectcalico.org/ippools cluster-wide": "rollback of step wait (disablePool)",
				"create pods cluster-wide": "cleanup of step wait (assertNewAllocations)"},
		},
		{
			// A manifest install is asked about no API it does not serve.
			name: "crd flavour: nothing of v3 or the operator", rb: example, o: Options{JournalNamespace: "rb-ns", Flavours: crd},
			want: []string{"watch crd.projectcalico.org/ippools cluster-wide", "patch crd.projectcalico.org/ippools cluster-wide",
				"list operator.tigera.io/installations cluster-wide"}, // the preflight's read, made on every cluster
			absent: append(v3Only, operatorOnly...),
		},
		{
			name: "Calico API server: pools through projectcalico.org, IPAM still v1", rb: example, o: Options{JournalNamespace: "rb-ns", Flavours: v3},
			want: append(v3Only, "delete crd.projectcalico.org/ipamblocks cluster-wide", "delete crd.projectcalico.org/blockaffinities cluster-wide"),
			absent: append([]string{"create crd.projectcalico.org/ippools cluster-wide", "watch crd.projectcalico.org/ippools cluster-wide",
				"patch crd.projectcalico.org/ippools cluster-wide"}, operatorOnly...),
			whoContains: map[string]string{
				"create projectcalico.org/ippools cluster-wide":                                  "step add-new-pool (ensurePool)",
				"get apiregistration.k8s.io/apiservices named v3.projectcalico.org cluster-wide": "internal/calico/detect.go",
				"patch projectcalico.org/ippools cluster-wide":                                   "step disable-old-pool (disablePool)",
			},
		},
		{
			name: "operator install: the Installation path on top of v3", rb: example, o: Options{JournalNamespace: "rb-ns", Flavours: operator},
			want:   append(append([]string{}, v3Only...), operatorOnly...),
			absent: []string{"create crd.projectcalico.org/ippools cluster-wide", "update operator.tigera.io/installations cluster-wide"},
			whoContains: map[string]string{
				"update operator.tigera.io/installations named default cluster-wide": "step add-new-pool (ensurePool)",
				"get operator.tigera.io/tigerastatuses named ippools cluster-wide":   "step delete-old-pool (deletePool)",
			},
		},
		{
			name: "no flavour: only what every cluster needs", rb: example, o: Options{JournalNamespace: "rb-ns"},
			want:   []string{"create pods/eviction cluster-wide", "list crd.projectcalico.org/ipamblocks cluster-wide"},
			absent: append([]string{"create crd.projectcalico.org/ippools cluster-wide"}, append(v3Only, operatorOnly...)...),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needs := Needs(tc.rb, tc.o)
			seen := map[string]bool{}
			for _, n := range needs {
				if seen[n.String()] {
					t.Errorf("%s listed twice", n)
				}
				seen[n.String()] = true
			}
			for _, w := range tc.want {
				if find(needs, w) == nil {
					t.Errorf("missing need %q", w)
				}
			}
			for _, a := range tc.absent {
				if find(needs, a) != nil {
					t.Errorf("unexpected need %q", a)
				}
			}
			for s, who := range tc.whoContains {
				if n := find(needs, s); n == nil || !strings.Contains(strings.Join(n.For, ";"), who) {
					t.Errorf("%s: want a reason naming %q, got %+v", s, who, n)
				}
			}
		})
	}
}

// TestCheck drives Check through client-go's fake clientset with a reactor that
// plays the authorizer: what it sends is what the apiserver would be asked.
func TestCheck(t *testing.T) {
	needs := []Need{
		{Verb: "create", Resource: "pods/eviction"},
		{Verb: "patch", Group: "crd.projectcalico.org", Resource: "ippools"},
		{Verb: "update", Resource: "configmaps", Namespace: "rb"},
		{Verb: "update", Group: "operator.tigera.io", Resource: "installations", Name: "default"},
	}
	for _, tc := range []struct {
		name    string
		deny    func(a *authorizationv1.ResourceAttributes) bool
		fail    error
		want    []string
		wantErr string
	}{
		{name: "all allowed", deny: func(*authorizationv1.ResourceAttributes) bool { return false }},
		{name: "eviction subresource denied", deny: func(a *authorizationv1.ResourceAttributes) bool {
			return a.Resource == "pods" && a.Subresource == "eviction" && a.Verb == "create" && a.Namespace == ""
		}, want: []string{"create pods/eviction cluster-wide"}},
		{name: "namespaced denied", deny: func(a *authorizationv1.ResourceAttributes) bool {
			return a.Namespace == "rb" && a.Resource == "configmaps"
		}, want: []string{"update configmaps in namespace rb"}},
		{name: "named object denied", deny: func(a *authorizationv1.ResourceAttributes) bool {
			return a.Resource == "installations" && a.Name == "default" && a.Verb == "update"
		}, want: []string{"update operator.tigera.io/installations named default cluster-wide"}},
		{name: "review API fails", fail: errors.New("boom"), wantErr: "SelfSubjectAccessReview for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if tc.fail != nil {
					return true, nil, tc.fail
				}
				r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
				r.Status.Allowed = !tc.deny(r.Spec.ResourceAttributes)
				return true, r, nil
			})
			missing, err := Check(context.Background(), cs.AuthorizationV1(), needs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range missing {
				got = append(got, m.String())
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("missing %v, want %v", got, tc.want)
			}
			if len(missing) > 0 && !strings.Contains(Describe(missing), tc.want[0]) {
				t.Fatalf("Describe does not name %s: %s", tc.want[0], Describe(missing))
			}
		})
	}
}
