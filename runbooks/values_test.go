package runbooks

import (
	"strings"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/value"
)

func loadValuesRunbook(t *testing.T) *Runbook {
	t.Helper()
	rb, err := ParseFile("testdata/values/runbook.yaml", actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func TestValuesPrecedence(t *testing.T) {
	rb := loadValuesRunbook(t)
	tests := []struct {
		name   string
		in     ValueInputs
		want   map[string]any
		source map[string]string
	}{
		{
			name:   "defaults and one file",
			in:     ValueInputs{Files: []string{"testdata/values/base.yaml"}},
			want:   map[string]any{"pool": "from-base", "replicas": 2, "wait": time.Minute, "labels": map[string]any{"team": "net", "tier": "base-file", "owner": "sre"}},
			source: map[string]string{"pool": "testdata/values/base.yaml", "wait": "default"},
		},
		{
			name: "later file wins, maps merge key by key, lists replace",
			in:   ValueInputs{Files: []string{"testdata/values/base.yaml", "testdata/values/env.yaml"}},
			want: map[string]any{"pool": "from-env", "replicas": 2, "labels": map[string]any{"team": "net", "tier": "env-file", "owner": "sre"}, "zones": []any{"x", "y"}},
		},
		{
			name: "--set beats files, later --set beats earlier, typed by the param",
			in: ValueInputs{Files: []string{"testdata/values/base.yaml", "testdata/values/env.yaml"},
				Sets: []string{"pool=from-set-1", "pool=from-set-2", "replicas=5", "wait=90s", "dryRun=true", "labels.tier=set", "zones={p, q}", "cidr=FD00::/108"}},
			want: map[string]any{"pool": "from-set-2", "replicas": 5, "wait": 90 * time.Second, "dryRun": true,
				"labels": map[string]any{"team": "net", "tier": "set", "owner": "sre"}, "zones": []any{"p", "q"}, "cidr": "fd00::/108"},
			source: map[string]string{"pool": "--set", "cidr": "--set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveParams(rb, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				if value.Format(got.Values[k]) != value.Format(want) {
					t.Errorf("%s = %s, want %s", k, value.Format(got.Values[k]), value.Format(want))
				}
			}
			for k, want := range tt.source {
				if got.Source[k] != want {
					t.Errorf("source of %s = %q, want %q", k, got.Source[k], want)
				}
			}
		})
	}
}

func TestValuesErrors(t *testing.T) {
	rb := loadValuesRunbook(t)
	tests := []struct {
		name string
		in   ValueInputs
		want []string
	}{
		{"required missing", ValueInputs{}, []string{
			`testdata/values/runbook.yaml:6:3: params.cidr: required param is not set: give it in a values file (-f) or with --set cidr=...`}},
		{"bad file reports every problem", ValueInputs{Files: []string{"testdata/values/base.yaml", "testdata/values/bad.yaml"}}, []string{
			`testdata/values/bad.yaml:1:1: pol: unknown param "pol" (did you mean "pool"?); the runbook declares: pool, cidr, replicas, wait, dryRun, labels, zones, mode`,
			`testdata/values/bad.yaml:2:11: replicas: expected an integer, got "many"`,
			`testdata/values/bad.yaml:3:7: mode: "turbo" is not one of the allowed values "fast", "safe"`}},
		{"runbook passed as values", ValueInputs{Files: []string{"testdata/values/runbook-as-values.yaml"}}, []string{
			`testdata/values/runbook-as-values.yaml:1:1: this is a Runbook, not a values file: pass the runbook as the argument and only values files to -f`,
			`testdata/values/runbook.yaml:6:3: params.cidr: required param is not set: give it in a values file (-f) or with --set cidr=...`}},
		{"set errors", ValueInputs{Files: []string{"testdata/values/base.yaml"}, Sets: []string{"nope=1", "pool.x=1", "zones=a", "labels=x", "replicas", "cidr=10.1.2.3/8"}}, []string{
			`--set cidr=10.1.2.3/8: cidr: CIDR "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`,
			`--set labels=x: param labels is a map: set its keys with --set labels.key=value`,
			`--set nope=1: unknown param "nope"; the runbook declares: pool, cidr, replicas, wait, dryRun, labels, zones, mode`,
			`--set pool.x=1: param pool is a string, so "pool.x" cannot set a key inside it`,
			`--set replicas: expected name=value`,
			`--set zones=a: param zones is a list: write --set zones={a,b}`}},
		// yaml.Unmarshal read the first document and dropped the rest without a word.
		{"a second document", ValueInputs{Files: []string{"testdata/values/two-docs.yaml"}, Sets: []string{"cidr=10.0.0.0/16"}}, []string{
			`testdata/values/two-docs.yaml:2:1: a values file holds one YAML document; found another one here`}},
		{"missing file", ValueInputs{Files: []string{"testdata/values/absent.yaml"}}, []string{
			`testdata/values/absent.yaml: read values file: open testdata/values/absent.yaml: no such file or directory`,
			`testdata/values/runbook.yaml:6:3: params.cidr: required param is not set: give it in a values file (-f) or with --set cidr=...`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ResolveParams(rb, tt.in)
			if err == nil {
				t.Fatal("want an error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestParamsDigest(t *testing.T) {
	rb := loadValuesRunbook(t)
	a, _ := ResolveParams(rb, ValueInputs{Sets: []string{"cidr=10.0.0.0/16"}})
	b, _ := ResolveParams(rb, ValueInputs{Sets: []string{"cidr=10.0.0.0/16", "pool=from-default"}})
	c, _ := ResolveParams(rb, ValueInputs{Sets: []string{"cidr=10.1.0.0/16"}})
	if a.Digest() != b.Digest() {
		t.Error("the same values from different sources must have the same digest")
	}
	if a.Digest() == c.Digest() {
		t.Error("different values must have different digests")
	}
}

// TestReaderErrorPositions: a byte that is not UTF-8, or a control character, is
// reported at its own line and column (yaml.v3's reader says neither, and the
// error used to point at line 1), in runbooks and values files alike.
func TestReaderErrorPositions(t *testing.T) {
	const rb = "apiVersion: runbook/v1alpha1\nkind: Runbook\nmetadata: {name: x}\nsteps:\n  - id: a\n    action: pause\n"
	tests := []struct {
		name   string
		values bool
		src    string
		want   string
	}{
		{"invalid byte in a runbook", false, rb + "    name: caf\xe9 time\n", `x.yaml:7:14: invalid YAML: invalid trailing UTF-8 octet (byte 0xe9): save the file as UTF-8`},
		{"after multi-byte characters", false, rb + "    name: \u00e9t\u00e9 \xff\n", `x.yaml:7:15: invalid YAML: invalid leading UTF-8 octet (byte 0xff): save the file as UTF-8`},
		{"in a comment", false, "# \xc3(\n" + rb, `x.yaml:1:3: invalid YAML: invalid trailing UTF-8 octet (byte 0xc3): save the file as UTF-8`},
		{"truncated at the end", false, rb + "    name: x\xe2\x82", `x.yaml:7:12: invalid YAML: incomplete UTF-8 octet sequence (byte 0xe2): save the file as UTF-8`},
		{"control character", false, rb + "    name: a\x01b\n", `x.yaml:7:12: invalid YAML: control characters are not allowed (U+0001)`},
		{"in a values file", true, "pool: a\nmode: \xfe\n", `x.yaml:2:7: invalid YAML: invalid leading UTF-8 octet (byte 0xfe): save the file as UTF-8`},
	}
	vrb := loadValuesRunbook(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.values {
				_, errs := parseValues(vrb, "x.yaml", []byte(tt.src))
				err = errs.Err()
			} else {
				_, err = Parse("x.yaml", []byte(tt.src), actions.Default)
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
