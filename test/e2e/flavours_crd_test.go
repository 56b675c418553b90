package e2e

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runbookdev/runbook/test/sandbox"
)

// TestFlavourCRD runs the example migration, unchanged, on a manifest install
// with only the crd.projectcalico.org/v1 CRDs (no Calico API server, no
// operator), through the CLI as an operator would: detection picks the v1 CRDs
// and the plan says so, every step finishes, no pod is left in the old pool,
// the old pool is gone, and applying again is a new run that changes nothing.
// The Calico API server and operator flavours are TestFlavourAPIServer and
// TestFlavourOperator.
func TestFlavourCRD(t *testing.T) {
	r := newFlavourRig(t, sandbox.FlavourCRD)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Exit 4: the plan has changes to make.
	res, _ := r.cli(t, "plan", exampleRunbook, "-f", exampleValues, "-o", "json")
	res.Must(t, 4, `"calico API: crd.projectcalico.org/v1 CRDs"`)
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", exampleValues)
	res.Must(t, 4, "create pool new-pool 10.0.0.0/16")
	requirePlanOutput(t, "plan-migrate-ippool.golden", res.Stdout)

	res, rep := r.cli(t, "apply", exampleRunbook, "-f", exampleValues, "--yes")
	res.Must(t, 0)
	requireLiveOutput(t, "live-output-crd.golden", res.Stdout+res.Stderr)
	// verify proves allocations with a test workload it removes again: done,
	// but nothing of the cluster's changed.
	for _, id := range []string{"add-new-pool", "disable-old-pool", "move-pods", "verify", "delete-old-pool"} {
		if s := step(t, rep, id); s.Status != "done" || s.Changed == (id == "verify") {
			t.Errorf("step %s: %s changed=%t %s", id, s.Status, s.Changed, s.Error)
		}
	}
	mustContain(t, "add-new-pool", step(t, rep, "add-new-pool").Message, "created pool new-pool 10.0.0.0/16")
	r.requirePodsMoved(ctx, t)
	if _, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "default-ipv4-ippool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old pool after the migration: %v", err)
	}

	res, rep = r.cli(t, "apply", exampleRunbook, "-f", exampleValues, "--yes")
	res.Must(t, 0)
	requireAllUnchanged(t, rep)
}
