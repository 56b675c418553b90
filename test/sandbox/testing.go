package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookdev/runbook/test/scenarios"
)

// The package's shared cluster, started by the first ForTest and stopped by Main.
var shared struct {
	once       sync.Once
	mainCalled bool
	opts       Options
	cluster    *Cluster
	err        error
}

// Main runs a test package that uses ForTest; call it from TestMain:
//
//	func TestMain(m *testing.M) { sandbox.Main(m, sandbox.Options{}) }
//
// The cluster starts lazily, on the first ForTest, so `go test -run` of tests
// that need none starts nothing. After the tests it is stopped; if a test failed,
// its work directory (logs/) is kept and printed.
func Main(m *testing.M, opts Options) {
	shared.opts, shared.mainCalled = opts, true
	code := m.Run()
	if c := shared.cluster; c != nil {
		if code != 0 {
			c.ownWorkDir = false // keep the logs for the failure
			fmt.Fprintf(os.Stderr, "sandbox: tests failed; cluster logs kept in %s\n", c.LogDir())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := c.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "sandbox: stopping: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		cancel()
	}
	os.Exit(code)
}

// ForTest returns the test package's shared cluster, starting it on first use
// (the package must call Main from TestMain). Without a tools directory the test is
// skipped with instructions, except under CI=true, where it fails: CI must never
// silently skip the cluster tests.
func ForTest(t testing.TB) *Cluster {
	t.Helper()
	if !shared.mainCalled {
		// Without Main nobody stops the cluster, and etcd and the apiserver outlive
		// the test binary.
		t.Fatal("sandbox.ForTest needs TestMain to call sandbox.Main(m, opts)")
	}
	requireTools(t, shared.opts)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout(shared.opts))
		defer cancel()
		shared.cluster, shared.err = Start(ctx, shared.opts)
	})
	if shared.err != nil {
		t.Fatalf("sandbox: %v", shared.err)
	}
	return shared.cluster
}

// StartForTest starts a cluster of the test's own (for tests that break it on
// purpose), stopped when the test ends. WorkDir defaults to a test temp directory.
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	requireTools(t, opts)
	if opts.WorkDir == "" {
		// Not t.TempDir, which goes whatever the outcome: a failed test keeps
		// its cluster's logs, and says where.
		dir, err := os.MkdirTemp("", "sandbox-"+strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-")
		if err != nil {
			t.Fatalf("sandbox: %v", err)
		}
		opts.WorkDir = dir
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("sandbox: test failed; cluster logs kept in %s", logDir(dir))
				return
			}
			_ = os.RemoveAll(dir)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout(opts))
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("sandbox: stopping: %v", err)
		}
	})
	return c
}

func requireTools(t testing.TB, opts Options) {
	t.Helper()
	if opts.ToolsDir != "" || os.Getenv(ToolsDirEnv) != "" {
		return
	}
	msg := ToolsDirEnv + " is not set: run `make test`, or export " + ToolsDirEnv + "=$(bash hack/build-tools.sh --print-dir)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("sandbox: %s (CI=true: cluster tests must run)", msg)
	}
	t.Skipf("sandbox: %s", msg)
}

// startTimeout is StartTimeout for the options' scenario (the default one when
// none is given).
func startTimeout(opts Options) time.Duration {
	s := opts.Scenario
	if s == nil {
		if d, err := scenarios.Load(scenarios.Default); err == nil {
			s = d
		}
	}
	if s == nil {
		return 5 * time.Minute
	}
	return StartTimeout(s)
}
