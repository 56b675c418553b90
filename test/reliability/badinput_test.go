package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// badInputScenario is the doc's cluster plus a disabled pool inside the cluster
// CIDR, which a new pool of 10.0.0.0/16 would overlap.
const badInputScenario = `apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: reliability-bad-input
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
  - {name: reserved, cidr: 10.0.200.0/24, disabled: true}
pods: {startDelay: 500ms}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 2}
workloads:
- {name: coredns, namespace: kube-system, replicas: 2, labels: {k8s-app: kube-dns}, tolerateControlPlane: true, pdb: {maxUnavailable: 1}}
- {name: web, namespace: shop, replicas: 3, pdb: {maxUnavailable: 1}}
`

// TestWrongForTheCluster: runbooks and values that are valid on their own but wrong
// for this cluster are refused by validate, plan or apply before anything changes.
// Pools, IPAM blocks, affinities and handles, pods, namespaces and node tunnel
// addresses are compared, resourceVersions included, before and after each case.
func TestWrongForTheCluster(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: loadScenario(t, badInputScenario)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := clientsFor(c)
	kc := c.KubeconfigPath()
	dir := t.TempDir()
	example, err := os.ReadFile(exampleRunbook)
	if err != nil {
		t.Fatal(err)
	}
	// variant writes the example with one edit (which must apply).
	variant := func(name, old, repl string) string {
		if !strings.Contains(string(example), old) {
			t.Fatalf("the example no longer contains %q", old)
		}
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(strings.Replace(string(example), old, repl, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		name    string
		runbook string
		set     []string
		// Exit codes of validate, plan and apply.
		validate, plan, apply exitcode.Code
		// What the refusal must say (validate's for invalid runbooks, else plan's
		// and apply's).
		says []string
	}{
		{name: "old pool name misspelt", set: []string{"oldPool=default-ipv4-ipool"},
			plan: exitcode.Refused, apply: exitcode.Refused, says: []string{"default-ipv4-ipool"}},
		// Found by ensurePool when it runs: the run is rolled back with nothing changed.
		{name: "new pool overlaps a pool", set: []string{"newCIDR=10.0.0.0/16"},
			plan: exitcode.Refused, apply: exitcode.RolledBack, says: []string{"overlaps pool reserved", "nothing was changed"}},
		{name: "new pool outside the cluster CIDR", set: []string{"newCIDR=172.16.0.0/16"},
			plan: exitcode.Refused, apply: exitcode.Refused, says: []string{"172.16.0.0/16"}},
		{name: "new pool is the old pool", set: []string{"newPool=default-ipv4-ippool", "newCIDR=10.0.0.0/17"},
			plan: exitcode.Refused, apply: exitcode.Refused, says: []string{"default-ipv4-ippool"}},
		// Checked by the parameters' rules once --set binds the params (issue #15):
		// validate says so, plan and apply refuse before they connect.
		{name: "new pool name not a Kubernetes name", set: []string{"newPool=New_Pool", "newCIDR=10.0.0.0/17"},
			validate: exitcode.Invalid, plan: exitcode.Refused, apply: exitcode.Refused,
			says: []string{"steps[0].with.name", `"New_Pool" is not a valid Calico IP pool name`}},
		{name: "block size out of range", set: []string{"blockSize=33", "newCIDR=10.0.0.0/17"},
			validate: exitcode.Invalid, plan: exitcode.Refused, apply: exitcode.Refused,
			says: []string{"steps[0].with.blockSize", "blockSize 33 is not a Calico block size"}},
		{name: "function name misspelt", runbook: variant("fn-typo", "require: pool(params.newPool)", "require: pol(params.newPool)"),
			set: []string{"newCIDR=10.0.0.0/17"}, validate: exitcode.Invalid, plan: exitcode.Invalid, apply: exitcode.Invalid,
			says: []string{"fn-typo.yaml:", "pol", `did you mean "pool"`}},
		{name: "field name misspelt", runbook: variant("field-typo", "!pool(params.newPool).disabled", "!pool(params.newPool).disabld"),
			set: []string{"newCIDR=10.0.0.0/17"}, validate: exitcode.Invalid, plan: exitcode.Invalid, apply: exitcode.Invalid,
			says: []string{"field-typo.yaml:", "disabld"}},
		{name: "param name misspelt", runbook: variant("param-typo", "pool(params.newPool) != nil", "pool(params.newPol) != nil"),
			set: []string{"newCIDR=10.0.0.0/17"}, validate: exitcode.Invalid, plan: exitcode.Invalid, apply: exitcode.Invalid,
			says: []string{"param-typo.yaml:", "newPol"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := tc.runbook
			if rb == "" {
				rb = exampleRunbook
			}
			args := []string{rb, "-f", exampleValues}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			before := snapshot(ctx, t, k)
			j0, _, err := k.store().Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			v := testbin.Run(t, testbin.Opts{}, append([]string{"validate"}, args...)...)
			p := testbin.Run(t, testbin.Opts{Kubeconfig: kc}, append(append([]string{"plan"}, args...), "-n", journalNS)...)
			a := testbin.Run(t, testbin.Opts{Kubeconfig: kc}, append(append([]string{"apply"}, args...), "-n", journalNS, "--yes")...)
			after := snapshot(ctx, t, k)
			for _, r := range []struct {
				what string
				res  testbin.Result
				want exitcode.Code
			}{{"validate", v, tc.validate}, {"plan", p, tc.plan}, {"apply", a, tc.apply}} {
				if r.res.Code != int(r.want) {
					t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.what, r.res.Code, r.want, r.res.Stdout, r.res.Stderr)
				}
				if r.want == exitcode.OK || (r.what == "validate" && r.want != exitcode.Invalid) {
					continue
				}
				for _, s := range tc.says {
					if !strings.Contains(r.res.Stdout+r.res.Stderr, s) {
						t.Errorf("%s does not say %q:\n%s%s", r.what, s, r.res.Stdout, r.res.Stderr)
					}
				}
			}
			if d := diffLines(before, after); d != "" {
				t.Errorf("the cluster changed:\n%s", d)
			}
			// A refusal before the run writes no journal either.
			if j, _, err := k.store().Load(ctx); tc.apply != exitcode.RolledBack && (err != nil || (j != nil && (j0 == nil || j.RunID != j0.RunID))) {
				t.Errorf("journal after a refused apply: %+v, %v", j, err)
			}
			t.Logf("validate %d, plan %d, apply %d: %s", v.Code, p.Code, a.Code, firstLine(a.Stderr))
		})
	}
}

// snapshot renders what a refused run must leave alone: Calico pools and IPAM,
// pods, namespaces (other than runbook's own) and node tunnel addresses, with
// resourceVersions, which move on any write.
func snapshot(ctx context.Context, t *testing.T, k *clients) string {
	t.Helper()
	var lines []string
	for _, gvr := range []schema.GroupVersionResource{ippools, ipamblocks, blockaffinities, ipamhandles} {
		l, err := k.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", gvr.Resource, err)
		}
		for _, obj := range l.Items {
			spec, _ := json.Marshal(obj.Object["spec"])
			lines = append(lines, fmt.Sprintf("%s %s rv=%s labels=%v annotations=%v spec=%s", gvr.Resource, obj.GetName(), obj.GetResourceVersion(),
				obj.GetLabels(), obj.GetAnnotations(), spec))
		}
	}
	pods, err := k.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		lines = append(lines, fmt.Sprintf("pod %s/%s uid=%s rv=%s ips=%v", p.Namespace, p.Name, p.UID, p.ResourceVersion, p.Status.PodIPs))
	}
	nss, err := k.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if ns.Name != journalNS {
			lines = append(lines, fmt.Sprintf("namespace %s rv=%s", ns.Name, ns.ResourceVersion))
		}
	}
	nodes, err := k.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		var calico []string
		for key, v := range n.Annotations {
			if strings.HasPrefix(key, "projectcalico.org/") {
				calico = append(calico, key+"="+v)
			}
		}
		sort.Strings(calico)
		lines = append(lines, fmt.Sprintf("node %s %s", n.Name, strings.Join(calico, " ")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
