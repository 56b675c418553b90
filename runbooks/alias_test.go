package runbooks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
)

// laughs builds a "billion laughs" list: nine levels of anchors, each a list of
// nine aliases of the one before, so the last stands for 9^9 (387 million) nodes
// in a file of well under a kilobyte. It returns the YAML flow sequence.
func laughs() string {
	var b strings.Builder
	b.WriteString(`[&a0 [l, l, l, l, l, l, l, l, l]`)
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, `, &a%d [`, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]")
	}
	b.WriteString("]")
	return b.String()
}

// TestAliasExpansionIsBounded: YAML aliases nested in each other are refused,
// quickly, at the alias that takes the document past the bound, instead of
// being walked for minutes (issue #15, item 9: a 651-byte file kept validate busy
// for 117 s); an alias inside its own anchor is refused instead of recursing
// until the stack overflows. Reusing an anchor a few times stays allowed.
func TestAliasExpansionIsBounded(t *testing.T) {
	const head = "apiVersion: runbook/v1alpha1\nkind: Runbook\nmetadata: {name: lol}\nsteps:\n  - id: s\n    action: assertNewAllocations\n    with:\n      pool: p\n"
	lol := laughs()
	tests := []struct {
		name string
		src  string
		want string // substring of the one error; "" means the file is valid
	}{
		// a0..a3 add 90+819+7380 nodes, the first *a3 of a4 another 7381.
		{"billion laughs in a with: list", head + "      tolerations: " + lol + "\n",
			`fuzz.yaml:9:212: steps[0].with.tolerations[4][0]: YAML alias *a3 expands the document by more than 10000 nodes`},
		{"billion laughs in a with: map", head + "      securityContext: {x: " + lol + "}\n",
			`fuzz.yaml:9:220: steps[0].with.securityContext.x[4][0]: YAML alias *a3 expands the document by more than 10000 nodes`},
		{"alias inside its own anchor", head + "      tolerations: &t [a, *t]\n",
			`fuzz.yaml:9:27: steps[0].with.tolerations[1]: YAML alias *t refers to a node that contains it`},
		{"alias inside its own anchor, in a guard", head + "    when: &w [*w]\n", `YAML alias *w refers to a node that contains it`},
		{"anchors reused a few times", head + "      tolerations: [&t {key: a, operator: Exists}, *t, *t]\n      nodeSelector: &n {a: b}\n      securityContext: {x: *n}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := Parse("fuzz.yaml", []byte(tt.src), actions.Default)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Parse still busy after 10 s on a %d-byte file", len(tt.src))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Parse took %s on a %d-byte file", took, len(tt.src))
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want positioned errors, got %v", err)
			}
			if len(errs) != 1 || !strings.Contains(errs.Error(), tt.want) || !strings.Contains(errs.Error(), "alias") {
				t.Fatalf("want one error containing %q naming the alias, got:\n%v", tt.want, err)
			}
		})
	}
}

// TestAliasExpansionIsBoundedInValues: the same bound for values files (yaml.v3's
// own check fires there, but without naming the alias or its place).
func TestAliasExpansionIsBoundedInValues(t *testing.T) {
	rb := loadValuesRunbook(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(file, []byte("cidr: 10.0.0.0/16\nzones: "+laughs()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := ResolveParams(rb, ValueInputs{Files: []string{file}})
	if time.Since(start) > 2*time.Second {
		t.Errorf("ResolveParams took %s", time.Since(start))
	}
	if err == nil || !strings.Contains(err.Error(), file+":2:200: zones[4][0]: YAML alias *a3 expands the document by more than 10000 nodes") {
		t.Fatalf("want an error at %s:2 naming the alias, got %v", file, err)
	}
}
