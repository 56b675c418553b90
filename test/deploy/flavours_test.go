package deploy

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/test/sandbox"
)

var (
	gvrV3Pools       = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	gvrInstallations = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}
)

// TestLeastPrivilegePerFlavour is TestLeastPrivilegeThroughImpersonation on the
// other Calico installs, where pools go through projectcalico.org/v3 (the Calico
// API server) and, on an operator install, through Installation default. As the
// deploy/rbac.yaml ServiceAccount, impersonated with --as:
//   - an identity lacking one permission only this flavour needs is refused by
//     plan and apply (exit 11) with that permission and the step needing it named,
//     the cluster unchanged down to resourceVersions (pools in both APIs, IPAM,
//     the Installation, the journal and lock);
//   - an identity with no grants is asked for this flavour's pool API only (the
//     v1 pool API is not in the refusal: the preflight follows the detection);
//   - the ServiceAccount migrates the cluster completely, through a proxy that
//     records every request: none is outside the RBAC, and every rule only this
//     flavour declares is used (or names the code path in notOnTheHappyPath).
//
// One cluster at a time: each subtest's cluster stops when the subtest ends.
func TestLeastPrivilegePerFlavour(t *testing.T) {
	repo := filepath.Join("..", "..", "examples", "migrate-ippool")
	for _, tc := range []struct {
		flavour string
		values  string
		// proves: the flavour whose own rules the recorded migration must use.
		proves decl.Flavour
		// drop is the one flavour-specific permission the refused identity lacks,
		// and named what the refusal must say.
		drop  struct{ group, resource, verb string }
		named []string
		// noGrants must be named in the refusal of an identity without grants,
		// notNamed must not.
		noGrants, notNamed []string
	}{
		{
			flavour: sandbox.FlavourAPIServer, values: "sandbox.yaml", proves: decl.FlavourV3,
			drop: struct{ group, resource, verb string }{"projectcalico.org", "ippools", "create"},
			named: []string{"missing 1 permission(s); nothing was changed",
				"create projectcalico.org/ippools cluster-wide — needed by step add-new-pool (ensurePool): create or converge the pool; the inverse deletes the pool this run created (internal/calico/crd_write.go, crd_delete.go), through projectcalico.org/v3"},
			noGrants: []string{"create projectcalico.org/ippools cluster-wide", "watch projectcalico.org/ippools cluster-wide",
				"get apiregistration.k8s.io/apiservices named v3.projectcalico.org cluster-wide"},
			notNamed: []string{"crd.projectcalico.org/ippools", "operator.tigera.io/installations named"},
		},
		{
			// v1.34.13, the operator the pinned Calico ships: the old pool is disabled
			// by nodeSelector, and move-tunnels restarts calico-node (pods delete).
			flavour: sandbox.FlavourOperator, values: "sandbox-operator.yaml", proves: decl.FlavourOperator,
			drop: struct{ group, resource, verb string }{"operator.tigera.io", "installations", "update"},
			named: []string{"missing 1 permission(s); nothing was changed",
				"update operator.tigera.io/installations named default cluster-wide — needed by step add-new-pool (ensurePool): operator-managed pools are changed through Installation default",
				"step disable-old-pool (disablePool)", "step delete-old-pool (deletePool)"},
			noGrants: []string{"update operator.tigera.io/installations named default cluster-wide",
				"get operator.tigera.io/apiservers named default cluster-wide",
				"get operator.tigera.io/tigerastatuses named ippools cluster-wide",
				"get apiextensions.k8s.io/customresourcedefinitions named installations.operator.tigera.io cluster-wide",
				"create projectcalico.org/ippools cluster-wide"},
			notNamed: []string{"crd.projectcalico.org/ippools"},
		},
	} {
		t.Run(tc.flavour, func(t *testing.T) {
			start := time.Now()
			c := sandbox.StartForTest(t, sandbox.Options{Flavour: tc.flavour})
			t.Logf("sandbox %s ready in %s", tc.flavour, time.Since(start).Round(100*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
			if sandbox.IsOperatorFlavour(tc.flavour) {
				if err := c.WaitOperatorReady(ctx); err != nil { // before, a run is refused for the operator's state rather than for permissions
					t.Fatal(err)
				}
			}
			refused := "runbook-no-" + tc.drop.verb + "-" + strings.ReplaceAll(tc.drop.resource, "/", "-")
			a := newApplier(t, c.RESTConfig())
			objs := append(readObjects(t, "../../deploy/rbac.yaml"), readObjects(t, "../../deploy/policy.yaml")...)
			objs = append(objs, withoutOneVerb(t, refused, tc.drop.group, tc.drop.resource, tc.drop.verb)...)
			for _, u := range objs {
				if err := a.apply(ctx, u, false); err != nil {
					t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			rb, values := filepath.Join(repo, "runbook.yaml"), filepath.Join(repo, "values", tc.values)
			sa := func(name string) string { return "system:serviceaccount:runbook-system:" + name }

			before := flavourState(ctx, t, dyn, tc.flavour)
			for _, rc := range []struct {
				name, as        string
				named, notNamed []string
			}{
				{"one " + string(tc.proves) + " permission missing", sa(refused), tc.named, nil},
				{"no grants", sa("nobody"), tc.noGrants, tc.notNamed},
			} {
				t.Run(rc.name, func(t *testing.T) {
					for _, cmd := range []string{"plan", "apply"} {
						args := []string{cmd, rb, "-f", values, "-n", "runbook-system", "--as", rc.as}
						if cmd == "apply" {
							args = append(args, "--yes")
						}
						r := cli(t, c, args...)
						r.Must(t, 11, rc.named...)
						for _, s := range rc.notNamed {
							if strings.Contains(r.Stderr, s) {
								t.Errorf("%s as %s names %q, which this flavour does not use:\n%s", cmd, rc.as, s, r.Stderr)
							}
						}
						t.Logf("%s as %s: exit %d\n%s", cmd, rc.as, r.Code, r.Stderr)
					}
					if after := flavourState(ctx, t, dyn, tc.flavour); after != before {
						t.Fatalf("a refused run changed the cluster:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				})
			}
			if t.Failed() {
				return
			}

			// The migration as the ServiceAccount, every request recorded.
			proxy := startImpersonatingProxy(t, c.RESTConfig())
			kubeconfig := proxyKubeconfig(t, proxy)
			start = time.Now()
			cliAt(t, kubeconfig, "plan", rb, "-f", values, "-n", "runbook-system", "--as", sa("runbook")).Must(t, 4, "Plan for migrate-ippool")
			cliAt(t, kubeconfig, "apply", rb, "-f", values, "-n", "runbook-system", "--yes", "--as", sa("runbook")).Must(t, 0, ": done")
			t.Logf("the example migration as %s on %s took %v", sa("runbook"), tc.flavour, time.Since(start).Round(time.Millisecond))
			requireMigrated(ctx, t, c)

			rules := loadRules(t, "../../deploy/rbac.yaml", "runbook-system", "runbook")
			_, flavours := declaredNeeds()
			calls := proxy.recorded()
			used := requireAllowed(t, rules, calls)
			var unused, proved []string
			for _, k := range rules.keys() {
				if !exclusively(flavours[k], tc.proves) {
					continue // not this flavour's own rule: proved by another test
				}
				if used[k] {
					proved = append(proved, k.String())
					continue
				}
				if why, ok := notOnTheHappyPath[k.String()]; ok {
					t.Logf("rule %s: not used by this migration; needed %s", k, why)
					continue
				}
				unused = append(unused, k.String())
			}
			t.Logf("%d requests recorded; %d rules of flavour %s used:\n  %s", len(calls), len(proved), tc.proves, strings.Join(proved, "\n  "))
			if len(proved) == 0 {
				t.Errorf("no rule of flavour %s was used: the run did not take the %s path", tc.proves, tc.flavour)
			}
			if len(unused) > 0 {
				t.Errorf("rules of flavour %s no request used (drop them, or name the code path in notOnTheHappyPath):\n  %s", tc.proves, strings.Join(unused, "\n  "))
			}
			if t.Failed() {
				var all []string
				for _, c := range calls {
					all = append(all, c.String())
				}
				t.Logf("recorded requests:\n  %s", strings.Join(all, "\n  "))
			}
		})
	}
}

// flavourState is clusterState plus what only these flavours have: the pools as
// projectcalico.org/v3 serves them and, on an operator install, the Installation
// (its pool list, its run records) with its resourceVersion.
func flavourState(ctx context.Context, t *testing.T, dyn dynamic.Interface, flavour string) string {
	t.Helper()
	lines := []string{clusterState(ctx, t, dyn)}
	gvrs := []schema.GroupVersionResource{gvrV3Pools}
	if sandbox.IsOperatorFlavour(flavour) {
		gvrs = append(gvrs, gvrInstallations)
	}
	for _, gvr := range gvrs {
		l, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr.GroupResource(), err)
		}
		var items []string
		for _, u := range l.Items {
			pools, _, _ := unstructured.NestedSlice(u.Object, "spec", "calicoNetwork", "ipPools")
			items = append(items, fmt.Sprintf("%s %s uid=%s rv=%s pools=%v annotations=%v", gvr.GroupResource(), u.GetName(), u.GetUID(), u.GetResourceVersion(), pools, u.GetAnnotations()))
		}
		sort.Strings(items)
		lines = append(lines, items...)
	}
	return strings.Join(lines, "\n")
}

// proxyKubeconfig is a kubeconfig for the impersonating proxy: its CA, no
// credentials of its own (the proxy authenticates upstream; --as says who).
func proxyKubeconfig(t *testing.T, p *recordingProxy) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: "https://" + p.addr, CertificateAuthorityData: p.caPEM}
	kc.AuthInfos["impersonator"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "impersonator"}
	kc.CurrentContext = "proxy"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// exclusively reports whether every declaration of a rule is scoped to flavour f.
func exclusively(declared []decl.Flavour, f decl.Flavour) bool {
	for _, d := range declared {
		if d != f {
			return false
		}
	}
	return len(declared) > 0
}
