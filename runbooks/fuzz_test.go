package runbooks

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/runbookdev/runbook/actions"
)

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and every
// rejection must be an Errors whose entries name the file.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/broken/*.yaml", "../examples/*/runbook.yaml", "testdata/values/runbook.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(interpRunbook))
	f.Fuzz(func(t *testing.T, src []byte) {
		rb, err := Parse("fuzz.yaml", src, actions.Default)
		if err == nil {
			if rb == nil {
				t.Fatal("nil runbook without error")
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("rejection is not a positioned error list: %v", err)
		}
		for _, e := range errs {
			if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 {
				t.Fatalf("error without file:line: %v", e)
			}
		}
	})
}

// FuzzValues feeds arbitrary values files and --set flags to the merger.
func FuzzValues(f *testing.F) {
	f.Add([]byte("pool: a\ncidr: 10.0.0.0/16\nlabels: {a: b}\n"), "labels.x.y=1")
	f.Add([]byte("zones: [1, 2]\nreplicas: 3\n"), "zones={a,b}")
	f.Add([]byte("apiVersion: runbook/v1alpha1\nkind: Runbook\n"), "cidr=::/0")
	f.Add([]byte(": :\n- ["), "wait=1h")
	rb, err := ParseFile("testdata/values/runbook.yaml", actions.Default)
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte, set string) {
		file := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(file, src, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := ResolveParams(rb, ValueInputs{Files: []string{file}, Sets: []string{set}})
		if err == nil {
			_ = p.Digest()
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("rejection is not a positioned error list: %v", err)
		}
		for _, e := range errs {
			if e.Pos.File == "" {
				t.Fatalf("error without a source: %v", e)
			}
		}
	})
}
