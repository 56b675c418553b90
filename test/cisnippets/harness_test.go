package cisnippets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/test/sandbox"
	"github.com/runbookdev/runbook/test/testbin"
)

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "gh" { // the test binary as the pipelines' gh
		os.Exit(fakeGHMain(os.Args[1:]))
	}
	sandbox.Main(m, sandbox.Options{})
}

// fakeGo stands in for the go command of the runner image: `go install` of the
// runbook module installs the binary under test, `go env GOPATH` answers; anything
// else fails, so a snippet cannot depend on more without this harness knowing.
const fakeGo = `#!/bin/sh
case "$1 $2" in
  "install github.com/runbookdev/runbook/cmd/runbook@"*)
    mkdir -p "$GOPATH/bin" && cp "$RUNBOOK_UNDER_TEST" "$GOPATH/bin/runbook" && exit 0 ;;
  "env GOPATH") echo "$GOPATH"; exit 0 ;;
esac
echo "fake go (test/cisnippets): unsupported: go $*" >&2
exit 1
`

// world is what both harnesses share: a committed fixture repository laid out as
// docs/environments.md describes, the secrets, and a place for artifacts.
type world struct {
	t         *testing.T
	repo      string
	fakeBin   string
	artifacts string
	cluster   *sandbox.Cluster
	// overrides replace the snippet's own variables (the one thing a team edits).
	overrides map[string]string
}

func newWorld(t *testing.T, c *sandbox.Cluster) *world {
	t.Helper()
	w := &world{t: t, repo: t.TempDir(), fakeBin: t.TempDir(), artifacts: t.TempDir(), cluster: c,
		overrides: map[string]string{"TARGET_ENV": "sandbox"}}
	if err := os.WriteFile(filepath.Join(w.fakeBin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join("..", "..")
	copyFile(t, filepath.Join(root, "examples/migrate-ippool/runbook.yaml"), filepath.Join(w.repo, "runbooks/migrate-ippool/runbook.yaml"))
	for _, env := range []string{"sandbox", "staging", "prod"} {
		copyFile(t, filepath.Join(root, "examples/migrate-ippool/values", env+".yaml"), filepath.Join(w.repo, "runbooks/migrate-ippool/values", env+".yaml"))
	}
	copyFile(t, filepath.Join(root, "schema/runbook.schema.json"), filepath.Join(w.repo, "runbook.schema.json"))
	writeFile(t, filepath.Join(w.repo, ".runbook.yaml"), `apiVersion: runbook/v1alpha1
kind: Project
environments:
  sandbox:
    namespace: runbook-ci      # the kubeconfig comes from the pipeline's secret
  staging:
    context: staging-eu
  prod:
    context: prod-eu
`)
	git(t, w.repo, "init", "-q", "-b", "main")
	git(t, w.repo, "add", ".")
	git(t, w.repo, "commit", "-q", "-m", "runbooks")
	return w
}

// push commits one more change to the fixture repository, as a second push to a
// pull request's branch does (the plan's source line names the new commit).
func (w *world) push(file, content string) {
	writeFile(w.t, filepath.Join(w.repo, file), content)
	git(w.t, w.repo, "add", ".")
	git(w.t, w.repo, "commit", "-q", "-m", "another push")
}

// checkout is a fresh clone for one job, as runners give each job.
func (w *world) checkout() string {
	dir := filepath.Join(w.t.TempDir(), "ws")
	git(w.t, "", "clone", "-q", w.repo, dir)
	return dir
}

func (w *world) kubeconfigBytes() []byte {
	b, err := os.ReadFile(w.cluster.KubeconfigPath())
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) kubeconfigBase64() string {
	return base64.StdEncoding.EncodeToString(w.kubeconfigBytes())
}

// shell runs a script with bash the way both runners do (-e, pipefail), with env on
// top of a minimal environment: PATH (the fake go first), HOME, and nothing of the
// test's own KUBECONFIG.
func (w *world) shell(dir string, env map[string]string, script string) (int, string) {
	w.t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	base := map[string]string{"PATH": w.fakeBin + ":" + os.Getenv("PATH"), "HOME": w.t.TempDir(), "CI": "true",
		"RUNBOOK_UNDER_TEST": testbin.Runbook(w.t), "NO_COLOR": "1"}
	for k, v := range env {
		base[k] = v
	}
	keys := make([]string, 0, len(base))
	for k := range base {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+base[k])
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	case err != nil:
		w.t.Fatal(err)
	}
	return 0, out.String()
}

// saveArtifacts copies the files matching patterns (globs, relative to dir) under name.
func (w *world) saveArtifacts(dir, name string, patterns []string) []string {
	w.t.Helper()
	var saved []string
	for _, p := range patterns {
		matches, err := filepath.Glob(filepath.Join(dir, p))
		if err != nil {
			w.t.Fatalf("artifact pattern %q: %v", p, err)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(dir, m)
			copyFile(w.t, m, filepath.Join(w.artifacts, name, rel))
			saved = append(saved, rel)
		}
	}
	return saved
}

// loadArtifacts copies what was saved under name into dir. A missing artifact is
// an error when required (GitHub's download-artifact fails), nothing otherwise
// (GitLab passes what earlier jobs saved, which may be nothing).
func (w *world) loadArtifacts(dir, name string, required bool) {
	w.t.Helper()
	src := filepath.Join(w.artifacts, name)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		if required {
			w.t.Fatalf("no artifact %s was uploaded", name)
		}
		return
	}
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		copyFile(w.t, path, filepath.Join(dir, rel))
		return nil
	})
	if err != nil {
		w.t.Fatalf("artifact %s: %v", name, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.com", "GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// jobResult is what a job did, for the tests' assertions.
type jobResult struct {
	ran     bool
	code    int
	log     string
	summary string // GitHub's step summary
	dir     string // its workspace, kept for inspection
}

func (r jobResult) String() string {
	return fmt.Sprintf("ran %v, exit %d\n%s", r.ran, r.code, r.log)
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}
