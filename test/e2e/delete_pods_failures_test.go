package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/scenarios"
	"github.com/runbookdev/runbook/test/testbin"
)

// podIdentities renders every pod's identity and addresses, to prove that nothing
// was disturbed.
func podIdentities(ctx context.Context, t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range l.Items {
		lines = append(lines, fmt.Sprintf("%s/%s %s %v", p.Namespace, p.Name, p.UID, p.Status.PodIPs))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestDeletePodsInPoolBudgetWithoutRoomRollsBack: a PodDisruptionBudget that can
// never allow an eviction (minAvailable equal to the replicas) fails the step up
// front, naming it; no pod anywhere is disturbed, and rollback re-enables the old
// pool (and removes the new one, which this run created and nothing uses).
func TestDeletePodsInPoolBudgetWithoutRoomRollsBack(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	three := intstr.FromInt32(3)
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"minAvailable": three}})
	if _, err := r.kube.PolicyV1().PodDisruptionBudgets("shop").Patch(ctx, "frontend", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "budget shop/frontend observed with minAvailable 3", func(ctx context.Context) (bool, error) {
		b, err := r.kube.PolicyV1().PodDisruptionBudgets("shop").Get(ctx, "frontend", metav1.GetOptions{})
		return err == nil && b.Status.ObservedGeneration == b.Generation && b.Status.DesiredHealthy == 3, err
	})
	before := podIdentities(ctx, t, r.kube)
	start := time.Now()
	rep, err := r.run(ctx, t, movePodsRunbook("no-room", ", timeout: 2m"), runOpts{})
	if err == nil || rep.Status != engine.StatusRolledBack {
		t.Fatalf("want a rolled back run, got %v %+v", err, rep)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the run took %v: the refusal should come up front", took)
	}
	st := step(t, rep, "move-pods")
	mustContain(t, "failure", st.Error, "refused, nothing was changed", "PodDisruptionBudget shop/frontend never allows an eviction", "needs 3 healthy, has 3", "shop/frontend-")
	if spec, _ := r.pool(ctx, t, "default-ipv4-ippool").Object["spec"].(map[string]any); spec["disabled"] == true {
		t.Errorf("old pool not re-enabled: rollback %q", step(t, rep, "disable-old-pool").Rollback)
	}
	after := podIdentities(ctx, t, r.kube)
	if rb := step(t, rep, "add-new-pool").Rollback; strings.Contains(rb, "restarting calico-node") {
		// calico-node v3.28 can miss the rollback's disable of the new pool (its
		// reconciler's kick channel is unbuffered and OnUpdates does not block:
		// node/pkg/allocateip/allocateip.go), and then the inverse restarts it to
		// move the tunnel addresses, and says so. Only calico-node may differ.
		t.Logf("rollback: %s", rb)
		before, after = withoutCalicoNode(before), withoutCalicoNode(after)
	}
	if after != before {
		t.Errorf("pods disturbed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// withoutCalicoNode drops calico-node's pods from podIdentities' lines.
func withoutCalicoNode(ids string) string {
	var keep []string
	for _, l := range strings.Split(ids, "\n") {
		if !strings.HasPrefix(l, "kube-system/calico-node-") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestDeletePodsInPoolDetectsReplacementsInTheOldPool: while the step runs, the old
// pool is re-enabled and the new one disabled (as an operator or the Calico
// operator might): replacements get old-pool addresses again, and the step fails at
// once with their list instead of evicting in circles.
func TestDeletePodsInPoolDetectsReplacementsInTheOldPool(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	if rep, err := r.run(ctx, t, setupPoolsRunbook, runOpts{journal: "setup"}); err != nil {
		t.Fatalf("setup: %v %+v", err, rep)
	}
	flip := make(chan struct{})
	var once sync.Once
	evCtx := actions.WithPodMoveEvents(ctx, func(_ string, e actions.PodMoveEvent) {
		if e.Type == "pod.evicted" {
			once.Do(func() { close(flip) })
		}
	})
	flipped := make(chan error, 1)
	go func() {
		<-flip
		for _, p := range []struct {
			name     string
			disabled bool
		}{{"new-pool", true}, {"default-ipv4-ippool", false}} {
			body := fmt.Sprintf(`{"spec":{"disabled":%t}}`, p.disabled)
			if _, err := r.dyn.Resource(ippools).Patch(ctx, p.name, types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
				flipped <- err
				return
			}
		}
		flipped <- nil
	}()
	start := time.Now()
	rep, err := r.run(evCtx, t, moveOnly("landing", "namespace: shop, timeout: 2m"), runOpts{journal: "landing"})
	if ferr := <-flipped; ferr != nil {
		t.Fatalf("flipping the pools: %v", ferr)
	}
	if err == nil {
		t.Fatalf("the step did not notice: %+v", rep)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("noticed only after %v", took)
	}
	mustContain(t, "failure", step(t, rep, "move-pods").Error, "created after the step began got an address in pool default-ipv4-ippool (192.168.0.0/16) again", "re-enabled", "shop/")
}

// TestDeletePodsInPoolResumesAfterKill kills `runbook apply` with SIGKILL in the
// middle of the move, breaks its lock, applies again: the run resumes, finishes,
// and the cluster served exactly one eviction per pod that was in the old pool.
func TestDeletePodsInPoolResumesAfterKill(t *testing.T) {
	s, err := scenarios.Parse([]byte(`apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: resume
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
pods: {startDelay: 1s}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 3}
workloads:
- {name: a, namespace: apps, replicas: 6, pdb: {maxUnavailable: 1}}
- {name: b, namespace: apps, replicas: 6, pdb: {maxUnavailable: 1}}
- {name: c, namespace: apps, replicas: 6, pdb: {maxUnavailable: 1}}
- {name: db, kind: StatefulSet, namespace: apps, replicas: 3, pdb: {maxUnavailable: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	inPool := len(podsIn(ctx, t, cs, oldPool))
	apps := 0
	for _, p := range podsIn(ctx, t, cs, oldPool) {
		if p.Namespace == "apps" {
			apps++
		}
	}
	dir := t.TempDir()
	rb := filepath.Join(dir, "move.yaml")
	if err := os.WriteFile(rb, []byte(movePodsRunbook("resume", ", namespace: apps, timeout: 3m")), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "journal.json")
	evictions := func() (total, evicted, refused float64) {
		m, err := apiRequestsByVerb(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		return m["post pods/eviction"], m["post pods/eviction 201"], m["post pods/eviction 429"]
	}
	total0, evicted0, refused0 := evictions()

	// First apply: killed once some pods went.
	cmd := exec.CommandContext(ctx, testbin.Runbook(t), "apply", rb, "--state", state, "-n", "runbook-resume", "--kubeconfig", c.KubeconfigPath(), "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gone := 0
	deadline := time.Now().Add(2 * time.Minute)
	for gone < 6 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		gone = 0
		for _, p := range podsOf(ctx, t, &poolRig{kube: cs}, "apps", "") {
			if p.DeletionTimestamp != nil || podIn(&p, newPool) {
				gone++
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Logf("first apply: %s", sc.Text())
	}
	left := len(podsIn(ctx, t, cs, oldPool))
	t.Logf("killed with %d of %d pods still in the old pool (%d in apps)", left, inPool, apps)
	if left == inPool {
		t.Fatal("killed before anything moved")
	}
	if left-(inPool-apps) <= 0 {
		t.Fatal("killed after everything moved: nothing to resume")
	}

	runCLI(t, c, "unlock", "--yes", "--force").Must(t, 0) // the killed run's lease has not expired
	res := runCLI(t, c, "apply", rb, "--state", state, "-n", "runbook-resume")
	res.Must(t, 0, "resuming run")
	for _, p := range podsIn(ctx, t, cs, oldPool) {
		if p.Namespace == "apps" {
			t.Errorf("pod %s still in the old pool", p.Name)
		}
	}
	requireAllIn(t, "apps", podsOf(ctx, t, &poolRig{kube: cs}, "apps", ""))
	// Each pod is evicted once, and no eviction is refused. Requests in flight when
	// the first apply was killed are counted by the API server whatever became of
	// them (the server goes on after the client is gone, "Post-timeout activity"):
	// a cut-off one may have evicted its pod or not, and then the resumed run
	// evicts that pod itself; only those may come on top, never more than the
	// mover has in flight.
	total, evicted, refused := evictions()
	total, evicted, refused = total-total0, evicted-evicted0, refused-refused0
	t.Logf("evictions served: %v for %d pods: %v evicted (201), %v refused (429), %v cut off by the kill", total, apps, evicted, refused, total-evicted-refused)
	if int(evicted) > apps || refused > 0 || total-evicted-refused > maxInFlightEvictions {
		t.Errorf("%v evictions served for %d pods: %v evicted (201), %v refused (429)", total, apps, evicted, refused)
	}
}

// maxInFlightEvictions bounds the eviction requests the mover has open at once
// (podmove's apiParallelism).
const maxInFlightEvictions = 32

// apiRequestsByVerb reads apiserver_request_total summed per "verb resource[/sub]",
// and per "verb resource[/sub] code" (e.g. "post pods/eviction 429").
func apiRequestsByVerb(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			continue
		}
		label := func(k string) string {
			j := strings.Index(line, k+`="`)
			if j < 0 {
				return ""
			}
			rest := line[j+len(k)+2:]
			return rest[:strings.IndexByte(rest, '"')]
		}
		res := label("resource")
		if sub := label("subresource"); sub != "" {
			res += "/" + sub
		}
		key := strings.ToLower(label("verb")) + " " + res
		out[key] += v
		out[key+" "+label("code")] += v
	}
	return out, nil
}

// TestDeletePodsInPoolFinishesAdmittedEviction: an eviction the API admitted but
// never carried out — the client vanished between the budget update and the
// delete, as when a run is killed mid-request — leaves the pod listed in the
// budget's status.disruptedPods and the budget at 0 allowed for two minutes (the
// disruption controller's DeletionTimeout). The step recognises the pod, finishes
// that eviction with a delete at no further cost to the budget, and moves on
// instead of stalling: the step's 60 s timeout is shorter than the stall.
func TestDeletePodsInPoolFinishesAdmittedEviction(t *testing.T) {
	s, err := scenarios.Parse([]byte(`apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: admitted
cluster: {podSubnet: 10.0.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 192.168.0.0/16, ipipMode: Always, natOutgoing: true}
pods: {startDelay: 500ms}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker, count: 2}
workloads:
- {name: a, namespace: apps, replicas: 6, pdb: {maxUnavailable: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)
	pods := podsOf(ctx, t, r, "apps", "")
	if len(pods) != 6 {
		t.Fatalf("%d pods in apps, want 6", len(pods))
	}
	victim := pods[0]
	// What the eviction API writes before it deletes the pod.
	waitFor(ctx, t, "budget apps/a lists "+victim.Name+" as disrupted, allowing nothing", func(ctx context.Context) (bool, error) {
		b, err := r.kube.PolicyV1().PodDisruptionBudgets("apps").Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if _, ok := b.Status.DisruptedPods[victim.Name]; ok {
			return b.Status.DisruptionsAllowed == 0 && b.Status.ObservedGeneration == b.Generation, nil
		}
		if b.Status.DisruptionsAllowed != 1 {
			return false, nil
		}
		b.Status.DisruptionsAllowed = 0
		b.Status.DisruptedPods = map[string]metav1.Time{victim.Name: metav1.Now()}
		_, err = r.kube.PolicyV1().PodDisruptionBudgets("apps").UpdateStatus(ctx, b, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsConflict(err) {
			return false, err
		}
		return false, nil
	})
	evictions := func() float64 {
		m, err := apiRequestsByVerb(ctx, r.kube)
		if err != nil {
			t.Fatal(err)
		}
		return m["post pods/eviction"]
	}
	e0 := evictions()
	var evs podEvents
	rep, err := r.run(evs.ctx(ctx, t), t, movePodsRunbook("admitted", ", namespace: apps, timeout: 60s"), runOpts{})
	if err != nil {
		t.Fatalf("run: %v %+v", err, rep)
	}
	requireAllIn(t, "apps", podsOf(ctx, t, r, "apps", ""))
	if n := evictions() - e0; n != 5 {
		t.Errorf("%v evictions served, want 5 (the sixth pod's was admitted already)", n)
	}
	var finished []string
	evs.mu.Lock()
	for _, e := range evs.all {
		if e.Type == "pod.deleted" {
			finished = append(finished, e.Pod+": "+e.Message)
		}
	}
	evs.mu.Unlock()
	if len(finished) != 1 || !strings.HasPrefix(finished[0], "apps/"+victim.Name+": its eviction was admitted earlier") {
		t.Errorf("deletes: %q, want one of apps/%s finishing its admitted eviction", finished, victim.Name)
	}
}
