package e2e

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestPoolActions runs the Calico pool actions through the engine on a sandbox of
// their own (the default scenario: pods in default-ipv4-ippool 192.168.0.0/16,
// cluster CIDR 10.0.0.0/16). The subtests run in order on one cluster: the
// refusals and the rolled-back run must leave it as they found it, and the
// migration at the end relies on that.
func TestPoolActions(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r := newPoolRig(ctx, t, c)

	// The real calico-node allocator (node/pkg/allocateip) gives every node an IPIP
	// tunnel address from the IPIP pool.
	tunnelIP, err := netip.ParseAddr(nodeAnnotation(ctx, t, r, "worker-1", ipipTunnelAnnotation))
	if err != nil {
		t.Fatalf("worker-1 has no IPIP tunnel address: %v", err)
	}
	t.Logf("worker-1 IPIP tunnel address %s", tunnelIP)

	steps := []struct {
		name string
		fn   func(context.Context, *testing.T, *poolRig, netip.Addr)
	}{
		{"refusals leave the cluster unchanged", testRefusals},
		{"skipping the pod move: deletePool refused, rollback restores", testSkipMoveRollsBack},
		{"migration converges and re-runs unchanged", testMigrationConverges},
		{"verification namespace cleaned up on resume after a crash", testVerifyCleanupAfterCrash},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.fn(ctx, t, r, tunnelIP) }) {
			return // later steps build on the state earlier ones leave
		}
	}
}

const overlapRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: overlap}
steps:
  - id: add
    action: ensurePool
    # clusterCIDR given so that the overlap is the only problem.
    with: {name: overlapping, cidr: 192.168.128.0/24, clusterCIDR: 192.168.0.0/16}
`

const outsideRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: outside}
steps:
  - id: add
    action: ensurePool
    with: {name: outside, cidr: 172.16.0.0/16, ipipMode: Always}
`

const immutableRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: immutable}
steps:
  - id: converge
    action: ensurePool
    with: {name: default-ipv4-ippool, cidr: 192.168.0.0/16, blockSize: 24, ipipMode: Always, natOutgoing: true}
`

const noTunnelPoolRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: no-tunnel-pool}
steps:
  - id: disable-old-pool
    action: disablePool
    with: {name: default-ipv4-ippool}
`

// A new pool without IPIP does not take over IPIP tunnel addresses: the disable is
// refused, and the rollback removes the pool this run created.
const wrongEncapRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: wrong-encap}
steps:
  - id: add-new-pool
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, vxlanMode: Always}
    rollback: auto
  - id: disable-old-pool
    action: disablePool
    with: {name: default-ipv4-ippool}
    rollback: auto
`

func testRefusals(ctx context.Context, t *testing.T, r *poolRig, tunnelIP netip.Addr) {
	before := clusterState(ctx, t, r, true)
	beforeNoTunnels := r.state(ctx, t, stateOpts{withoutTunnels: true})

	refused := func(src, stepID string, want ...string) {
		t.Helper()
		rep, err := r.run(ctx, t, src, runOpts{})
		if exitcode.Of(err) != exitcode.StepFailed {
			t.Fatalf("want a failed run, got %v (%+v)", err, rep)
		}
		s := step(t, rep, stepID)
		mustContain(t, "step "+stepID+" error", s.Error, append([]string{actions.ErrRefused.Error()}, want...)...)
		t.Logf("%s: %s", stepID, s.Error)
		requireUnchanged(t, before, clusterState(ctx, t, r, true))
	}

	t.Run("overlap", func(t *testing.T) {
		refused(overlapRunbook, "add", "CIDR 192.168.128.0/24 overlaps pool default-ipv4-ippool (192.168.0.0/16)")
	})
	t.Run("outside the cluster CIDR", func(t *testing.T) {
		// Every source the sandbox publishes, as kubeadm would, is found and named.
		refused(outsideRunbook, "add",
			"CIDR 172.16.0.0/16 is outside the cluster pod CIDR 10.0.0.0/16 (kubeadm-config networking.podSubnet)",
			"(kube-proxy clusterCIDR)",
			"(kube-controller-manager --cluster-cidr (pod kube-system/kube-controller-manager-control-plane))")
	})
	t.Run("a live pool converges on the given fields only; a live change is refused", func(t *testing.T) {
		// Issue #15 item 2: the defaults (ipipMode Never, natOutgoing false) must
		// not be imposed on default-ipv4-ippool (IPIP Always, NAT on, pods in it).
		rep, err := r.run(ctx, t, liveNoFieldsRunbook, runOpts{})
		if err != nil {
			t.Fatalf("converging with no field given: %v", err)
		}
		if s := step(t, rep, "converge"); s.Changed {
			t.Fatalf("converging with no field given changed the pool: %+v", s)
		}
		requireUnchanged(t, before, clusterState(ctx, t, r, true))
		refused(liveChangeRunbook, "converge", "changing natOutgoing: true -> false on pool default-ipv4-ippool, which holds",
			"pod(s)", "node tunnel address(es)", "worker-1", "allowLiveChange: true")
	})
	t.Run("immutable blockSize", func(t *testing.T) {
		refused(immutableRunbook, "converge", "pool default-ipv4-ippool exists with blockSize 26, not 24 (blockSize is immutable)")
	})
	t.Run("no tunnel pool", func(t *testing.T) {
		refused(noTunnelPoolRunbook, "disable-old-pool",
			"node worker-1 loses its ipip tunnel address "+tunnelIP.String(),
			"node control-plane loses its ipip tunnel address", // no address published yet, still served by the pool
			"node worker-2 loses its ipip tunnel address")
	})
	t.Run("no tunnel pool after adding a VXLAN pool: refused and rolled back", func(t *testing.T) {
		rep, err := r.run(ctx, t, wrongEncapRunbook, runOpts{})
		if exitcode.Of(err) != exitcode.RolledBack {
			t.Fatalf("want rolled back, got %v (%+v)", err, rep)
		}
		mustContain(t, "disable error", step(t, rep, "disable-old-pool").Error, actions.ErrRefused.Error(), "node worker-1 loses its ipip tunnel address")
		mustContain(t, "add-new-pool rollback", step(t, rep, "add-new-pool").Rollback, "deleted pool new-pool, created by this run")
		mustContain(t, "disable-old-pool rollback", step(t, rep, "disable-old-pool").Rollback, "is enabled")
		// The pool came and went (with calico-node, the VXLAN tunnel addresses it gave
		// the nodes went with it); nothing else was touched.
		requireUnchanged(t, r.state(ctx, t, stateOpts{withoutTunnels: true}), beforeNoTunnels)
	})
	t.Run("unknown field is an error, not silently dropped", func(t *testing.T) {
		// Its own baseline: the rollback above may have restarted calico-node on a
		// node whose daemon missed the pool's disable (allocateip v3.28 drops a
		// pool update that arrives during a reconciliation; the inverse of
		// ensurePool restarts calico-node there after 20 s), a new pod for the same
		// DaemonSet.
		before := clusterState(ctx, t, r, true)
		cal := calicoClient(ctx, t, r)
		// assignmentMode and namespaceSelector exist in newer Calico releases; this
		// sandbox installs v3.28's CRDs, which do not know them.
		_, err := cal.CreatePool(ctx, "strict-probe", map[string]any{"cidr": "10.0.64.0/18", "assignmentMode": "Automatic"}, nil)
		mustContain(t, "create error", errString(err), `unknown field "spec.assignmentMode"`)
		_, err = cal.PatchPool(ctx, "default-ipv4-ippool", calico.PoolPatch{Spec: map[string]any{"namespaceSelector": "all()", "natOutgoing": false}})
		mustContain(t, "patch error", errString(err), `unknown field "spec.namespaceSelector"`)
		requireUnchanged(t, before, clusterState(ctx, t, r, true))
	})
}

const skipMoveRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: skip-move}
onFailure: rollback
steps:
  - id: add-new-pool
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: true}
    rollback: auto
  - id: disable-old-pool
    action: disablePool
    with: {name: default-ipv4-ippool}
    rollback: auto
  - id: delete-old-pool
    action: deletePool
    with: {name: default-ipv4-ippool}
`

func testSkipMoveRollsBack(ctx context.Context, t *testing.T, r *poolRig, tunnelIP netip.Addr) {
	before := r.state(ctx, t, stateOpts{withoutTunnels: true})
	rep, err := r.run(ctx, t, skipMoveRunbook, runOpts{})
	if exitcode.Of(err) != exitcode.RolledBack || rep.Status != engine.StatusRolledBack {
		t.Fatalf("want rolled back, got %v (%+v)", err, rep)
	}
	del := step(t, rep, "delete-old-pool")
	mustContain(t, "deletePool error", del.Error, actions.ErrRefused.Error(),
		"pod(s) still have addresses in pool default-ipv4-ippool (192.168.0.0/16)", "shop/frontend-", "payments/ledger-",
		"IPAM allocation(s) in 192.168.0.0/16", "(pod kube-system/coredns-")
	mustContain(t, "disable rollback", step(t, rep, "disable-old-pool").Rollback, "re-enabled pool default-ipv4-ippool")
	mustContain(t, "add rollback", step(t, rep, "add-new-pool").Rollback, "deleted pool new-pool, created by this run")

	if r.pool(ctx, t, "new-pool") != nil {
		t.Error("new-pool is still there after the rollback")
	}
	old := r.pool(ctx, t, "default-ipv4-ippool")
	if disabled, _, _ := unstructured.NestedBool(old.Object, "spec", "disabled"); disabled {
		t.Error("default-ipv4-ippool is still disabled after the rollback")
	}
	if _, ok := old.GetAnnotations()[calico.AnnotationDisabledByRun]; ok {
		t.Error("the disabled-by annotation survived the re-enable")
	}
	// Same pools, blocks, affinities, handles, pods and namespaces as before (the
	// old pool's resourceVersion moved: disabled, then re-enabled; with calico-node
	// the tunnel addresses moved to new-pool and back, to other addresses).
	requireUnchanged(t, before, r.state(ctx, t, stateOpts{withoutTunnels: true}))
}

const migrationRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: migrate}
onFailure: rollback
params:
  oldPool: {type: string, default: default-ipv4-ippool}
  newPool: {type: string, default: new-pool}
steps:
  - id: add-new-pool
    action: ensurePool
    with: {name: "${{ params.newPool }}", cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: true}
    rollback: auto
  - id: disable-old-pool
    action: disablePool
    with: {name: "${{ params.oldPool }}"}
    require: pool(params.newPool) != nil && !pool(params.newPool).disabled
    rollback: auto
  - id: verify
    action: assertNewAllocations
    with: {pool: "${{ params.newPool }}", namespace: ippool-test, timeout: 2m}
  # calico-node v3.28 can miss the disable (a pool update during a reconcile is
  # dropped): the addresses it left behind get calico-node restarted.
  - id: move-tunnels
    action: moveTunnelAddresses
    with: {pool: "${{ params.oldPool }}"}
  - id: delete-old-pool
    action: deletePool
    with: {name: "${{ params.oldPool }}"}
    require: len(podsInPool(params.oldPool)) == 0 && len(allocations(params.oldPool)) == 0 && len(tunnelAddresses(params.oldPool)) == 0
`

func testMigrationConverges(ctx context.Context, t *testing.T, r *poolRig, _ netip.Addr) {
	// Phase 1: only the new pool.
	rep, err := r.run(ctx, t, migrationRunbook, runOpts{stopBefore: "disable-old-pool"})
	if exitcode.Of(err) != exitcode.Interrupted || rep.Status != engine.StatusStopped {
		t.Fatalf("phase 1: %v (%+v)", err, rep)
	}
	if s := step(t, rep, "add-new-pool"); !s.Changed || !strings.Contains(s.Message, "created pool new-pool 10.0.0.0/16") {
		t.Errorf("add-new-pool: %+v", s)
	}
	newPoolObj := r.pool(ctx, t, "new-pool")
	if got := newPoolObj.GetAnnotations()[calico.AnnotationCreatedByRun]; got != rep.RunID {
		t.Errorf("new-pool created-by annotation %q, want run %s", got, rep.RunID)
	}
	spec, _, _ := unstructured.NestedMap(newPoolObj.Object, "spec")
	for k, want := range map[string]any{"cidr": "10.0.0.0/16", "blockSize": int64(26), "nodeSelector": "all()", "ipipMode": "Always", "vxlanMode": "Never", "natOutgoing": true} {
		if spec[k] != want {
			t.Errorf("new-pool spec.%s = %v, want %v", k, spec[k], want)
		}
	}
	if j := r.journal(ctx, t, "migrate"); len(j.Steps["add-new-pool"].Created) != 1 || j.Steps["add-new-pool"].Intent["create"] != "new-pool" {
		t.Errorf("journal of add-new-pool: %+v", j.Steps["add-new-pool"].Record)
	}

	// The plan of the disable announces where every tunnel address goes.
	planner := r.bound.Impls["disablePool"].(actions.Planner)
	pl, err := planner.Plan(ctx, &actions.Call{StepID: "disable-old-pool", With: map[string]any{"name": "default-ipv4-ippool"}})
	if err != nil || pl.Change != "update" {
		t.Fatalf("plan of the disable: %+v %v", pl, err)
	}
	// worker-1's address now (calico-node gives it a new one whenever pools change).
	tunnelIP := netip.MustParseAddr(nodeAnnotation(ctx, t, r, "worker-1", ipipTunnelAnnotation))
	warnings := strings.Join(pl.Warnings, "\n")
	mustContain(t, "plan warnings", warnings, "node worker-1: its ipip tunnel address "+tunnelIP.String()+" moves to pool [new-pool]")
	for _, n := range []string{"control-plane", "worker-2"} {
		// Their address is only known with calico-node running: either way it moves.
		if !regexp.MustCompile(`node ` + n + `: its ipip tunnel address [0-9.]*\s?moves to pool \[new-pool\]`).MatchString(warnings) {
			t.Errorf("plan warnings do not announce %s's tunnel address move:\n%s", n, warnings)
		}
	}

	// Phase 2: disable the old pool and verify new pods get new-pool addresses.
	rep, err = r.run(ctx, t, migrationRunbook, runOpts{stopBefore: "delete-old-pool"})
	if exitcode.Of(err) != exitcode.Interrupted || !rep.Resumed {
		t.Fatalf("phase 2: %v (%+v)", err, rep)
	}
	if s := step(t, rep, "disable-old-pool"); !s.Changed {
		t.Errorf("disable-old-pool: %+v", s)
	}
	verify := r.journal(ctx, t, "migrate").Steps["verify"]
	ips, _ := verify.Outputs["ips"].([]any)
	if verify.Status != engine.StatusDone || len(ips) != 2 { // worker-1, worker-2; the control plane is tainted
		t.Fatalf("verify: %+v", verify)
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.(string)); err != nil || !newPool.Contains(a) {
			t.Errorf("verify output %v is not in %s", ip, newPool)
		}
	}
	if _, err := r.kube.CoreV1().Namespaces().Get(ctx, "ippool-test", metav1.GetOptions{}); err == nil {
		t.Error("the verification namespace was not cleaned up")
	}

	// Between the phases, what other components do: calico-node has moved the
	// tunnel addresses out of the disabled pool (by itself, or restarted by
	// move-tunnels), and the pods are moved (#6).
	waitFor(ctx, t, "calico-node moved every tunnel address out of "+oldPool.String(), func(ctx context.Context) (bool, error) {
		nodes, err := r.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, n := range nodes.Items {
			if a, err := netip.ParseAddr(n.Annotations[ipipTunnelAnnotation]); err != nil || !newPool.Contains(a) {
				return false, nil
			}
		}
		return true, nil
	})
	r.movePods(ctx, t, oldPool)

	// Phase 3: delete the old pool (resumes the same run).
	rep, err = r.run(ctx, t, migrationRunbook, runOpts{})
	if err != nil || !rep.Resumed || rep.Status != engine.StatusDone {
		t.Fatalf("phase 3: %v (%+v)", err, rep)
	}
	mustContain(t, "delete-old-pool", step(t, rep, "delete-old-pool").Message, "deleted pool default-ipv4-ippool (192.168.0.0/16)", "released")
	if r.pool(ctx, t, "default-ipv4-ippool") != nil {
		t.Fatal("default-ipv4-ippool still exists")
	}
	for _, gvr := range []schema.GroupVersionResource{ipamblocks, blockaffinities} {
		l, err := r.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			cidr, _, _ := unstructured.NestedString(o.Object, "spec", "cidr")
			if p, err := netip.ParsePrefix(cidr); err == nil && oldPool.Overlaps(p) {
				t.Errorf("%s %s of the deleted pool is left behind", gvr.Resource, cidr)
			}
		}
	}

	// A re-run is a new run that changes nothing.
	rep, err = r.run(ctx, t, migrationRunbook, runOpts{})
	if err != nil || rep.Resumed || rep.Status != engine.StatusDone {
		t.Fatalf("re-run: %v (%+v)", err, rep)
	}
	for _, s := range rep.Steps {
		if s.Changed || s.Status != engine.StatusDone {
			t.Errorf("re-run: step %s %s changed=%v: %s", s.ID, s.Status, s.Changed, s.Message)
		}
		t.Logf("re-run: %s: %s", s.ID, s.Message)
	}

	testConvergeOwnedFieldsOnly(ctx, t, r)
}

const convergeRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: converge}
steps:
  - id: converge
    action: ensurePool
    with: {name: new-pool, cidr: 10.0.0.0/16, ipipMode: Always, natOutgoing: false, allowLiveChange: true}
`

const liveNoFieldsRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: live-no-fields}
steps:
  - id: converge
    action: ensurePool
    with: {name: default-ipv4-ippool, cidr: 192.168.0.0/16}
`

const liveChangeRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: live-change}
steps:
  - id: converge
    action: ensurePool
    with: {name: default-ipv4-ippool, cidr: 192.168.0.0/16, natOutgoing: false}
`

// testConvergeOwnedFieldsOnly: converging an existing pool patches the differing
// owned field and nothing else; a second run is unchanged.
func testConvergeOwnedFieldsOnly(ctx context.Context, t *testing.T, r *poolRig) {
	// Someone else's label on the pool must survive.
	if _, err := r.dyn.Resource(ippools).Patch(ctx, "new-pool", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"team":"network"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.run(ctx, t, convergeRunbook, runOpts{})
	if err != nil {
		t.Fatalf("converge: %v", err)
	}
	if s := step(t, rep, "converge"); !s.Changed || s.Message != "updated pool new-pool: natOutgoing: true -> false" {
		t.Errorf("converge: %+v", s)
	}
	p := r.pool(ctx, t, "new-pool")
	if nat, _, _ := unstructured.NestedBool(p.Object, "spec", "natOutgoing"); nat || p.GetLabels()["team"] != "network" {
		t.Errorf("after converge: natOutgoing %v, labels %v", nat, p.GetLabels())
	}
	rep, err = r.run(ctx, t, convergeRunbook, runOpts{})
	if err != nil || step(t, rep, "converge").Changed {
		t.Errorf("second converge: %v %+v", err, rep)
	}
}

func calicoClient(ctx context.Context, t *testing.T, r *poolRig) calico.Client {
	t.Helper()
	cal, err := calico.NewCRD(ctx, r.kube, r.dyn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cal.Close)
	return cal
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

const crashVerifyRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: crash-verify}
steps:
  - id: verify
    action: assertNewAllocations
    with: {pool: new-pool, namespace: ippool-crash, timeout: 2m}
`

// testVerifyCleanupAfterCrash leaves what a process killed inside
// assertNewAllocations leaves — a journal with the step running and the namespace
// intent recorded, the namespace and one test pod — and resumes: the step reuses
// its namespace (and pod), finishes, and cleanup deletes the namespace. Then the
// same with the process killed after the step but before cleanup. A namespace of
// someone else's is refused and never deleted.
func testVerifyCleanupAfterCrash(ctx context.Context, t *testing.T, r *poolRig, _ netip.Addr) {
	const ns = "ippool-crash"
	for _, stepStatus := range []string{engine.StatusRunning, engine.StatusDone} {
		t.Run("killed with the step "+stepStatus, func(t *testing.T) {
			journal := "crash-" + stepStatus
			runID := r.crashedRun(ctx, t, crashVerifyRunbook, journal, "verify", stepStatus, map[string]string{"namespace": ns})
			r.createNamespace(ctx, t, ns, map[string]string{calico.LabelRunID: runID, calico.LabelManagedBy: "runbook"})
			if stepStatus == engine.StatusRunning {
				// The killed attempt had created worker-1's test pod.
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe-worker-1", Namespace: ns, Labels: map[string]string{calico.LabelRunID: runID}},
					Spec: corev1.PodSpec{NodeName: "worker-1", Containers: []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}}}}
				if _, err := r.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := r.run(ctx, t, crashVerifyRunbook, runOpts{journal: journal})
			if err != nil || !rep.Resumed || rep.RunID != runID || rep.Status != engine.StatusDone {
				t.Fatalf("resume: %v (%+v)", err, rep)
			}
			if _, err := r.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("namespace %s not cleaned up after the resume: %v", ns, err)
			}
		})
	}
	t.Run("someone else's namespace", func(t *testing.T) {
		r.createNamespace(ctx, t, ns, map[string]string{"team": "shop"})
		rep, err := r.run(ctx, t, crashVerifyRunbook, runOpts{journal: "foreign"})
		if exitcode.Of(err) != exitcode.StepFailed {
			t.Fatalf("want refused, got %v (%+v)", err, rep)
		}
		mustContain(t, "verify error", step(t, rep, "verify").Error, actions.ErrRefused.Error(), "namespace ippool-crash exists and was not created by this run")
		if _, err := r.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Fatalf("someone else's namespace was touched: %v", err)
		}
	})
}
