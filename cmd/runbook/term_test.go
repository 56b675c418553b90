package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestTerminalFor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name      string
		tty       bool
		flag      string
		getenv    func(string) string
		color     bool
		wantError bool
	}{
		{"terminal", true, "auto", env(), true, false},
		{"pipe", false, "auto", env(), false, false},
		{"NO_COLOR", true, "auto", env("NO_COLOR", "1"), false, false},
		{"TERM=dumb", true, "auto", env("TERM", "dumb"), false, false},
		{"always, even into a pipe", false, "always", env("NO_COLOR", "1"), true, false},
		{"never", true, "never", env(), false, false},
		{"bad flag", true, "sometimes", env(), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, err := terminalFor(tt.tty, 120, tt.flag, tt.getenv)
			if (err != nil) != tt.wantError || term.color != tt.color || term.tty != tt.tty {
				t.Errorf("got %+v, %v", term, err)
			}
		})
	}
	if term, _ := terminalFor(true, 0, "auto", env()); term.width != 80 {
		t.Errorf("unknown width: %d, want 80", term.width)
	}
}

// TestMain lets tests run this test binary as the real command (RUNBOOK_TEST_MAIN=1),
// e.g. under a pseudo-terminal, without building it again.
func TestMain(m *testing.M) {
	if os.Getenv("RUNBOOK_TEST_MAIN") == "1" {
		os.Args = append([]string{"runbook"}, os.Args[1:]...)
		main()
	}
	os.Exit(m.Run())
}

// TestColourOnARealTerminal runs the command under script(1)'s pseudo-terminal:
// colour there, none through a pipe, none with NO_COLOR.
func TestColourOnARealTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		pty    bool
		env    []string
		colour bool
	}{
		{"terminal", true, nil, true},
		{"terminal with NO_COLOR", true, []string{"NO_COLOR=1"}, false},
		{"pipe", false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := self + " validate " + example
			var cmd *exec.Cmd
			if tt.pty {
				cmd = exec.Command(script, "-qec", args, "/dev/null")
			} else {
				cmd = exec.Command("sh", "-c", args)
			}
			cmd.Env = append(append(os.Environ(), "RUNBOOK_TEST_MAIN=1", "TERM=xterm", "NO_COLOR="), tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if got := strings.Contains(string(out), "\x1b[32mvalid\x1b[0m"); got != tt.colour || !strings.Contains(string(out), "valid (6 steps)") && !tt.colour {
				t.Errorf("colour %v, want %v: %q", got, tt.colour, out)
			}
		})
	}
}
