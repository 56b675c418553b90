// Package testbin builds the runbook CLI for the tests that drive the real binary,
// its flags and exit codes, as a pipeline or the container image would.
//
// One build per test process, the way the image builds it (static, no cgo,
// -trimpath), into one fixed place under the temporary directory instead of a new
// directory per package and run that nobody removes. Packages run by `go test ./...`
// in parallel build side by side and rename into place: a rename is atomic, and a
// process still running the previous file keeps it.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const pkg = "github.com/runbookdev/runbook/cmd/runbook"

var (
	once sync.Once
	path string
	err  error
)

// Runbook returns the path of the freshly built CLI, failing the test when it does
// not build.
func Runbook(t testing.TB) string {
	t.Helper()
	once.Do(func() { path, err = build() })
	if err != nil {
		t.Fatalf("build runbook: %v", err)
	}
	return path
}

func build() (string, error) {
	dir := filepath.Join(os.TempDir(), "runbook-testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".runbook-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	final := filepath.Join(dir, "runbook")
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return final, nil
}
