package deploy

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// cli runs the binary on the host with the sandbox's admin kubeconfig; --as
// switches identity the way an operator proving least privilege would.
func cli(t *testing.T, c *sandbox.Cluster, args ...string) result {
	t.Helper()
	return cliAt(t, c.KubeconfigPath(), args...)
}

// cliAt runs the binary with the given kubeconfig.
func cliAt(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	return testbin.Run(t, testbin.Opts{Kubeconfig: kubeconfig, Env: []string{"NO_COLOR=1"}, Timeout: 5 * time.Minute}, args...)
}

// withoutOneVerb copies deploy/rbac.yaml's grants for a second ServiceAccount,
// name, minus one verb on one resource: the ClusterRole is copied with that verb
// dropped, every binding of the runbook ServiceAccount is copied for name.
func withoutOneVerb(t *testing.T, name, group, resource, verb string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dropped := false
	for _, u := range readObjects(t, "../../deploy/rbac.yaml") {
		u = u.DeepCopy()
		switch u.GetKind() {
		case "ServiceAccount":
			u.SetName(name)
		case "ClusterRole":
			u.SetName(name)
			rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
			var kept []any
			for _, r := range rules {
				rm := r.(map[string]any)
				groups, _, _ := unstructured.NestedStringSlice(rm, "apiGroups")
				resources, _, _ := unstructured.NestedStringSlice(rm, "resources")
				verbs, _, _ := unstructured.NestedStringSlice(rm, "verbs")
				if len(groups) == 1 && groups[0] == group && len(resources) == 1 && resources[0] == resource {
					var left []any
					for _, v := range verbs {
						if v != verb {
							left = append(left, v)
						} else {
							dropped = true
						}
					}
					if len(left) == 0 {
						continue
					}
					rm["verbs"] = left
				}
				kept = append(kept, rm)
			}
			if err := unstructured.SetNestedSlice(u.Object, kept, "rules"); err != nil {
				t.Fatal(err)
			}
		case "ClusterRoleBinding", "RoleBinding":
			u.SetName(name + "-" + u.GetName())
			if u.GetKind() == "ClusterRoleBinding" {
				if err := unstructured.SetNestedField(u.Object, name, "roleRef", "name"); err != nil {
					t.Fatal(err)
				}
			}
			subjects := []any{map[string]any{"kind": "ServiceAccount", "name": name, "namespace": "runbook-system"}}
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				t.Fatal(err)
			}
		default: // the Namespace and the Roles are shared
		}
		out = append(out, u)
	}
	if !dropped {
		t.Fatalf("deploy/rbac.yaml grants no %s %s/%s on its own rule to drop", verb, group, resource)
	}
	return out
}

// clusterState is what a refused run must leave alone: every object a migration
// touches (pools, IPAM, pods, namespaces, the journal, the lock), by identity and
// resourceVersion, so even a no-op write would show.
func clusterState(ctx context.Context, t *testing.T, dyn dynamic.Interface) string {
	t.Helper()
	var lines []string
	for _, r := range []struct {
		gvr schema.GroupVersionResource
		ns  string
	}{
		{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}, ""},
		{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}, ""},
		{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "blockaffinities"}, ""},
		{schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamhandles"}, ""},
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, ""},
		{schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, ""},
		{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "runbook-system"},
		{schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, "runbook-system"},
	} {
		l, err := dyn.Resource(r.gvr).Namespace(r.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", r.gvr.Resource, err)
		}
		for _, u := range l.Items {
			lines = append(lines, fmt.Sprintf("%s %s/%s uid=%s rv=%s", r.gvr.Resource, u.GetNamespace(), u.GetName(), u.GetUID(), u.GetResourceVersion()))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestLeastPrivilegeThroughImpersonation runs the example migration with the CLI
// as the deploy/rbac.yaml ServiceAccount, impersonated with --as (no token, no
// in-cluster plumbing). First the permissions preflight: an identity that lacks
// one verb the migration needs (create pods/eviction), and one with no grants at
// all, are refused by plan and apply with the missing permissions named and the
// cluster untouched, down to resourceVersions. Then the ServiceAccount itself
// migrates the cluster completely.
func TestLeastPrivilegeThroughImpersonation(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := newApplier(t, c.RESTConfig())
	objs := readObjects(t, "../../deploy/rbac.yaml")
	objs = append(objs, readObjects(t, "../../deploy/policy.yaml")...) // the migration runs under the admission policy
	objs = append(objs, withoutOneVerb(t, "runbook-noevict", "", "pods/eviction", "create")...)
	for _, u := range objs {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	repo := filepath.Join("..", "..", "examples", "migrate-ippool")
	rb, values := filepath.Join(repo, "runbook.yaml"), filepath.Join(repo, "values", "sandbox.yaml")
	sa := func(name string) string { return "system:serviceaccount:runbook-system:" + name }

	before := clusterState(ctx, t, dyn)
	for _, tc := range []struct {
		name, as string
		named    []string
	}{
		{"one verb missing", sa("runbook-noevict"), []string{"missing 1 permission(s); nothing was changed",
			"create pods/eviction cluster-wide — needed by step move-pods (deletePodsInPool)"}},
		{"no grants", sa("nobody"), []string{"create crd.projectcalico.org/ippools cluster-wide — needed by step add-new-pool (ensurePool)",
			"update coordination.k8s.io/leases named runbook-lock-calico-ipam in namespace runbook-system — needed by the run journal and lock",
			"create pods/eviction cluster-wide"}},
	} {
		// A manifest install is not asked about the APIs of the other flavours.
		notNamed := []string{" projectcalico.org/", "apiregistration.k8s.io/apiservices named", "operator.tigera.io/installations named",
			"operator.tigera.io/apiservers", "tigerastatuses", "customresourcedefinitions"}
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"plan", "apply"} {
				args := []string{cmd, rb, "-f", values, "-n", "runbook-system", "--as", tc.as}
				if cmd == "apply" {
					args = append(args, "--yes")
				}
				r := cli(t, c, args...)
				r.Must(t, 11, tc.named...)
				for _, s := range notNamed {
					if strings.Contains(r.Stderr, s) {
						t.Errorf("%s as %s on a manifest install names %q:\n%s", cmd, tc.as, s, r.Stderr)
					}
				}
				t.Logf("%s as %s: exit %d\n%s", cmd, tc.as, r.Code, r.Stderr)
			}
			if after := clusterState(ctx, t, dyn); after != before {
				t.Fatalf("a refused run changed the cluster:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	if t.Failed() {
		return
	}

	start := time.Now()
	cli(t, c, "plan", rb, "-f", values, "-n", "runbook-system", "--as", sa("runbook")).Must(t, 4, "Plan for migrate-ippool")
	cli(t, c, "apply", rb, "-f", values, "-n", "runbook-system", "--yes", "--as", sa("runbook")).Must(t, 0, ": done")
	t.Logf("the example migration as %s took %v", sa("runbook"), time.Since(start).Round(time.Millisecond))
	requireMigrated(ctx, t, c)
}

// requireMigrated asserts the end state of the example migration: the old pool
// gone (from the v1 storage every flavour keeps pools in), every running pod not
// on the host network in the new pool.
func requireMigrated(ctx context.Context, t *testing.T, c *sandbox.Cluster) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	pools, err := dyn.Resource(schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools.Items {
		if p.GetName() == "default-ipv4-ippool" {
			t.Errorf("the old pool is still there")
		}
	}
	pods, err := kubernetes.NewForConfigOrDie(c.RESTConfig()).CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newPool := netip.MustParsePrefix("10.0.0.0/16")
	moved := 0
	for _, p := range pods.Items {
		if p.Spec.HostNetwork || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err != nil || !newPool.Contains(a) {
				t.Errorf("pod %s/%s has %s, outside the new pool", p.Namespace, p.Name, ip.IP)
			}
		}
		moved++
	}
	t.Logf("%d pods in the new pool", moved)
}
