package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// cliResult is a finished run of the real binary.
type cliResult = testbin.Result

// runCLI runs the binary against c.
func runCLI(t *testing.T, c *sandbox.Cluster, args ...string) cliResult {
	t.Helper()
	return testbin.Run(t, testbin.Opts{Kubeconfig: c.KubeconfigPath()}, args...)
}

const gatedRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: gated}
params:
  skipExtra: {type: bool, default: true}
steps:
  - id: extra
    action: pause
    when: "!params.skipExtra"
  - id: gate
    action: pause
    with: {message: "Go on with the change window?"}
`

// TestCLIPhasedRunLockAndAudit drives the binary: a pause ends the invocation with
// exit 9, approve + apply finishes it, status/history/reports show it, a re-run is a
// new run, and a held lock refuses a second operator with exit 3 naming the holder.
func TestCLIPhasedRunLockAndAudit(t *testing.T) {
	c := sandbox.ForTest(t)
	dir := t.TempDir()
	rb := filepath.Join(dir, "gated.yaml")
	if err := os.WriteFile(rb, []byte(gatedRunbook), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := "runbook-cli-e2e"

	runCLI(t, c, "plan", rb, "-n", ns).Must(t, 0, "gate: pause check")
	r := runCLI(t, c, "apply", rb, "-n", ns)
	r.Must(t, 9, "waits for approval: runbook approve")
	runID := between(r.Stdout+r.Stderr, "runbook approve ", "\n")
	if runID == "" {
		t.Fatalf("no run id in output:\n%s%s", r.Stdout, r.Stderr)
	}
	runCLI(t, c, "status", "-n", ns).Must(t, 0, runID, "awaitingApproval")
	runCLI(t, c, "approve", runID, "-n", ns, "--as", "alice").Must(t, 0, "approved by alice")

	md := filepath.Join(dir, "report.md")
	runCLI(t, c, "apply", rb, "-n", ns, "--report", md, "--report", filepath.Join(dir, "report.json")).Must(t, 0, "resuming run "+runID, "run "+runID+": done")
	if b, _ := os.ReadFile(md); !strings.Contains(string(b), "| gate | pause | done |") || !strings.Contains(string(b), "| extra | pause | skipped |") {
		t.Fatalf("markdown report:\n%s", b)
	}
	runCLI(t, c, "history", "-n", ns).Must(t, 0, runID, "done")
	runCLI(t, c, "status", runID, "-n", ns, "-o", "json").Must(t, 0, `"approvedBy": "alice"`)

	// Kubernetes Events on the journal object.
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=runbook-gated"})
	if err != nil || len(evs.Items) == 0 {
		t.Fatalf("no events on the journal: %v", err)
	}

	// Another operator holds the lock: refused fast, naming the holder and where
	// the lock is. The lock is per cluster, in runbook-system whatever -n says.
	lockNS := "runbook-system"
	now := metav1.NewMicroTime(time.Now())
	holder, secs := "bob@laptop pid 42", int32(300)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "runbook-lock-calico-ipam", Namespace: lockNS},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now, AcquireTime: &now}}
	if cur, err := cs.CoordinationV1().Leases(lockNS).Get(context.Background(), lease.Name, metav1.GetOptions{}); err == nil {
		cur.Spec = lease.Spec
		_, err = cs.CoordinationV1().Leases(lockNS).Update(context.Background(), cur, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	} else if _, err := cs.CoordinationV1().Leases(lockNS).Create(context.Background(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runCLI(t, c, "apply", rb, "-n", ns).Must(t, 3, `held by "bob@laptop pid 42"`, "runbook-system/runbook-lock-calico-ipam")
	// Whatever the journal: another namespace, a local file (issue #15 item 1).
	runCLI(t, c, "apply", rb, "-n", "team-b", "--yes").Must(t, 3, `held by "bob@laptop pid 42"`, "runbook-system/runbook-lock-calico-ipam")
	runCLI(t, c, "apply", rb, "--state", filepath.Join(dir, "team-c.json"), "--yes").Must(t, 3, `held by "bob@laptop pid 42"`)
	runCLI(t, c, "unlock", "-n", ns).Must(t, 2, "needs --yes")
	// Bob's lease is live: unlock refuses without --force.
	runCLI(t, c, "unlock", "-n", ns, "--yes").Must(t, 3, "has not expired", "bob@laptop pid 42", "--force")
	runCLI(t, c, "unlock", "-n", ns, "--yes", "--force").Must(t, 0, "broke the lock runbook-system/runbook-lock-calico-ipam held by")
	// A finished run is not resumed: a new run, and nothing changes.
	r = runCLI(t, c, "apply", rb, "-n", ns, "--yes")
	r.Must(t, 9, "waits for approval")
	if strings.Contains(r.Stdout, runID) {
		t.Fatalf("re-run reused the finished run id:\n%s", r.Stdout)
	}
	// Bad input changes nothing and names the problem.
	runCLI(t, c, "apply", rb, "-n", ns, "--set", "skipExtr=false").Must(t, 2, `unknown param "skipExtr" (did you mean "skipExtra"?)`)
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return strings.TrimSpace(s[:j])
	}
	return strings.TrimSpace(s)
}
