package main

import (
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
