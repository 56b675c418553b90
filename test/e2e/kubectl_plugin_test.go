package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

// TestKubectlPlugin: the runbook binary installed as kubectl-runbook on PATH is
// found by the sandbox's kubectl (built from the pinned k8s.io/kubernetes) and
// runs as `kubectl runbook …`, saying so in its help.
func TestKubectlPlugin(t *testing.T) {
	tools := os.Getenv(sandbox.ToolsDirEnv)
	if tools == "" {
		t.Fatalf("%s is not set (make test sets it)", sandbox.ToolsDirEnv)
	}
	kubectl := filepath.Join(tools, "kubectl")
	dir := t.TempDir()
	b, err := os.ReadFile(testbin.Runbook(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubectl-runbook"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("plugin", "list"); !strings.Contains(out, filepath.Join(dir, "kubectl-runbook")) {
		t.Errorf("kubectl plugin list does not find kubectl-runbook:\n%s", out)
	}
	if out := run("runbook", "version"); !strings.HasPrefix(out, "runbook ") {
		t.Errorf("kubectl runbook version: %q", out)
	}
	if out := run("runbook", "--help"); !strings.Contains(out, "kubectl runbook [command]") {
		t.Errorf("kubectl runbook --help does not name the plugin:\n%s", out)
	}
}
