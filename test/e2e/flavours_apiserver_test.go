package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/test/sandbox"
)

// TestFlavourAPIServer runs the example migration on a cluster with the Calico
// API server, through the CLI: detection picks projectcalico.org/v3, pools are
// written through it (the server validates and defaults), a field this Calico
// lacks is refused instead of pruned, the migration converges and re-runs
// unchanged, and an explicit --calico-api the cluster cannot serve is refused.
func TestFlavourAPIServer(t *testing.T) {
	r := newFlavourRig(t, sandbox.FlavourAPIServer)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	t.Run("strict fields through v3", func(t *testing.T) { testV3StrictFields(ctx, t, r) })

	res, _ := r.cli(t, "plan", exampleRunbook, "-f", exampleValues)
	res.Must(t, 4, "create pool new-pool 10.0.0.0/16", "through projectcalico.org/v3 (Calico API server calico-apiserver/calico-api)")

	res, rep := r.cli(t, "apply", exampleRunbook, "-f", exampleValues, "--yes")
	res.Must(t, 0)
	for _, id := range []string{"add-new-pool", "disable-old-pool", "move-pods", "move-tunnels", "verify", "delete-old-pool"} {
		if s := step(t, rep, id); s.Status != "done" {
			t.Errorf("step %s: %s %s", id, s.Status, s.Error)
		}
	}
	mustContain(t, "add-new-pool", step(t, rep, "add-new-pool").Message, "created pool new-pool 10.0.0.0/16", "through projectcalico.org/v3 (Calico API server")
	r.requirePodsMoved(ctx, t)
	if _, err := r.dyn.Resource(gvrV3Pools).Get(ctx, "default-ipv4-ippool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("old pool after the migration: %v", err)
	}
	// Written through v3: the Calico API server, not runbook, wrote the stored
	// v1 object (a direct v1 write would list runbook as its field manager), and
	// the server's defaults are there.
	v1, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "new-pool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(managers(v1), "runbook") {
		t.Errorf("new-pool's v1 object was written by runbook directly: managers %v", managers(v1))
	}
	if ann := r.v3Pool(ctx, t, "new-pool").GetAnnotations()[calico.AnnotationCreatedByRun]; ann != rep.RunID {
		t.Errorf("new-pool created-by %q, want %s", ann, rep.RunID)
	}

	res, rep = r.cli(t, "apply", exampleRunbook, "-f", exampleValues, "--yes")
	res.Must(t, 0)
	requireAllUnchanged(t, rep)

	// Forcing the v1 CRDs works on this cluster too (they are there); the plan
	// says which API it used.
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", exampleValues, "--calico-api", "crd", "-o", "json")
	res.Must(t, 0, `"calico API: crd.projectcalico.org/v1 CRDs"`)

	// With the Calico API server down, v3 cannot be served: explicit v3 is
	// refused naming what was found, auto falls back to the v1 CRDs and says so.
	if err := r.c.Component(sandbox.CalicoAPIServer).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", exampleValues, "--calico-api", "v3")
	res.Must(t, 2, "--calico-api v3", "registered but unavailable", "crd.projectcalico.org/v1 (ippools, ipamblocks)")
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", exampleValues, "-o", "json")
	res.Must(t, 0, "crd.projectcalico.org/v1 CRDs (projectcalico.org/v3 registered but unavailable")
	res, _ = r.cli(t, "plan", exampleRunbook, "-f", exampleValues, "--calico-api", "v2")
	res.Must(t, 2, `--calico-api "v2": want one of auto, crd, v3`)
	if err := r.c.Component(sandbox.CalicoAPIServer).Start(ctx); err != nil {
		t.Fatal(err)
	}
}

// testV3StrictFields proves writes through the Calico API server are strict: a
// spec field this Calico (3.28) does not have — assignmentMode, added in 3.29 —
// is refused on create and on patch, and nothing changes; the same object sent
// without strict validation is accepted with the field silently dropped, which is
// what strict validation prevents.
func testV3StrictFields(ctx context.Context, t *testing.T, r *flavourRig) {
	det, err := calico.Detect(ctx, r.kube.Discovery(), r.dyn, calico.APIAuto)
	if err != nil {
		t.Fatal(err)
	}
	if det.Flavour != calico.FlavourV3 || det.V3 != calico.V3APIServer {
		t.Fatalf("detected %+v, want v3 through the Calico API server", det)
	}
	cal, err := calico.New(ctx, r.kube, r.dyn, det)
	if err != nil {
		t.Fatal(err)
	}
	defer cal.Close()
	before := r.poolsState(ctx, t, true)

	_, err = cal.CreatePool(ctx, "strict-probe", map[string]any{"cidr": "10.1.0.0/16", "assignmentMode": "Automatic"}, nil)
	mustContain(t, "strict create", errString(err), `unknown field "spec.assignmentMode"`, "unknown fields are errors, never silently dropped")
	_, err = cal.PatchPool(ctx, "default-ipv4-ippool", calico.PoolPatch{Spec: map[string]any{"assignmentMode": "Manual"}})
	mustContain(t, "strict patch", errString(err), `unknown field "spec.assignmentMode"`)
	requireUnchanged(t, before, r.poolsState(ctx, t, true))

	// The control: without strict validation the server prunes the field silently.
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
		"metadata": map[string]any{"name": "lax-probe"}, "spec": map[string]any{"cidr": "10.1.0.0/16", "assignmentMode": "Automatic"}}}
	created, err := r.dyn.Resource(gvrV3Pools).Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationIgnore})
	if err != nil {
		t.Fatalf("lax create: %v", err)
	}
	if _, found, _ := unstructured.NestedString(created.Object, "spec", "assignmentMode"); found {
		t.Errorf("the server kept assignmentMode: the strict check above proves nothing")
	}
	if err := r.dyn.Resource(gvrV3Pools).Delete(ctx, "lax-probe", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Server-side validation is there too (the plan still validates itself,
	// since the server's dry run skips it): an overlapping pool is refused.
	_, err = cal.CreatePool(ctx, "overlap-probe", map[string]any{"cidr": "192.168.7.0/24"}, nil)
	if err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping create through v3: %v", err)
	}
	waitCond(ctx, t, "lax-probe gone", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "lax-probe", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
