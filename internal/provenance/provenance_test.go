package provenance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func sh(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	repo := t.TempDir()
	sh(t, repo, "init", "-q")
	rb := filepath.Join(repo, "runbooks", "m", "runbook.yaml")
	values := filepath.Join(repo, "runbooks", "m", "values", "prod.yaml")
	write(t, rb, "a")
	write(t, values, "x: 1")
	write(t, filepath.Join(repo, "README"), "r")
	sh(t, repo, "add", ".")
	sh(t, repo, "commit", "-q", "-m", "one")
	head := sh(t, repo, "rev-parse", "HEAD")
	outside := filepath.Join(t.TempDir(), "values.yaml")
	write(t, outside, "x: 2")

	tests := []struct {
		name   string
		change func()
		inputs []string
		dirty  bool
	}{
		{"clean", func() {}, []string{values}, false},
		{"an unrelated file changed", func() { write(t, filepath.Join(repo, "README"), "changed") }, []string{values}, false},
		{"a values file outside the repository", func() {}, []string{values, outside}, true},
		{"a values file changed", func() { write(t, values, "x: 3") }, []string{values}, true},
		{"the runbook changed", func() { sh(t, repo, "checkout", "-q", "--", "."); write(t, rb, "b") }, nil, true},
		{"an untracked values file", func() {
			sh(t, repo, "checkout", "-q", "--", ".")
			write(t, filepath.Join(repo, "runbooks", "m", "values", "new.yaml"), "x: 4")
		}, []string{filepath.Join(repo, "runbooks", "m", "values", "new.yaml")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			info, ok := Git(context.Background(), rb, tt.inputs...)
			if !ok || info.Commit != head || info.File != "runbooks/m/runbook.yaml" || info.Dirty != tt.dirty {
				t.Fatalf("Git = %+v, %v; want commit %s, file runbooks/m/runbook.yaml, dirty %v", info, ok, head, tt.dirty)
			}
		})
	}
}

func TestNoGit(t *testing.T) {
	plain := t.TempDir()
	rb := filepath.Join(plain, "runbook.yaml")
	write(t, rb, "a")
	if info, ok := Git(context.Background(), rb); ok {
		t.Errorf("outside a repository: %+v", info)
	}
	empty := t.TempDir()
	if _, err := exec.LookPath("git"); err == nil {
		sh(t, empty, "init", "-q")
		write(t, filepath.Join(empty, "runbook.yaml"), "a")
		if info, ok := Git(context.Background(), filepath.Join(empty, "runbook.yaml")); ok {
			t.Errorf("a repository without commits: %+v", info)
		}
	}
	t.Setenv("PATH", t.TempDir()) // no git binary, as in the scratch image
	if info, ok := Git(context.Background(), rb); ok {
		t.Errorf("without git: %+v", info)
	}
}
