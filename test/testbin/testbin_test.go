package testbin

import (
	"os/exec"
	"strings"
	"testing"
)

func TestRunbookBuildsOnceAndRuns(t *testing.T) {
	a, b := Runbook(t), Runbook(t)
	if a != b {
		t.Fatalf("built twice: %s, %s", a, b)
	}
	out, err := exec.Command(a, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "runbook") {
		t.Fatalf("runbook version: %v\n%s", err, out)
	}
}
