package project

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const good = `apiVersion: runbook/v1alpha1
kind: Project
environments:
  staging:
    context: staging-eu
    namespace: runbook-staging
    values: [shared/staging.yaml]
  prod:
    context: prod-eu
    kubeconfig: clusters/prod.kubeconfig
`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, FileName), good)
	p, err := Load(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Names(); !reflect.DeepEqual(got, []string{"prod", "staging"}) {
		t.Errorf("Names = %v", got)
	}
	st, err := p.Env("staging")
	if err != nil {
		t.Fatal(err)
	}
	want := &Env{Name: "staging", Context: "staging-eu", Namespace: "runbook-staging", Values: []string{filepath.Join(dir, "shared/staging.yaml")}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("staging = %+v, want %+v", st, want)
	}
	if pr, _ := p.Env("prod"); pr.Kubeconfig != filepath.Join(dir, "clusters/prod.kubeconfig") {
		t.Errorf("kubeconfig is not relative to the project file: %q", pr.Kubeconfig)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"not a project", "apiVersion: runbook/v1alpha1\nkind: Runbook\n", `kind: Project, got "runbook/v1alpha1" and "Runbook"`},
		{"unknown field", "apiVersion: runbook/v1alpha1\nkind: Project\nenvironments:\n  dev:\n    contxt: x\n", "line 5: field contxt not found"},
		{"no environments", "apiVersion: runbook/v1alpha1\nkind: Project\n", "no environments"},
		{"bad name", "apiVersion: runbook/v1alpha1\nkind: Project\nenvironments:\n  Prod_EU: {}\n", `environment "Prod_EU": names are lower-case`},
		{"not yaml", "environments: [", "did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			write(t, path, tt.content)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want it to name the file and say %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml")); err == nil {
		t.Error("a missing project file loaded")
	}
}

func TestUnknownEnv(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, FileName), good)
	p, err := Load(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"stagign", `unknown environment "stagign" (did you mean "staging"?): ` + p.Path + ` declares prod, staging`},
		{"qa", `unknown environment "qa": ` + p.Path + ` declares prod, staging`},
	}
	for _, tt := range tests {
		_, err := p.Env(tt.name)
		var unknown *UnknownEnvError
		if !errors.As(err, &unknown) || err.Error() != tt.want {
			t.Errorf("Env(%q) = %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestValuesFor(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, FileName), good)
	rb := filepath.Join(dir, "runbooks", "migrate", "runbook.yaml")
	write(t, rb, "")
	write(t, filepath.Join(dir, "runbooks", "migrate", "values", "staging.yaml"), "")
	p, _ := Load(filepath.Join(dir, FileName))
	st, _ := p.Env("staging")
	pr, _ := p.Env("prod")
	tests := []struct {
		name string
		env  *Env
		rb   string
		want []string
	}{
		{"project values, then the runbook's values/<env>.yaml", st, rb, []string{filepath.Join(dir, "shared/staging.yaml"), filepath.Join(dir, "runbooks/migrate/values/staging.yaml")}},
		{"no values/<env>.yaml next to the runbook", pr, rb, nil},
		{"no runbook (status, history)", st, "", []string{filepath.Join(dir, "shared/staging.yaml")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.env.ValuesFor(tt.rb); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	write(t, filepath.Join(root, FileName), good) // outside the repository: never found from inside it
	write(t, filepath.Join(repo, ".git", "HEAD"), "")
	deep := filepath.Join(repo, "runbooks", "migrate")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Find(deep); err != nil || got != "" {
		t.Fatalf("found %q (%v) across the repository root", got, err)
	}
	write(t, filepath.Join(repo, FileName), good)
	if got, err := Find(deep); err != nil || got != filepath.Join(repo, FileName) {
		t.Fatalf("Find = %q, %v", got, err)
	}
	write(t, filepath.Join(deep, FileName), good) // the nearest wins
	if got, _ := Find(deep); got != filepath.Join(deep, FileName) {
		t.Fatalf("Find = %q, want the nearest", got)
	}
	outside := filepath.Join(root, "elsewhere")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", root)
	if got, _ := Find(outside); got != filepath.Join(root, FileName) {
		t.Fatalf("outside a repository, under the home directory, Find = %q, want the parent's", got)
	}
}

// TestFindOutsideGit: outside a git repository the lookup stops at the home
// directory, and outside the home directory it looks in the runbook's own
// directory only: a runbook in /tmp/x must not pick up another user's
// /tmp/.runbook.yaml or /.runbook.yaml (issue #15). A file it would read that
// another user owns, or that every user may write, is refused, naming it.
func TestFindOutsideGit(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home", "me")
	shared := filepath.Join(root, "shared") // like /tmp: outside home and any repository
	write(t, filepath.Join(root, "home", FileName), good)
	write(t, filepath.Join(shared, FileName), good)
	for _, d := range []string{filepath.Join(home, "runbooks", "a"), filepath.Join(shared, "x", "y")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	if me := os.Geteuid(); me == 4242 {
		t.Skip("the test's other user is uid 4242")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T)
		dir   string
		want  string // found path; "" none
		err   string // error substring
	}{
		{"under home: not above it", nil, filepath.Join(home, "runbooks", "a"), "", ""},
		{"under home: up to it", func(t *testing.T) { write(t, filepath.Join(home, FileName), good) }, filepath.Join(home, "runbooks", "a"), filepath.Join(home, FileName), ""},
		{"outside home: not a parent's", nil, filepath.Join(shared, "x", "y"), "", ""},
		{"outside home: its own directory", func(t *testing.T) { write(t, filepath.Join(shared, "x", "y", FileName), good) },
			filepath.Join(shared, "x", "y"), filepath.Join(shared, "x", "y", FileName), ""},
		{"another user's file", func(t *testing.T) {
			write(t, filepath.Join(shared, "x", "y", FileName), good)
			ownerOf = ownedBy(FileName, 4242)
		}, filepath.Join(shared, "x", "y"), "", "owned by uid 4242"},
		{"another user's file in a parent", func(t *testing.T) {
			write(t, filepath.Join(home, FileName), good)
			ownerOf = ownedBy(FileName, 4242)
		}, filepath.Join(home, "runbooks", "a"), "", "owned by uid 4242"},
		{"the file of the directory's owner (a CI job as root in a checkout)", func(t *testing.T) {
			write(t, filepath.Join(shared, "x", "y", FileName), good)
			ownerOf = ownedBy("", 4242) // the directory and the file
		}, filepath.Join(shared, "x", "y"), filepath.Join(shared, "x", "y", FileName), ""},
		{"a file every user may write", func(t *testing.T) {
			write(t, filepath.Join(shared, "x", "y", FileName), good)
			if err := os.Chmod(filepath.Join(shared, "x", "y", FileName), 0o666); err != nil {
				t.Fatal(err)
			}
		}, filepath.Join(shared, "x", "y"), "", "every user may write"},
		{"a directory every user may write, without the sticky bit", func(t *testing.T) {
			write(t, filepath.Join(shared, "x", "y", FileName), good)
			if err := os.Chmod(filepath.Join(shared, "x", "y"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, filepath.Join(shared, "x", "y"), "", "every user may write"},
		{"a sticky directory, like /tmp, holding my own file", func(t *testing.T) {
			write(t, filepath.Join(shared, "x", "y", FileName), good)
			if err := os.Chmod(filepath.Join(shared, "x", "y"), 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		}, filepath.Join(shared, "x", "y"), filepath.Join(shared, "x", "y", FileName), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = os.Remove(filepath.Join(home, FileName))
			_ = os.Remove(filepath.Join(shared, "x", "y", FileName))
			_ = os.Chmod(filepath.Join(shared, "x", "y"), 0o755)
			defer func(f func(os.FileInfo) (int, bool)) { ownerOf = f }(ownerOf)
			if tt.setup != nil {
				tt.setup(t)
			}
			got, err := Find(tt.dir)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--project") {
					t.Fatalf("Find = %q, %v; want an error containing %q and naming --project", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Find = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// ownedBy makes files called name (every file and directory when name is "")
// owned by uid, as far as Find can tell.
func ownedBy(name string, uid int) func(os.FileInfo) (int, bool) {
	real := fileOwner
	return func(fi os.FileInfo) (int, bool) {
		if name == "" || fi.Name() == name {
			return uid, true
		}
		return real(fi)
	}
}
