package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
	"github.com/runbookdev/runbook/test/testbin"
)

// The example migration, unchanged, in every flavour: detection picks the API.
var (
	exampleRunbook = filepath.Join("..", "..", "examples", "migrate-ippool", "runbook.yaml")
	exampleValues  = filepath.Join("..", "..", "examples", "migrate-ippool", "values", "sandbox.yaml")
	// operatorValues: the same runbook on an operator install.
	operatorValues = filepath.Join("..", "..", "examples", "migrate-ippool", "values", "sandbox-operator.yaml")
)

var (
	gvrV1Pools       = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	gvrV3Pools       = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	gvrInstallations = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}
	gvrOpAPIServers  = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "apiservers"}
)

// flavourRig is a sandbox of one flavour driven through the CLI binary.
type flavourRig struct {
	c    *sandbox.Cluster
	kube kubernetes.Interface
	dyn  dynamic.Interface
	dir  string
}

func newFlavourRig(t *testing.T, flavour string) *flavourRig {
	t.Helper()
	return newScenarioRig(t, flavour, nil)
}

// newScenarioRig is newFlavourRig on a scenario of its own (nil: the default).
func newScenarioRig(t *testing.T, flavour string, s *scenarios.Scenario) *flavourRig {
	t.Helper()
	start := time.Now()
	c := sandbox.StartForTest(t, sandbox.Options{Flavour: flavour, Scenario: s})
	t.Logf("sandbox %s ready in %s", flavour, time.Since(start).Round(100*time.Millisecond))
	cfg := c.RESTConfig()
	return &flavourRig{c: c, kube: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg), dir: t.TempDir()}
}

// cli runs the binary with a generous timeout (a whole migration on a loaded
// machine) and, when report is set, returns the JSON report it wrote.
func (r *flavourRig) cli(t *testing.T, args ...string) (cliResult, *engine.Report) {
	t.Helper()
	report := filepath.Join(r.dir, fmt.Sprintf("report-%d.json", time.Now().UnixNano()))
	if args[0] == "apply" || args[0] == "rollback" {
		args = append(args, "--report", report)
	}
	res := testbin.Run(t, testbin.Opts{Kubeconfig: r.c.KubeconfigPath(), Timeout: 6 * time.Minute}, args...)
	t.Logf("runbook %s: exit %d in %s", args[0], res.Code, res.Took.Round(100*time.Millisecond))
	b, err := os.ReadFile(report)
	if err != nil {
		return res, nil
	}
	var rep engine.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v", report, err)
	}
	return res, &rep
}

// requireAllUnchanged asserts a re-run of the example migration changed nothing:
// every step done (or skipped) and unchanged.
func requireAllUnchanged(t *testing.T, rep *engine.Report) {
	t.Helper()
	requireStepsUnchanged(t, rep, 6)
}

// requireStepsUnchanged asserts a re-run of a runbook of n steps changed nothing.
func requireStepsUnchanged(t *testing.T, rep *engine.Report, n int) {
	t.Helper()
	if rep == nil {
		t.Fatal("no report")
	}
	for _, s := range rep.Steps {
		if s.Changed || (s.Status != engine.StatusDone && s.Status != engine.StatusSkipped) {
			t.Errorf("re-run: step %s %s changed=%t: %s %s", s.ID, s.Status, s.Changed, s.Message, s.Error)
		}
	}
	if len(rep.Steps) != n {
		t.Errorf("re-run reported %d steps, want %d", len(rep.Steps), n)
	}
}

// requirePodsMoved asserts no pod address is left in the old pool and at least
// the scenario's pods have one in the new pool.
func (r *flavourRig) requirePodsMoved(ctx context.Context, t *testing.T) {
	t.Helper()
	if old := podsIn(ctx, t, r.kube, netip.MustParsePrefix("192.168.0.0/16")); len(old) > 0 {
		t.Errorf("pods still in the old pool: %s", names(old))
	}
	if moved := podsIn(ctx, t, r.kube, netip.MustParsePrefix("10.0.0.0/16")); len(moved) < 9 {
		t.Errorf("only %d pod(s) in the new pool: %s", len(moved), names(moved))
	}
}

// poolsState renders the pools (as stored, v1) with, when versions, their
// resourceVersions, and for operator installs the Installation's pool list and
// annotations: what a refusal must leave exactly as it was. An entry's
// disableNewAllocations: false reads as absent (the same to the operator).
func (r *flavourRig) poolsState(ctx context.Context, t *testing.T, versions bool) string {
	t.Helper()
	list, err := r.dyn.Resource(gvrV1Pools).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range list.Items {
		spec, _, _ := unstructured.NestedMap(p.Object, "spec")
		b, _ := json.Marshal(spec)
		rv := ""
		if versions {
			rv = " rv=" + p.GetResourceVersion()
		}
		lines = append(lines, fmt.Sprintf("pool %s%s %s labels=%v", p.GetName(), rv, b, p.GetLabels()))
	}
	if inst, err := r.dyn.Resource(gvrInstallations).Get(ctx, "default", metav1.GetOptions{}); err == nil {
		pools, _, _ := unstructured.NestedSlice(inst.Object, "spec", "calicoNetwork", "ipPools")
		for _, e := range pools {
			m, _ := e.(map[string]any)
			if v, ok := m["disableNewAllocations"].(bool); ok && !v {
				delete(m, "disableNewAllocations")
			}
			b, _ := json.Marshal(m)
			lines = append(lines, fmt.Sprintf("Installation default ipPools entry %s", b))
		}
		ann := inst.GetAnnotations()
		keys := make([]string, 0, len(ann))
		for k := range ann {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		lines = append(lines, fmt.Sprintf("Installation default annotations %v", keys))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// v3Pool reads a pool through projectcalico.org/v3 (labels as v3 shows them).
func (r *flavourRig) v3Pool(ctx context.Context, t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	p, err := r.dyn.Resource(gvrV3Pools).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("v3 pool %s: %v", name, err)
	}
	return p
}

// waitCond polls a condition of the cluster (the tests observe components they
// do not own; the tool itself waits on watches).
func waitCond(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	t.Logf("%s after %s", what, time.Since(start).Round(100*time.Millisecond))
}

// applyKilledWhen starts `runbook apply args…` and kills it with SIGKILL once cond
// holds (a run cut off as by an OOM kill or a lost node), logs what it printed,
// and breaks its lock (its lease has not expired) so the next apply can resume.
func (r *flavourRig) applyKilledWhen(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, error), args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, testbin.Runbook(t), append(append([]string{"apply"}, args...), "--yes", "--kubeconfig", r.c.KubeconfigPath())...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	waitCond(ctx, t, what, 5*time.Minute, cond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Logf("killed apply: %s", sc.Text())
	}
	r.cli(t, "unlock", "--yes", "--force")
}

// managers lists the field managers of a v1 pool.
func managers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		out = append(out, m.Manager)
	}
	return out
}
