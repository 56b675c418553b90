package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runbookdev/runbook/test/sandbox"
)

// The migration these tests run changes the cluster: a cluster of this package's own.
func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// runbookBinary is built as the image builds it: static, no cgo.
func runbookBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runbook-deploy-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "runbook")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "github.com/runbookdev/runbook/cmd/runbook")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build runbook: %v", buildErr)
	}
	return binPath
}
