package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/internal/exitcode"
)

func run(t *testing.T, args ...string) (string, string, exitcode.Code) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), exitcode.Of(err)
}

const example = "../../examples/migrate-ippool/runbook.yaml"

func TestCLI(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       exitcode.Code
		stdout     string // substring
		stderr     string // substring
		jsonStdout bool
	}{
		{"validate example", []string{"validate", example}, exitcode.OK, "valid (6 steps)", "", false},
		{"validate with values", []string{"validate", example, "-f", "../../examples/migrate-ippool/values/prod.yaml"}, exitcode.OK, "valid", "", false},
		{"validate broken", []string{"validate", "../../runbooks/testdata/broken/04-unknown-action.yaml"}, exitcode.Invalid, "",
			`04-unknown-action.yaml:7:13: steps[0].action: unknown action "ensurePol" (did you mean "ensurePool"?)`, false},
		{"validate json", []string{"validate", "-o", "json", "../../runbooks/testdata/broken/03-duplicate-step-id.yaml"}, exitcode.Invalid, `"line": 8`, "", true},
		{"runbook as values", []string{"validate", example, "-f", example}, exitcode.Invalid, "", "this is a Runbook, not a values file", false},
		{"set unknown param", []string{"validate", example, "--set", "newCDIR=10.0.0.0/16"}, exitcode.Invalid, "", `unknown param "newCDIR" (did you mean "newCIDR"?)`, false},
		{"no args", []string{"validate"}, exitcode.Invalid, "", "expected at least one runbook file", false},
		{"bad output", []string{"actions", "-o", "xml"}, exitcode.Invalid, "", "--output must be text, json or yaml", false},
		{"markdown is for plan", []string{"validate", example, "-o", "markdown"}, exitcode.Invalid, "", "--output markdown is for plan (a pull-request comment); validate prints text, json or yaml", false},
		{"bad flag", []string{"validate", "--nope", example}, exitcode.Invalid, "", "unknown flag", false},
		{"actions", []string{"actions"}, exitcode.OK, "deletePool              point of no return", "", false},
		{"actions json", []string{"actions", "-o", "json"}, exitcode.OK, `"name": "ensurePool"`, "", true},
		{"explain", []string{"explain", "deletePodsInPool"}, exitcode.OK, "unmanagedPods", "", false},
		{"explain function", []string{"explain", "podsInPool"}, exitcode.OK, "podsInPool(name string) []PodRef", "", false},
		{"explain unknown", []string{"explain", "deletepool"}, exitcode.Invalid, "", `did you mean "deletePool"?`, false},
		{"schema", []string{"schema"}, exitcode.OK, `"$schema": "https://json-schema.org/draft/2020-12/schema"`, "", true},
		{"version", []string{"version", "-o", "json"}, exitcode.OK, `"version": "dev"`, "", true},
		{"plan needs a kubeconfig", []string{"plan", example, "-f", "../../examples/migrate-ippool/values/sandbox.yaml", "--kubeconfig", "/nonexistent"}, exitcode.Invalid, "", "kubeconfig", false},
		{"plan with invalid values changes nothing", []string{"plan", example, "--kubeconfig", "/nonexistent"}, exitcode.Invalid, "", "required param is not set", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			if tt.jsonStdout && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not JSON:\n%s", stdout)
			}
		})
	}
}

// TestEnvironments: --env reads examples/.runbook.yaml (found from the runbook's
// directory); explicit flags win; an unknown environment is refused with the known ones.
func TestEnvironments(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: only-this-one, context: {cluster: c, user: u}}]
current-context: only-this-one
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	tests := []struct {
		name   string
		args   []string
		code   exitcode.Code
		stdout string
		stderr string
	}{
		{"values/<env>.yaml next to the runbook", []string{"validate", example, "--env", "prod", "-o", "json"}, exitcode.OK,
			`"newCIDR": "10.64.0.0/16"`, "migrate-ippool/values/prod.yaml"},
		{"--set wins over the environment's values", []string{"validate", example, "--env", "prod", "--set", "newCIDR=10.99.0.0/16", "-o", "json"}, exitcode.OK,
			`"newCIDR": "10.99.0.0/16"`, ""},
		{"unknown environment", []string{"validate", example, "--env", "stagign"}, exitcode.Invalid,
			"", `unknown environment "stagign" (did you mean "staging"?): `},
		{"known environments listed", []string{"plan", example, "--env", "qa"}, exitcode.Invalid,
			"", "declares prod, sandbox, staging"},
		{"the environment's context", []string{"plan", example, "--env", "staging"}, exitcode.Invalid,
			"", `context "staging-eu" does not exist`},
		{"--context wins", []string{"plan", example, "--env", "staging", "--context", "nope"}, exitcode.Invalid,
			"", `context "nope" does not exist`},
		{"--kubeconfig wins", []string{"plan", example, "--env", "sandbox", "--kubeconfig", "/nonexistent/kubeconfig"}, exitcode.Invalid,
			"", "/nonexistent/kubeconfig"},
		{"explicit project file", []string{"validate", example, "--env", "dev", "--project", "testdata/project.yaml"}, exitcode.OK,
			"valid", "environment dev (testdata/project.yaml)"},
		{"--project needs --env", []string{"validate", example, "--project", "testdata/project.yaml"}, exitcode.Invalid,
			"", "--project needs --env"},
		{"a broken project file", []string{"validate", example, "--env", "dev", "--project", "testdata/broken-project.yaml"}, exitcode.Invalid,
			"", "testdata/broken-project.yaml: line 5: field contxt not found"},
		{"envs", []string{"envs", example}, exitcode.OK, "prod     prod-eu     runbook-system", ""},
		{"envs -q", []string{"envs", "-q", "--project", "../../examples/.runbook.yaml"}, exitcode.OK, "prod\nsandbox\nstaging\n", ""},
		{"envs json", []string{"envs", example, "-o", "json"}, exitcode.OK, `migrate-ippool/values/sandbox.yaml"`, ""},
		{"envs without a project file", []string{"envs"}, exitcode.Invalid, "", "no .runbook.yaml found"},
		{"status reads the environment too", []string{"status", "--env", "staging", "--project", "../../examples/.runbook.yaml"}, exitcode.Invalid,
			"", `context "staging-eu" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, tt.code, tt.stdout, stdout, tt.stderr, stderr)
			}
		})
	}
}
