package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestFlavourOperator runs the example migration, unchanged, on an operator
// install (the doc's cluster migrated to tigera-operator: its pool is listed in
// Installation default and owned by the operator's pool controller), on both
// operator flavours: v1.34.13, the release Calico v3.28.5 ships, where the old
// pool is disabled by nodeSelector "!all()", and v1.40.0, where it is disabled
// by disableNewAllocations.
// The pools are changed only through the Installation, and every refusal leaves
// the pools and the Installation as they were: the operator's APIServer not
// Ready, another field manager owning the pool list, an operator-managed pool
// edited behind the operator's back. A failed run rolls back through the
// Installation too; the migration converges and re-runs unchanged.
func TestFlavourOperator(t *testing.T) {
	for _, flavour := range sandbox.OperatorFlavours() {
		t.Run(flavour, func(t *testing.T) { testFlavourOperator(t, flavour) })
	}
}

func testFlavourOperator(t *testing.T, flavour string) {
	v, _ := sandbox.OperatorVersion(flavour)
	// How disable-old-pool disables the old pool's entry on this release.
	disableHow := "set disableNewAllocations: true on the entry of operator-managed pool default-ipv4-ippool"
	if !v.DisableNewAllocations {
		disableHow = `set nodeSelector: "!all()" (this operator's Installation has no disableNewAllocations) on the entry of operator-managed pool default-ipv4-ippool`
	}
	r := newFlavourRig(t, flavour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	r.waitOperatorReady(ctx, t)

	res, _ := r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
	res.Must(t, 4, "add pool new-pool 10.0.0.0/16", "to Installation default spec.calicoNetwork.ipPools")
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", operatorValues, "-o", "json")
	res.Must(t, 4, "tigera-operator Installation API served")

	t.Run("the Calico API server down, APIServer still Ready: refused, nothing changed", func(t *testing.T) {
		if err := r.c.Component(sandbox.CalicoAPIServer).Stop(ctx); err != nil {
			t.Fatal(err)
		}
		waitCond(ctx, t, "APIService v3.projectcalico.org not Available", 2*time.Minute, func(ctx context.Context) (bool, error) {
			u, err := r.dyn.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}).Get(ctx, "v3.projectcalico.org", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Available" {
					return m["status"] != "True", nil
				}
			}
			return false, nil
		})
		if state := r.apiServerState(ctx); state != "Ready" {
			t.Fatalf("APIServer default is %q during an outage; the operator never clears Ready", state)
		}
		r.requireRefusedWhileAPIServerDown(ctx, t, []string{"APIService v3.projectcalico.org is not Available", "the operator never clears it"}, "APIService v3.projectcalico.org is not Available")
	})

	t.Run("APIServer not Ready: refused, nothing changed", func(t *testing.T) {
		if err := r.c.Component(sandbox.CalicoAPIServer).Stop(ctx); err != nil {
			t.Fatal(err)
		}
		// The operator sets APIServer default Ready once the calico-apiserver
		// Deployment is available and never clears it (both releases), so an
		// outage alone leaves it Ready. Not Ready is an install whose API server
		// has not been available since APIServer default was created: that
		// state, with the Deployment unavailable, so the operator keeps it.
		// (An outage with APIServer still Ready is the case above.)
		waitCond(ctx, t, "Deployment calico-apiserver unavailable", 2*time.Minute, func(ctx context.Context) (bool, error) {
			d, err := r.kube.AppsV1().Deployments("calico-apiserver").Get(ctx, "calico-apiserver", metav1.GetOptions{})
			return err == nil && d.Status.UnavailableReplicas > 0, nil
		})
		r.clearAPIServerState(ctx, t)
		r.requireRefusedWhileAPIServerDown(ctx, t, []string{"APIServer default is not Ready", "the operator changes IP pools only while its Calico API server is Ready"}, "APIServer default is not Ready")
	})

	t.Run("another field manager owns the pool list: refused", func(t *testing.T) {
		before := r.poolsState(ctx, t, true)
		r.applyInstallationPools(ctx, t, "argocd-controller", true)
		res, _ := r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
		res.Must(t, 11, `field manager "argocd-controller" (Argo CD, Apply)`, "which would revert runbook's edit")
		requireUnchanged(t, before, r.poolsState(ctx, t, true))
		r.applyInstallationPools(ctx, t, "argocd-controller", false) // Argo CD lets go of the field
		requireUnchanged(t, before, r.poolsState(ctx, t, true))
		res, _ = r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
		res.Must(t, 4)
	})

	t.Run("a failed run rolls back through the Installation", func(t *testing.T) {
		before := r.poolsState(ctx, t, false)
		rb := filepath.Join(r.dir, "skip-move.yaml")
		if err := os.WriteFile(rb, []byte(skipMoveRunbook), 0o644); err != nil {
			t.Fatal(err)
		}
		res, rep := r.cli(t, "apply", rb, "--yes")
		res.Must(t, 6)
		mustContain(t, "deletePool error", step(t, rep, "delete-old-pool").Error, "refused, nothing was changed",
			"pod(s) still have addresses in pool default-ipv4-ippool (192.168.0.0/16)")
		mustContain(t, "disable rollback", step(t, rep, "disable-old-pool").Rollback, "re-enabled operator-managed pool default-ipv4-ippool through Installation default")
		mustContain(t, "add rollback", step(t, rep, "add-new-pool").Rollback, "removed pool new-pool, added by this run, from Installation default")
		if _, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "new-pool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("new-pool after the rollback: %v", err)
		}
		// The same pools and Installation list (the old pool's resourceVersion
		// moved: the operator disabled and re-enabled it).
		requireUnchanged(t, before, r.poolsState(ctx, t, false))
	})

	// Phase 1 of the migration: the new pool, created by the operator.
	res, rep := r.cli(t, "apply", exampleRunbook, "-f", operatorValues, "--yes", "--stop-before", "disable-old-pool")
	res.Must(t, 8)
	mustContain(t, "add-new-pool", step(t, rep, "add-new-pool").Message, "added pool new-pool 10.0.0.0/16", "the tigera-operator created it in")
	if lbl := r.v3Pool(ctx, t, "new-pool").GetLabels()[calico.LabelManagedBy]; lbl != calico.ManagedByOperator {
		t.Errorf("new-pool managed-by %q: not the operator's", lbl)
	}
	inst := r.installation(ctx, t)
	if !strings.Contains(inst.GetAnnotations()[calico.AnnotationPoolsCreatedByRun], rep.RunID) {
		t.Errorf("Installation annotations %v lack the run", inst.GetAnnotations())
	}
	// The update was runbook's (its record on the Installation is its field);
	// the list itself passes to the operator's manager when it writes defaults.
	requireOwns(t, inst, "runbook", `"f:`+calico.AnnotationPoolsCreatedByRun+`"`)
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
	res.Must(t, 4, disableHow)

	t.Run("operator-managed pool edited behind the operator's back: detected", func(t *testing.T) {
		// With the operator stopped nothing reverts the edit at once (it would in
		// ~0.2 s): the state a run can meet between two operator passes, or with
		// an operator that is not reconciling.
		if err := r.c.Component(sandbox.Operator).Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.dyn.Resource(gvrV3Pools).Patch(ctx, "default-ipv4-ippool", types.MergePatchType,
			[]byte(`{"spec":{"natOutgoing":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		before := r.poolsState(ctx, t, true)
		res, _ := r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
		res.Must(t, 11, "operator-managed pool default-ipv4-ippool differs from its entry in Installation default (natOutgoing: Installation true, pool false)",
			"edited behind the operator's back")
		requireUnchanged(t, before, r.poolsState(ctx, t, true))
		if err := r.c.Component(sandbox.Operator).Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitCond(ctx, t, "the operator reverting the edit", 2*time.Minute, func(ctx context.Context) (bool, error) {
			p, err := r.dyn.Resource(gvrV3Pools).Get(ctx, "default-ipv4-ippool", metav1.GetOptions{})
			nat, _, _ := unstructured.NestedBool(p.Object, "spec", "natOutgoing")
			return err == nil && nat, nil
		})
		r.waitOperatorReady(ctx, t)
	})

	// The rest of the migration (the stopped run resumes).
	res, rep = r.cli(t, "apply", exampleRunbook, "-f", operatorValues, "--yes")
	res.Must(t, 0)
	steps := []string{"disable-old-pool", "move-pods", "verify", "delete-old-pool"}
	if !v.DisableNewAllocations {
		// v1.34.13 disables by nodeSelector "!all()", which calico-node (allocateip)
		// ignores: move-tunnels restarts it node by node (#16).
		steps = append(steps, "move-tunnels")
		mustContain(t, "move-tunnels", step(t, rep, "move-tunnels").Message, "restarted calico-node on 3 node(s), one at a time")
	}
	for _, id := range steps {
		if s := step(t, rep, id); s.Status != "done" || !s.Changed && id != "verify" {
			t.Errorf("step %s: %s changed=%t %s %s", id, s.Status, s.Changed, s.Message, s.Error)
		}
	}
	mustContain(t, "delete-old-pool", step(t, rep, "delete-old-pool").Message, "removed operator-managed pool default-ipv4-ippool (192.168.0.0/16) from Installation default")
	r.requirePodsMoved(ctx, t)
	if _, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "default-ipv4-ippool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old pool after the migration: %v", err)
	}
	pools, _, _ := unstructured.NestedSlice(r.installation(ctx, t).Object, "spec", "calicoNetwork", "ipPools")
	if len(pools) != 1 || pools[0].(map[string]any)["name"] != "new-pool" {
		t.Errorf("Installation pools after the migration: %v", pools)
	}

	res, rep = r.cli(t, "apply", exampleRunbook, "-f", operatorValues, "--yes")
	res.Must(t, 0)
	requireAllUnchanged(t, rep)
	t.Logf("operator stats %+v", r.c.OperatorStats())
}

// requireRefusedWhileAPIServerDown: with the Calico API server stopped, plan is
// refused (exit 11, naming planWant) and apply refused with nothing changed
// (exit 6, naming applyWant); then the API server is started again.
func (r *flavourRig) requireRefusedWhileAPIServerDown(ctx context.Context, t *testing.T, planWant []string, applyWant string) {
	t.Helper()
	before := r.poolsState(ctx, t, true)
	res, _ := r.cli(t, "plan", exampleRunbook, "-f", operatorValues)
	res.Must(t, 11, planWant...)
	res, rep := r.cli(t, "apply", exampleRunbook, "-f", operatorValues, "--yes")
	res.Must(t, 6, applyWant)
	if s := step(t, rep, "add-new-pool"); !strings.Contains(s.Error, "refused, nothing was changed") {
		t.Errorf("add-new-pool: %+v", s)
	}
	requireUnchanged(t, before, r.poolsState(ctx, t, true))
	if err := r.c.Component(sandbox.CalicoAPIServer).Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitOperatorReady(ctx, t)
}

// clearAPIServerState empties APIServer default status.state, as it is until
// the operator first sees its API server available.
func (r *flavourRig) clearAPIServerState(ctx context.Context, t *testing.T) {
	t.Helper()
	u, err := r.dyn.Resource(gvrOpAPIServers).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(u.Object, "status", "state")
	if _, err := r.dyn.Resource(gvrOpAPIServers).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCond(ctx, t, "APIServer default not Ready", time.Minute, func(ctx context.Context) (bool, error) {
		return r.apiServerState(ctx) != "Ready", nil
	})
}

func (r *flavourRig) apiServerState(ctx context.Context) string {
	u, err := r.dyn.Resource(gvrOpAPIServers).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	s, _, _ := unstructured.NestedString(u.Object, "status", "state")
	return s
}

// waitOperatorReady waits until the operator changes pools again: APIServer
// Ready and its pool controller Available.
func (r *flavourRig) waitOperatorReady(ctx context.Context, t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := r.c.WaitOperatorReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the operator ready after %v", time.Since(start).Round(100*time.Millisecond))
}

func (r *flavourRig) installation(ctx context.Context, t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u, err := r.dyn.Resource(gvrInstallations).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// applyInstallationPools makes manager a server-side apply owner of the pool
// list (own: the current list, forced, as Argo CD syncs), or lets go of it.
func (r *flavourRig) applyInstallationPools(ctx context.Context, t *testing.T, manager string, own bool) {
	t.Helper()
	obj := map[string]any{"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": map[string]any{"name": "default"}}
	if own {
		pools, _, _ := unstructured.NestedSlice(r.installation(ctx, t).Object, "spec", "calicoNetwork", "ipPools")
		obj["spec"] = map[string]any{"calicoNetwork": map[string]any{"ipPools": pools}}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	force := true
	if _, err := r.dyn.Resource(gvrInstallations).Patch(ctx, "default", types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: manager, Force: &force}); err != nil {
		t.Fatalf("server-side apply as %s: %v", manager, err)
	}
}

// requireOwns asserts manager owns a field (its managedFields JSON holds field).
func requireOwns(t *testing.T, inst *unstructured.Unstructured, manager, field string) {
	t.Helper()
	for _, mf := range inst.GetManagedFields() {
		if mf.Manager == manager && mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), field) {
			return
		}
	}
	t.Errorf("%s does not own %s of the Installation", manager, field)
}
