package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDynamicCompletion asks the completion backend what a shell would (cobra's
// hidden __complete command, which every generated script calls).
func TestDynamicCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"step ids for --stop-before", []string{"apply", example, "--stop-before", ""}, []string{"add-new-pool\tensurePool", "delete-old-pool\tdeletePool"}},
		{"environments from the project file", []string{"plan", example, "--env", ""}, []string{"prod", "sandbox", "staging"}},
		{"actions and functions for explain", []string{"explain", "de"}, []string{"deletePodsInPool", "deletePool"}},
		{"guard functions too", []string{"explain", "pods"}, []string{"podsInPool"}},
		{"output formats", []string{"actions", "-o", ""}, []string{"text", "json", "yaml"}},
		{"commands", []string{"ap"}, []string{"apply", "approve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, append([]string{"__complete"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w+"\n") && !strings.Contains(stdout, w+"\t") {
					t.Errorf("completions lack %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestBashCompletion sources the generated bash script in a real bash and completes
// as a shell would, the script calling this binary back as "runbook".
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// The generated script builds on the bash-completion package, as on every
	// distribution that completes anything; CI installs it (hack/ci-deps.sh).
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bashCompletion); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: CI must install bash-completion", bashCompletion)
		}
		t.Skip("bash-completion is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nRUNBOOK_TEST_MAIN=1 exec " + self + ` "$@"` + "\n"
	if err := os.WriteFile(filepath.Join(bin, "runbook"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	complete := func(line string) string {
		t.Helper()
		script := `source ` + bashCompletion + `
source <(runbook completion bash)
compopt() { :; } # a builtin that works only inside a completion the shell started
COMP_LINE="$LINE"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
__start_runbook
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LINE="+line)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	if got := complete("runbook apply " + example + " --stop-before delete-"); strings.TrimSpace(got) != "delete-old-pool" {
		t.Errorf("--stop-before delete-: %q", got)
	}
	if got := complete("runbook apply " + example + " --env st"); strings.TrimSpace(got) != "staging" {
		t.Errorf("--env st: %q", got)
	}
	if got := complete("runbook expl"); strings.TrimSpace(got) != "explain" {
		t.Errorf("expl: %q", got)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		stdout, stderr, code := run(t, "completion", shell)
		if code != 0 || !strings.Contains(stdout, "runbook") || len(stdout) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes: %s", shell, code, len(stdout), stderr)
		}
	}
}
