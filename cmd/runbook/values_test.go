package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// TestBoundValuesRefusedBeforeTheCluster: a with: value known once -f/--set bind
// the params, and refused by its action's declaration, is an error of validate
// (exit 2) and a refusal of plan and apply (exit 11) naming the runbook's file,
// line and field, before either connects: the kubeconfig's server is a port
// nothing listens on, so reaching it would fail otherwise.
func TestBoundValuesRefusedBeforeTheCluster(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const rb = "testdata/bound-values.yaml"
	const says = `testdata/bound-values.yaml:13:17: steps[0].with.strategy: ${{ params.strategy }} is "nope" (params.strategy from --set): "nope" is not one of the allowed values "evict", "delete", "rolloutRestart"`
	tests := []struct {
		name   string
		args   []string
		code   exitcode.Code
		stdout string
		stderr string
	}{
		{"validate with valid values", []string{"validate", rb, "--set", "strategy=delete"}, exitcode.OK, "valid (1 steps)", ""},
		{"validate", []string{"validate", rb, "--set", "strategy=nope"}, exitcode.Invalid, "", says},
		{"validate -o json", []string{"validate", rb, "--set", "strategy=nope", "-o", "json"}, exitcode.Invalid, `"path": "steps[0].with.strategy"`, ""},
		{"plan", []string{"plan", rb, "--set", "strategy=nope", "--kubeconfig", kubeconfig}, exitcode.Refused, "", says},
		{"apply", []string{"apply", rb, "--set", "strategy=nope", "--kubeconfig", kubeconfig, "--yes"}, exitcode.Refused, "", says},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, tt.code, tt.stdout, stdout, tt.stderr, stderr)
			}
			if strings.Contains(stderr, "127.0.0.1:1") {
				t.Errorf("connected to the cluster:\n%s", stderr)
			}
		})
	}
}
