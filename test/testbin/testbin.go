// Package testbin builds the runbook CLI for the tests that drive the real binary,
// its flags and exit codes, as a pipeline or the container image would.
//
// One build per test process, the way the image builds it (static, no cgo,
// -trimpath), into one fixed place per checkout under the temporary directory
// instead of a new directory per package and run that nobody removes. Packages run
// by `go test ./...` in parallel build side by side and rename into place: a rename
// is atomic, and a process still running the previous file keeps it. The place is
// per checkout (a hash of its go.mod path): tests of two clones on one machine
// once ran each other's binary.
package testbin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSpace(gomod))
	dir := filepath.Join(os.TempDir(), "runbook-testbin", hex.EncodeToString(sum[:6]))
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
