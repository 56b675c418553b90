package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// runIn runs the CLI from dir with nothing added: the project file must provide
// the connection.
func runIn(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	return testbin.Run(t, testbin.Opts{Dir: dir, Env: []string{"KUBECONFIG=/nonexistent"}}, args...) // nothing but the project file may connect
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

const envRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: env-audit}
params:
  pool: {type: string, required: true}
steps:
  - id: only-in-sandbox
    action: disablePool           # on a pool that does not exist: satisfied, nothing changes
    with: {name: "${{ params.pool }}"}
    require: env == "sandbox"
  - id: prod-gate
    action: pause
    when: env == "prod"
`

// writeProject lays out a runbooks repository as docs/environments.md describes:
// .runbook.yaml at the root, values/<env>.yaml next to the runbook, committed.
func writeProject(t *testing.T, kubeconfig, ns string) (repo, head string) {
	t.Helper()
	repo = t.TempDir()
	files := map[string]string{
		".runbook.yaml": `apiVersion: runbook/v1alpha1
kind: Project
environments:
  sandbox:
    kubeconfig: ` + kubeconfig + `
    namespace: ` + ns + `
  other:
    kubeconfig: ` + kubeconfig + `
    namespace: ` + ns + `
    values: [shared/other.yaml]
`,
		"runbooks/env-audit/runbook.yaml":        envRunbook,
		"runbooks/env-audit/values/sandbox.yaml": "pool: absent-pool-env-e2e\n",
		"shared/other.yaml":                      "pool: absent-pool-env-e2e\n",
	}
	for name, content := range files {
		path := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, repo, "init", "-q")
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-q", "-m", "runbooks")
	return repo, gitIn(t, repo, "rev-parse", "HEAD")
}

// TestEnvironmentsAndAuditTrail: --env takes the kubeconfig, journal namespace and
// values from the project file; env is what guards see; every run records its
// digests, environment and git commit in the journal and the reports, and
// status/history show them.
func TestEnvironmentsAndAuditTrail(t *testing.T) {
	c := sandbox.ForTest(t)
	ns := "runbook-env-e2e"
	repo, head := writeProject(t, c.KubeconfigPath(), ns)
	rb := "runbooks/env-audit/runbook.yaml"
	reports := t.TempDir()

	runIn(t, repo, "plan", rb, "--env", "sandbox", "--out", filepath.Join(reports, "plan.json")).
		Must(t, 0, "environment sandbox (.runbook.yaml): values runbooks/env-audit/values/sandbox.yaml", "Plan for env-audit in sandbox", "@"+head[:12])
	// The guard sees the environment: elsewhere the precondition refuses.
	runIn(t, repo, "plan", rb, "--env", "other").Must(t, 11, `require: env == "sandbox"`)
	// A plan reviewed for one environment is not applied to another.
	runIn(t, repo, "apply", rb, "--env", "other", "--plan", filepath.Join(reports, "plan.json"), "--yes").
		Must(t, 10, `the environment changed ("sandbox" → "other")`)
	runIn(t, repo, "apply", rb, "--env", "sandbx").Must(t, 2, `unknown environment "sandbx" (did you mean "sandbox"?)`, "declares other, sandbox")
	// A plan is bound to the cluster it was made on, and expires (issue #15 item 6).
	forged := func(name string, edit func(p map[string]any)) string {
		b, err := os.ReadFile(filepath.Join(reports, "plan.json"))
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		edit(p)
		out := filepath.Join(reports, name)
		b, _ = json.Marshal(p)
		if err := os.WriteFile(out, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return out
	}
	other := forged("other-cluster.json", func(p map[string]any) {
		p["cluster"] = map[string]any{"kubeSystemUID": "0000-other", "server": "https://prod.example:6443"}
	})
	runIn(t, repo, "apply", rb, "--env", "sandbox", "--plan", other, "--yes").
		Must(t, 10, "was made on https://prod.example:6443 (kube-system uid 0000-other), but this is https://127.0.0.1:")
	old := forged("old.json", func(p map[string]any) { p["createdAt"] = time.Now().Add(-50 * time.Hour).UTC().Format(time.RFC3339) })
	runIn(t, repo, "apply", rb, "--env", "sandbox", "--plan", old, "--yes").Must(t, 10, "older than --plan-max-age 24h0m0s")

	r := runIn(t, repo, "apply", rb, "--env", "sandbox", "--plan", filepath.Join(reports, "plan.json"), "--yes",
		"--report", filepath.Join(reports, "r.json"), "--report", filepath.Join(reports, "r.md"))
	r.Must(t, 0, "skipped prod-gate", "source runbooks/env-audit/runbook.yaml@"+head[:12])
	runID := between(r.Stdout, "run ", " of env-audit")
	var rep struct {
		RunID, Env, RunbookDigest, ParamsDigest string
		Source                                  struct {
			File, Commit string
			Dirty        bool
		}
	}
	b, err := os.ReadFile(filepath.Join(reports, "r.json"))
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if rep.RunID != runID || rep.Env != "sandbox" || rep.Source.File != rb || rep.Source.Commit != head || rep.Source.Dirty ||
		!strings.HasPrefix(rep.RunbookDigest, "sha256:") || !strings.HasPrefix(rep.ParamsDigest, "sha256:") {
		t.Fatalf("JSON report lacks the audit trail: %+v", rep)
	}
	md, _ := os.ReadFile(filepath.Join(reports, "r.md"))
	for _, want := range []string{"| environment | sandbox |", "| commit | `" + head + "` |", "| runbook digest | `" + rep.RunbookDigest + "` |"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("Markdown report lacks %q:\n%s", want, md)
		}
	}

	// The journal is in the environment's namespace, and history reads it from there
	// (the project is found from the working directory).
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig())
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "runbook-env-audit", metav1.GetOptions{}); err != nil {
		t.Fatalf("journal not in the environment's namespace: %v", err)
	}
	runIn(t, repo, "history", "--env", "sandbox").Must(t, 0, runID, "sandbox", head[:12]+" ")
	runIn(t, repo, "status", runID, "--env", "sandbox").Must(t, 0, "env sandbox, source runbooks/env-audit/runbook.yaml@"+head[:12])

	// Uncommitted values: the run says so, in the report and in history.
	if err := os.WriteFile(filepath.Join(repo, "runbooks/env-audit/values/sandbox.yaml"), []byte("pool: absent-pool-env-e2e-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, repo, "apply", rb, "--env", "sandbox", "--yes", "-o", "json")
	r.Must(t, 0, `"dirty":true`, `"commit":"`+head+`"`)
	runIn(t, repo, "history", "--env", "sandbox").Must(t, 0, head[:12]+"*")
	runIn(t, repo, "status", "--env", "sandbox", "-o", "json").Must(t, 0)
}
