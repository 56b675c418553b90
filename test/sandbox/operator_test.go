package sandbox_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/sandbox/operator"
	"github.com/runbookdev/runbook/test/scenarios"
)

// A fresh operator install on a kubeadm cluster: the pool lies in the podSubnet,
// so the operator creates it from the Installation.
const operatorScenario = `
apiVersion: sandbox.runbook.dev/v1alpha1
kind: Scenario
name: operator
cluster: {podSubnet: 10.244.0.0/16}
calico:
  ipPools:
  - {name: default-ipv4-ippool, cidr: 10.244.0.0/16, ipipMode: Always, natOutgoing: true}
nodes:
- {name: control-plane, controlPlane: true}
- {name: worker}
workloads:
- {name: web, namespace: shop, replicas: 2}
`

// The operator owns the pools its Installation lists, on both operator
// flavours: a direct edit (disabled: true through v3, natOutgoing) is reverted; a
// nodeSelector edit in the Installation is applied to the pool; a pool added to
// the list is created and one removed from it deleted through the v3 API (which
// disables it first). disableNewAllocations is pruned by v1.34.13's CRD and
// never reaches the pool; v1.40.0 disables the pool. APIServer "default" becomes
// Ready with the calico-apiserver Deployment and stays Ready when the API server
// stops: the operator then fails its v3 writes (Degraded) and deletes nothing
// until the server is back.
func TestOperatorFlavour(t *testing.T) {
	for _, flavour := range sandbox.OperatorFlavours() {
		t.Run(flavour, func(t *testing.T) { testOperatorFlavour(t, flavour) })
	}
}

func testOperatorFlavour(t *testing.T, flavour string) {
	v, _ := sandbox.OperatorVersion(flavour)
	s, err := scenarios.Parse([]byte(operatorScenario))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s, Flavour: flavour})
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	crd := dyn.Resource(operator.CRDPools)
	const name = "default-ipv4-ippool"

	pool, err := crd.Get(ctx, name, metav1.GetOptions{})
	if err != nil || !operator.Managed(pool) {
		t.Fatalf("the Installation's pool: %v, managed=%v", err, err == nil && operator.Managed(pool))
	}
	if state := apiServerState(ctx, t, dyn); state != operator.StateReady {
		t.Fatalf("APIServer default status.state %q after start-up, want Ready", state)
	}

	// A direct edit of a managed pool is reverted: at v1.34.13 spec.disabled is
	// never written by the operator, so every update sets it back to false.
	if _, err := dyn.Resource(operator.V3Pools).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"disabled":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("disabling %s through v3: %v", name, err)
	}
	patchPool(ctx, t, dyn, name, `{"spec":{"natOutgoing":false}}`)
	waitPool(ctx, t, dyn, name, "the direct edits reverted", func(u *unstructured.Unstructured) bool {
		disabled, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled")
		nat, _, _ := unstructured.NestedBool(u.Object, "spec", "natOutgoing")
		return !disabled && nat
	})

	// The Calico doc's "disable" on an operator install: nodeSelector "!all()" in
	// the Installation reaches the pool.
	setInstallationPools(ctx, t, dyn, `[{"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16", "nodeSelector": "!all()"}]`)
	waitPool(ctx, t, dyn, name, "nodeSelector !all() applied", func(u *unstructured.Unstructured) bool {
		sel, _, _ := unstructured.NestedString(u.Object, "spec", "nodeSelector")
		return sel == "!all()"
	})

	// disableNewAllocations: pruned at v1.34.13 (the pool stays enabled, the
	// Installation has no such field), the pool's spec.disabled at v1.40.0.
	setInstallationPools(ctx, t, dyn, `[{"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16", "nodeSelector": "all()", "disableNewAllocations": true}]`)
	entry := installationPool(ctx, t, dyn, 0)
	if _, ok := entry["disableNewAllocations"]; ok != v.DisableNewAllocations {
		t.Errorf("%s: Installation entry %v: disableNewAllocations kept=%v, want %v", v.Name, entry, ok, v.DisableNewAllocations)
	}
	waitPool(ctx, t, dyn, name, "the Installation's selector back, disabled as the release maps it", func(u *unstructured.Unstructured) bool {
		sel, _, _ := unstructured.NestedString(u.Object, "spec", "nodeSelector")
		disabled, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled")
		return sel == "all()" && disabled == v.DisableNewAllocations
	})
	if !v.DisableNewAllocations {
		// Nothing else to wait for: make sure no later pass disables it.
		time.Sleep(time.Second)
		if u, err := crd.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		} else if disabled, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled"); disabled {
			t.Errorf("%s: pool disabled by a pruned disableNewAllocations", v.Name)
		}
	}

	// A pool added to the Installation is created (through the v3 API), one
	// removed from it is deleted through v3: the pool is disabled before it goes.
	twoPools := `[
	  {"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16"},
	  {"name": "extra", "cidr": "10.245.0.0/16", "encapsulation": "VXLAN"}]`
	onePool := `[{"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16"}]`
	setInstallationPools(ctx, t, dyn, twoPools)
	waitPool(ctx, t, dyn, "extra", "the added pool created and managed", func(u *unstructured.Unstructured) bool {
		vxlan, _, _ := unstructured.NestedString(u.Object, "spec", "vxlanMode")
		return operator.Managed(u) && vxlan == "Always"
	})
	w, err := crd.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=extra"})
	if err != nil {
		t.Fatal(err)
	}
	setInstallationPools(ctx, t, dyn, onePool)
	disabledFirst := false
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		if d, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled"); d {
			disabledFirst = true
		}
		if ev.Type == "DELETED" {
			break
		}
	}
	w.Stop()
	if !disabledFirst {
		t.Error("pool extra deleted without being disabled first: not the v3 API's delete")
	}
	waitPoolGone(ctx, t, dyn, "extra")

	// The Calico API server stops: its Deployment becomes unavailable, yet
	// APIServer default stays Ready (the operator never clears it), so the
	// operator keeps trying v3 and fails; it deletes nothing until the server is
	// back, then the pool goes.
	setInstallationPools(ctx, t, dyn, twoPools)
	waitPool(ctx, t, dyn, "extra", "the pool added again", operator.Managed)
	if err := c.Component(sandbox.CalicoAPIServer).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(c.RESTConfig())
	poll(ctx, t, "Deployment calico-apiserver unavailable", func(ctx context.Context) (bool, error) {
		d, err := kube.AppsV1().Deployments(operator.APIServerNamespace).Get(ctx, operator.APIServerDeployment, metav1.GetOptions{})
		return err == nil && d.Status.UnavailableReplicas > 0, nil
	})
	setInstallationPools(ctx, t, dyn, onePool)
	waitTigeraStatus(ctx, t, dyn, "Error creating / updating IPPools")
	if state := apiServerState(ctx, t, dyn); state != operator.StateReady {
		t.Errorf("APIServer default status.state %q with the API server down, want Ready (never cleared)", state)
	}
	if _, err := crd.Get(ctx, "extra", metav1.GetOptions{}); err != nil {
		t.Errorf("pool deleted without the API server: %v", err)
	}
	if err := c.Component(sandbox.CalicoAPIServer).Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitPoolGone(ctx, t, dyn, "extra")
	t.Logf("pool deleted %v after the API server restarted; operator stats %+v", time.Since(start).Round(100*time.Millisecond), c.OperatorStats())
	if err := c.WaitOperatorReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// The Calico doc's cluster under the operator: its pool (192.168.0.0/16) lies
// outside kubeadm's podSubnet, which the operator would refuse on a fresh
// install, so the sandbox builds it as a manifest install migrated to the
// operator: the operator adopts the existing pool that matches its Installation.
func TestOperatorAdoptsManifestPools(t *testing.T) {
	for _, flavour := range sandbox.OperatorFlavours() {
		t.Run(flavour, func(t *testing.T) { testOperatorAdoptsManifestPools(t, flavour) })
	}
}

func testOperatorAdoptsManifestPools(t *testing.T, flavour string) {
	c := sandbox.StartForTest(t, sandbox.Options{Flavour: flavour})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	pool, err := dyn.Resource(operator.CRDPools).Get(ctx, "default-ipv4-ippool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Adopted through the v3 API: the label is in the v3 metadata annotation, not
	// on the crd.projectcalico.org object.
	if !operator.Managed(pool) || pool.GetLabels()[operator.ManagedByLabel] != "" {
		t.Errorf("pool labels %v, annotations %v: want the managed-by label in projectcalico.org/metadata only", pool.GetLabels(), pool.GetAnnotations())
	}
	// Removing it from the Installation deletes it — with the pods still in it.
	setInstallationPools(ctx, t, dyn, `[]`)
	waitPoolGone(ctx, t, dyn, "default-ipv4-ippool")
}

func apiServerState(ctx context.Context, t *testing.T, dyn dynamic.Interface) string {
	t.Helper()
	u, err := dyn.Resource(operator.APIServers).Get(ctx, operator.DefaultName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	state, _, _ := unstructured.NestedString(u.Object, "status", "state")
	return state
}

// installationPool is entry i of the Installation's spec.calicoNetwork.ipPools
// as stored (after pruning).
func installationPool(ctx context.Context, t *testing.T, dyn dynamic.Interface, i int) map[string]any {
	t.Helper()
	u, err := dyn.Resource(operator.Installations).Get(ctx, operator.DefaultName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pools, _, _ := unstructured.NestedSlice(u.Object, "spec", "calicoNetwork", "ipPools")
	if i >= len(pools) {
		t.Fatalf("Installation pools %v: no entry %d", pools, i)
	}
	entry, _ := pools[i].(map[string]any)
	return entry
}

func patchPool(ctx context.Context, t *testing.T, dyn dynamic.Interface, name, patch string) {
	t.Helper()
	if _, err := dyn.Resource(operator.CRDPools).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching pool %s: %v", name, err)
	}
}

// setInstallationPools replaces spec.calicoNetwork.ipPools (a merge patch
// replaces the atomic list whole, which is what editing the Installation does).
func setInstallationPools(ctx context.Context, t *testing.T, dyn dynamic.Interface, pools string) {
	t.Helper()
	var list []any
	if err := json.Unmarshal([]byte(pools), &list); err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"calicoNetwork": map[string]any{"ipPools": list}}})
	if _, err := dyn.Resource(operator.Installations).Patch(ctx, operator.DefaultName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patching the Installation: %v", err)
	}
}

func waitPool(ctx context.Context, t *testing.T, dyn dynamic.Interface, name, what string, cond func(*unstructured.Unstructured) bool) {
	t.Helper()
	poll(ctx, t, what, func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(operator.CRDPools).Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(u), nil
	})
}

func waitPoolGone(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string) {
	t.Helper()
	poll(ctx, t, "pool "+name+" deleted", func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(operator.CRDPools).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func waitTigeraStatus(ctx context.Context, t *testing.T, dyn dynamic.Interface, message string) {
	t.Helper()
	var last any
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(operator.TigeraStatuses).Get(ctx, operator.StatusName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		last = conditions
		for _, c := range conditions {
			c, _ := c.(map[string]any)
			if c["type"] == "Degraded" && c["status"] == "True" && strings.Contains(c["message"].(string), message) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("TigeraStatus %s never Degraded with %q: %v", operator.StatusName, message, last)
	}
}
