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
	if got, _ := Find(outside); got != filepath.Join(root, FileName) {
		t.Fatalf("outside a repository, Find = %q, want the parent's", got)
	}
}
