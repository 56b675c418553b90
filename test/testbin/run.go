package testbin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Opts shape one run of the CLI. The zero value runs it in the test's working
// directory with the test process's environment and a two-minute timeout.
type Opts struct {
	// Kubeconfig, when set, is passed as --kubeconfig after the arguments.
	Kubeconfig string
	Dir        string
	// Env is added to the test process's environment (later entries win).
	Env []string
	// Timeout bounds the run (default 2 min): a hung CLI fails its test with exit
	// -1 instead of stalling the package until go test's own timeout.
	Timeout time.Duration
}

// Result is a finished run of the CLI.
type Result struct {
	Args           []string
	Code           int
	Stdout, Stderr string
	Took           time.Duration
}

// Run runs the freshly built CLI to completion. A non-zero exit is a result, not
// an error; failing to start it fails the test.
func Run(t testing.TB, o Opts, args ...string) Result {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	if o.Kubeconfig != "" {
		args = append(args[:len(args):len(args)], "--kubeconfig", o.Kubeconfig)
	}
	cmd := exec.CommandContext(ctx, Runbook(t), args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: out.String(), Stderr: errOut.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("runbook %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Logf("runbook %s: killed after its %v timeout", strings.Join(args, " "), o.Timeout)
	}
	return r
}

// Must fails the test unless the run exited with code and its output (stdout and
// stderr) contains every string given.
func (r Result) Must(t testing.TB, code int, contains ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("runbook %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, code, r.Stdout, r.Stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.Stdout+r.Stderr, s) {
			t.Fatalf("runbook %s: output lacks %q\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), s, r.Stdout, r.Stderr)
		}
	}
}

// Output is stdout and stderr together, for messages.
func (r Result) Output() string { return "stdout:\n" + r.Stdout + "\nstderr:\n" + r.Stderr }
