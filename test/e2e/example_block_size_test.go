package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/runbookdev/runbook/test/sandbox"
)

var (
	blockSizeRunbook = filepath.Join("..", "..", "examples", "change-block-size", "runbook.yaml")
	blockSizeValues  = filepath.Join("..", "..", "examples", "change-block-size", "values", "sandbox.yaml")
)

// TestExampleChangeBlockSize runs Calico's "change IP pool block size"
// procedure (examples/change-block-size) on the sandbox after the example
// migration moved it to new-pool 10.0.0.0/17: the plan follows the steps
// (the temporary pool an early step creates is disabled and emptied later, the
// pool deleted in the middle is recreated) and exits 4; apply is killed with
// SIGKILL between the two moves and resumed; new-pool ends with /24 blocks and
// every pod, the temporary pool is gone, and applying again changes nothing.
// The same runbook and values on a manifest install (v1 CRDs) and on an
// operator install, where every pool step goes through the Installation.
func TestExampleChangeBlockSize(t *testing.T) {
	for _, tc := range []struct {
		flavour, migrateValues string
		plan                   []string // besides the common lines
	}{
		{sandbox.FlavourCRD, exampleValues, []string{
			"create pool temporary-pool 10.0.128.0/17",
			"delete pool new-pool (10.0.0.0/17)",
			"create pool new-pool 10.0.0.0/17 (blockSize 24",
			"(again: pool disabled by disable-pool",
			"are released when delete-pool deletes it",
			"set spec.disabled: true on pool temporary-pool (10.0.128.0/17) through crd.projectcalico.org/v1 CRDs (pool created by add-temp-pool"}},
		{sandbox.FlavourOperator, operatorValues, []string{
			"add pool temporary-pool 10.0.128.0/17",
			"remove operator-managed pool new-pool (10.0.0.0/17) from Installation default",
			"add pool new-pool 10.0.0.0/17 (blockSize 24",
			"on the entry of operator-managed pool temporary-pool (10.0.128.0/17)"}},
	} {
		t.Run(tc.flavour, func(t *testing.T) { testChangeBlockSize(t, tc.flavour, tc.migrateValues, tc.plan) })
	}
}

func testChangeBlockSize(t *testing.T, flavour, migrateValues string, planLines []string) {
	r := newFlavourRig(t, flavour)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	res, _ := r.cli(t, "apply", exampleRunbook, "-f", migrateValues, "--set", "newCIDR=10.0.0.0/17", "--yes")
	res.Must(t, 0)

	res, _ = r.cli(t, "plan", blockSizeRunbook, "-f", blockSizeValues)
	res.Must(t, 4, append(planLines,
		"now 10 pod(s) and 3 node tunnel address(es) hold addresses in pool new-pool; the earlier steps move them out (pool disabled by disable-pool, emptied by move-to-temp, tunnel addresses moved out by move-tunnels-to-temp)",
		"the pods in pool temporary-pool (10.0.128.0/17) by then",
		"calico-node may move some there after move-tunnels-to-temp",
		"once disable-pool disables pool new-pool, calico-node moves its tunnel addresses by itself",
		"10 step(s) would change the cluster")...)
	requirePlanOutput(t, "plan-change-block-size-"+flavour+".golden", res.Stdout)
	for _, never := range []string{"BLOCK", "now: ", "nothing to disable"} {
		if strings.Contains(res.Stdout+res.Stderr, never) {
			t.Errorf("plan says %q:\n%s", never, res.Output())
		}
	}

	// Killed once the pool is recreated: between the move out and the move back.
	r.applyKilledWhen(ctx, t, "new-pool recreated with /24 blocks", func(ctx context.Context) (bool, error) {
		p, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "new-pool", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		bs, _, _ := unstructured.NestedInt64(p.Object, "spec", "blockSize")
		return bs == 24, nil
	}, blockSizeRunbook, "-f", blockSizeValues)
	if len(podsIn(ctx, t, r.kube, netip.MustParsePrefix("10.0.128.0/17"))) == 0 {
		t.Fatal("killed with no pod in the temporary pool: nothing left to resume")
	}

	res, rep := r.cli(t, "apply", blockSizeRunbook, "-f", blockSizeValues, "--yes")
	res.Must(t, 0, "resuming run")
	for _, id := range []string{"add-temp-pool", "disable-pool", "move-to-temp", "delete-pool"} {
		if s := step(t, rep, id); s.Status != "done" {
			t.Errorf("resumed run: step %s %s: %s", id, s.Status, s.Error)
		}
	}
	if s := step(t, rep, "move-back"); s.Status != "done" || !s.Changed {
		t.Errorf("resumed run: move-back %s changed=%t: %s", s.Status, s.Changed, s.Error)
	}
	if left := podsIn(ctx, t, r.kube, netip.MustParsePrefix("10.0.128.0/17")); len(left) > 0 {
		t.Errorf("pods still in the temporary pool: %s", names(left))
	}
	if in := podsIn(ctx, t, r.kube, netip.MustParsePrefix("10.0.0.0/17")); len(in) < 9 {
		t.Errorf("only %d pod(s) in new-pool: %s", len(in), names(in))
	}
	if _, err := r.dyn.Resource(gvrV1Pools).Get(ctx, "temporary-pool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("temporary pool after the run: %v", err)
	}
	requireBlocks(ctx, t, r, 24)

	res, _ = r.cli(t, "plan", blockSizeRunbook, "-f", blockSizeValues)
	res.Must(t, 0, "0 step(s) would change the cluster")
	res, rep = r.cli(t, "apply", blockSizeRunbook, "-f", blockSizeValues, "--yes")
	res.Must(t, 0)
	requireStepsUnchanged(t, rep, 11)

	// The same procedure written by hand (literal values, no guards, other
	// step names, the move back without a targetPool): /24 → /25.
	byHand := filepath.Join("testdata", "block-size-by-hand.yaml")
	res, _ = r.cli(t, "plan", byHand)
	res.Must(t, 4, "pool scratch 10.0.128.0/18", "pool new-pool 10.0.0.0/17 (blockSize 25")
	if strings.Contains(res.Stdout, "BLOCK") {
		t.Errorf("hand-written plan refused:\n%s", res.Output())
	}
	res, _ = r.cli(t, "apply", byHand, "--yes")
	res.Must(t, 0)
	requireBlocks(ctx, t, r, 25)
	if left := podsIn(ctx, t, r.kube, netip.MustParsePrefix("10.0.128.0/18")); len(left) > 0 {
		t.Errorf("pods still in scratch: %s", names(left))
	}
}

// requireBlocks: every IPAM block has the given size (calico#10778: none of
// the old size left behind).
func requireBlocks(ctx context.Context, t *testing.T, r *flavourRig, size int) {
	t.Helper()
	blocks, err := r.dyn.Resource(ipamblocks).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks.Items {
		if cidr, _, _ := unstructured.NestedString(b.Object, "spec", "cidr"); netip.MustParsePrefix(cidr).Bits() != size {
			t.Errorf("IPAM block %s is not /%d", cidr, size)
		}
	}
}
