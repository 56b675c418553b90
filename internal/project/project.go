// Package project reads the project file, .runbook.yaml: the environments a team
// applies its runbooks to, each with its kube context, journal namespace and values
// files, so that `runbook apply RUNBOOK --env staging` needs no other flag.
//
//	apiVersion: runbook/v1alpha1
//	kind: Project
//	environments:
//	  staging:
//	    context: staging-eu          # kubeconfig context (default: the current one)
//	    kubeconfig: ~/.kube/staging  # optional; relative to this file
//	    namespace: runbook-system    # journal and lock namespace
//	    values: [shared/staging.yaml]# relative to this file, before values/<env>.yaml
//
// Next to each runbook, values/<env>.yaml is used as well when it exists: the
// documented layout needs no values entry at all.
package project

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runbookdev/runbook/internal/suggest"
)

// FileName is the project file looked for from a runbook's directory upwards.
const FileName = ".runbook.yaml"

const (
	apiVersion = "runbook/v1alpha1"
	kind       = "Project"
)

// Project is a parsed project file.
type Project struct {
	Path string // absolute path of the file
	Envs map[string]*Env
}

// Env is one environment: where runbooks are applied and with which values.
type Env struct {
	Name       string
	Kubeconfig string   // absolute, or "" for kubectl's default loading rules
	Context    string   // "" for the kubeconfig's current context
	Namespace  string   // "" for the command's default
	Values     []string // absolute paths, in order
}

// file is the on-disk form; unknown fields are errors so a typo is not ignored.
type file struct {
	APIVersion   string             `yaml:"apiVersion"`
	Kind         string             `yaml:"kind"`
	Environments map[string]envFile `yaml:"environments"`
}

type envFile struct {
	Context    string   `yaml:"context"`
	Kubeconfig string   `yaml:"kubeconfig"`
	Namespace  string   `yaml:"namespace"`
	Values     []string `yaml:"values"`
}

// envName is what an environment may be called: it appears in file names
// (values/<env>.yaml), in guards (env == "prod") and on the command line.
var envName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Load reads and checks a project file.
func Load(path string) (*Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("project file %s: %w", path, err)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("project file: %w", err)
	}
	p, err := parse(b, abs)
	if err != nil {
		return nil, fmt.Errorf("project file %s: %w", path, err)
	}
	return p, nil
}

func parse(b []byte, abs string) (*Project, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	if f.APIVersion != apiVersion || f.Kind != kind {
		return nil, fmt.Errorf("want apiVersion: %s and kind: %s, got %q and %q", apiVersion, kind, f.APIVersion, f.Kind)
	}
	if len(f.Environments) == 0 {
		return nil, errors.New("no environments")
	}
	dir := filepath.Dir(abs)
	p := &Project{Path: abs, Envs: map[string]*Env{}}
	var problems []string
	for name, e := range f.Environments {
		if !envName.MatchString(name) {
			problems = append(problems, fmt.Sprintf("environment %q: names are lower-case letters, digits and '-'", name))
			continue
		}
		env := &Env{Name: name, Context: e.Context, Namespace: e.Namespace}
		if e.Kubeconfig != "" {
			env.Kubeconfig = resolve(dir, e.Kubeconfig)
		}
		for _, v := range e.Values {
			env.Values = append(env.Values, resolve(dir, v))
		}
		p.Envs[name] = env
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return p, nil
}

// resolve makes a path from the project file absolute: ~/ is the home directory,
// anything relative is relative to the project file, not to the working directory,
// so a pipeline may run from anywhere.
func resolve(dir, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Names lists the environments, sorted.
func (p *Project) Names() []string {
	names := make([]string, 0, len(p.Envs))
	for n := range p.Envs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnknownEnvError is returned for an environment the project does not declare.
type UnknownEnvError struct {
	Name    string
	Project string
	Known   []string
}

func (e *UnknownEnvError) Error() string {
	return fmt.Sprintf("unknown environment %q%s: %s declares %s", e.Name, suggest.Hint(e.Name, e.Known), e.Project, strings.Join(e.Known, ", "))
}

// Env returns the named environment.
func (p *Project) Env(name string) (*Env, error) {
	if e, ok := p.Envs[name]; ok {
		return e, nil
	}
	return nil, &UnknownEnvError{Name: name, Project: p.Path, Known: p.Names()}
}

// ValuesFor lists the values files of this environment for a runbook, lowest
// precedence first: the project's, then values/<env>.yaml next to the runbook when
// it exists (the documented layout: per-runbook values win over shared ones).
func (e *Env) ValuesFor(runbookFile string) []string {
	out := append([]string(nil), e.Values...)
	if runbookFile == "" {
		return out
	}
	conv := filepath.Join(filepath.Dir(runbookFile), "values", e.Name+".yaml")
	if abs, err := filepath.Abs(conv); err == nil {
		conv = abs
	}
	if _, err := os.Stat(conv); err == nil && !slices.Contains(out, conv) {
		out = append(out, conv)
	}
	return out
}

// yamlError shortens yaml.v3's "unmarshal errors:\n  line 5: field x not found in
// type project.envFile" to the line numbers and what is wrong: the Go type means
// nothing to the person editing the file.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if j := strings.Index(m, " in type "); j >= 0 {
			m = m[:j]
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}
