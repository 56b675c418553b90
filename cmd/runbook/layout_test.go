package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// No product package links the test harness (test/...: the sandbox, scenarios,
// the benchmark): what ships is built from product code only.
func TestProductCodeDoesNotImportTheHarness(t *testing.T) {
	const module = "github.com/runbookdev/runbook"
	pkgs, err := exec.Command("go", "list", module+"/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	var product []string
	for _, p := range strings.Fields(string(pkgs)) {
		if !strings.HasPrefix(p, module+"/test/") {
			product = append(product, p)
		}
	}
	deps, err := exec.Command("go", append([]string{"list", "-deps", "-f", `{{.ImportPath}}`}, product...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, d := range strings.Fields(string(deps)) {
		if strings.HasPrefix(d, module+"/test/") {
			t.Errorf("a product package depends on %s", d)
		}
	}
}

// TestLanguageLinksNoCluster: the runbook language (parse, validate, the JSON
// Schema, the actions' declarations) is plain data and expressions; the
// Kubernetes clients belong to the actions' behaviour and the engine. A language
// package that links k8s.io has picked up an implementation.
func TestLanguageLinksNoCluster(t *testing.T) {
	const module = "github.com/runbookdev/runbook"
	language := []string{module + "/runbooks", module + "/schema", module + "/actions/decl"}
	deps, err := exec.Command("go", append([]string{"list", "-deps", "-f", `{{.ImportPath}}`}, language...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	n := 0
	for _, d := range strings.Fields(string(deps)) {
		n++
		if strings.HasPrefix(d, "k8s.io/") || strings.HasPrefix(d, "sigs.k8s.io/") || strings.HasPrefix(d, "github.com/projectcalico/") || d == module+"/actions" {
			t.Errorf("the language links %s", d)
		}
	}
	if n < len(language) {
		t.Fatalf("go list -deps listed %d packages: %s", n, deps)
	}
}

// TestREADMELayoutNamesEveryPackage: the README's Layout section is where a
// newcomer learns the tree; a product package it does not name is one they
// cannot find.
func TestREADMELayoutNamesEveryPackage(t *testing.T) {
	const module = "github.com/runbookdev/runbook"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	pkgs, err := exec.Command("go", "list", module+"/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(pkgs)) {
		rel := strings.TrimPrefix(p, module+"/")
		if strings.HasPrefix(rel, "test/") || strings.HasPrefix(rel, "hack/") {
			continue // the harness: named as a whole (hack/, test/)
		}
		if !strings.Contains(layout, rel) {
			t.Errorf("README.md's Layout section does not name %s", rel)
		}
	}
}
