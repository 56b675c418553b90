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

// The operator owns the pools its Installation lists: a direct edit is reverted,
// a pool added to the list is created and one removed from it deleted — the
// latter only while the Calico API server is up; without it the operator
// reports Degraded and waits.
func TestOperatorFlavour(t *testing.T) {
	s, err := scenarios.Parse([]byte(operatorScenario))
	if err != nil {
		t.Fatal(err)
	}
	c := sandbox.StartForTest(t, sandbox.Options{Scenario: s, Flavour: sandbox.FlavourOperator})
	for _, tm := range c.Timings() {
		t.Logf("%-28s %v", tm.Phase, tm.Duration.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig())
	crd := dyn.Resource(operator.CRDPools)

	pool, err := crd.Get(ctx, "default-ipv4-ippool", metav1.GetOptions{})
	if err != nil || !operator.Managed(pool) {
		t.Fatalf("the Installation's pool: %v, managed=%v", err, err == nil && operator.Managed(pool))
	}

	// A direct edit of a managed pool is reverted.
	patchPool(ctx, t, dyn, "default-ipv4-ippool", `{"spec":{"disabled":true,"natOutgoing":false}}`)
	waitPool(ctx, t, dyn, "default-ipv4-ippool", "the direct edit reverted", func(u *unstructured.Unstructured) bool {
		disabled, _, _ := unstructured.NestedBool(u.Object, "spec", "disabled")
		nat, _, _ := unstructured.NestedBool(u.Object, "spec", "natOutgoing")
		return !disabled && nat
	})

	// A pool added to the Installation is created (through the v3 API), one
	// removed from it is deleted.
	twoPools := `[
	  {"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16"},
	  {"name": "extra", "cidr": "10.245.0.0/16", "encapsulation": "VXLAN"}]`
	onePool := `[{"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16"}]`
	setInstallationPools(ctx, t, dyn, twoPools)
	waitPool(ctx, t, dyn, "extra", "the added pool created and managed", func(u *unstructured.Unstructured) bool {
		vxlan, _, _ := unstructured.NestedString(u.Object, "spec", "vxlanMode")
		return operator.Managed(u) && vxlan == "Always"
	})
	setInstallationPools(ctx, t, dyn, onePool)
	waitPoolGone(ctx, t, dyn, "extra")

	// Without the Calico API server the operator deletes nothing and says why;
	// once it is back, the pool goes.
	setInstallationPools(ctx, t, dyn, twoPools)
	waitPool(ctx, t, dyn, "extra", "the pool added again", operator.Managed)
	if err := c.Component(sandbox.CalicoAPIServer).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "APIServer default no longer Ready", func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(operator.APIServers).Get(ctx, operator.DefaultName, metav1.GetOptions{})
		state, _, _ := unstructured.NestedString(u.Object, "status", "state")
		return err == nil && state != operator.StateReady, nil
	})
	setInstallationPools(ctx, t, dyn, onePool)
	waitTigeraStatus(ctx, t, dyn, "Unable to delete IP pools while Calico API server is unavailable")
	if _, err := crd.Get(ctx, "extra", metav1.GetOptions{}); err != nil {
		t.Errorf("pool deleted without the API server: %v", err)
	}
	if err := c.Component(sandbox.CalicoAPIServer).Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitPoolGone(ctx, t, dyn, "extra")
	t.Logf("operator stats %+v", c.OperatorStats())
}

// The Calico doc's cluster under the operator: its pool (192.168.0.0/16) lies
// outside kubeadm's podSubnet, which the operator would refuse on a fresh
// install, so the sandbox builds it as a manifest install migrated to the
// operator: the operator adopts the existing pool that matches its Installation.
func TestOperatorAdoptsManifestPools(t *testing.T) {
	c := sandbox.StartForTest(t, sandbox.Options{Flavour: sandbox.FlavourOperator})
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
