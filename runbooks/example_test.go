package runbooks

import (
	"path/filepath"
	"testing"

	"github.com/runbookdev/runbook/actions"
)

func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../examples/*/runbook.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		rb, err := ParseFile(f, actions.Default)
		if err != nil {
			t.Fatalf("%s:\n%v", f, err)
		}
		values, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "values", "*.yaml"))
		if len(values) == 0 {
			t.Fatalf("%s has no values files", f)
		}
		for _, v := range values {
			p, err := ResolveParams(rb, ValueInputs{Files: []string{v}})
			if err != nil {
				t.Errorf("%s with %s:\n%v", f, v, err)
				continue
			}
			// What plan and apply check before they connect: forEach items and the
			// with: values the params decide.
			ex, err := rb.Expand(p, "")
			if err == nil {
				err = ex.CheckParams(p, "", true)
			}
			if err != nil {
				t.Errorf("%s with %s:\n%v", f, v, err)
			}
		}
	}
}
