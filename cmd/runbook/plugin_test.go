package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestKubectlPluginName: installed as kubectl-runbook the binary is a kubectl
// plugin, and its help and errors name the command as the user typed it.
func TestKubectlPluginName(t *testing.T) {
	defer func(old string) { invokedAs = old }(invokedAs)
	for _, tc := range []struct{ argv0, want string }{
		{"runbook", "runbook"},
		{"runbook.exe", "runbook"},
		{"kubectl-runbook", "kubectl runbook"},
		{"kubectl-runbook.exe", "kubectl runbook"},
		{"kubectl-run_book", "kubectl run-book"}, // kubectl maps - in a command to _ in the file name
	} {
		invokedAs = tc.argv0
		if got := displayName(); got != tc.want {
			t.Errorf("%s: displayName %q, want %q", tc.argv0, got, tc.want)
		}
	}
	invokedAs = "kubectl-runbook"
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "kubectl runbook [command]") {
		t.Errorf("help does not say kubectl runbook:\n%s", out.String())
	}
	root = newRootCmd(&out, &errOut)
	root.SetArgs([]string{"valdate"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "see kubectl runbook --help") {
		t.Errorf("unknown command: %v", err)
	}
}
