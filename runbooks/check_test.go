package runbooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/value"
	"github.com/runbookdev/runbook/internal/value/check"
)

// declaredChecks are the value rules the action declarations carry (issue #15,
// item 10): the proposed declaration in actions/ sets each as the parameter's
// value.Spec Check. checkedRegistry fills in the ones a declaration lacks, so
// these tests run the same rules whether or not actions/ declares them yet; once
// every declaration has its Check, checkedRegistry is actions.Default.
var declaredChecks = map[string]map[string]value.Check{
	"ensurePool":             {"name": check.PoolName, "blockSize": check.BlockSize, "nodeSelector": check.CalicoSelector, "allowedUses": check.AllowedUses},
	"disablePool":            {"name": check.PoolName},
	"deletePool":             {"name": check.PoolName},
	"releaseLeakedAddresses": {"pool": check.PoolName},
	"assertNewAllocations":   {"pool": check.PoolName, "namespace": check.NamespaceName, "maxNodes": check.AtLeast(1)},
	"deletePodsInPool": {"pool": check.PoolName, "targetPool": check.Optional(check.PoolName), "namespace": check.Optional(check.NamespaceName),
		"selector": check.LabelSelector, "maxUnavailable": check.AtLeast(1), "concurrency": check.AtLeast(1), "perNodeConcurrency": check.AtLeast(1)},
}

func checkedRegistry(t testing.TB) *decl.Registry {
	t.Helper()
	r := decl.NewRegistry()
	for _, d := range actions.Default.Actions() {
		c := *d
		c.Params = append([]decl.Param(nil), d.Params...)
		for i := range c.Params {
			if rule := declaredChecks[c.Name][c.Params[i].Name]; rule != nil && c.Params[i].Check == nil {
				c.Params[i].Check = rule
			}
		}
		r.Add(&c)
	}
	for _, f := range actions.Default.Funcs() {
		r.AddFunc(f)
	}
	return r
}

// TestDeclaredDefaultsPassTheirChecks: a declared default is never checked when
// it is used (value.Spec.Resolve), so it must pass its own rule.
func TestDeclaredDefaultsPassTheirChecks(t *testing.T) {
	for _, d := range checkedRegistry(t).Actions() {
		for _, p := range d.Params {
			if p.Check != nil && p.Default != nil {
				if err := p.Check(p.Default); err != nil {
					t.Errorf("%s.%s: default %s: %v", d.Name, p.Name, value.Format(p.Default), err)
				}
			}
		}
	}
}

const checkHead = "apiVersion: runbook/v1alpha1\nkind: Runbook\nmetadata: {name: checks}\n"

// TestLiteralsAreCheckedAtValidate: every literal the issue found passing validate
// and plan is refused by Parse, at its file:line:col and field, with Calico's or
// Kubernetes' reason; so is a template whose value is known at validate (it reads
// only params with defaults). Templates known only later are left for
// CheckParams and the run.
func TestLiteralsAreCheckedAtValidate(t *testing.T) {
	ensure := checkHead + "steps:\n  - id: a\n    action: ensurePool\n    with:\n      cidr: 10.0.0.0/16\n"
	move := checkHead + "steps:\n  - id: a\n    action: deletePodsInPool\n    with:\n      pool: old\n"
	tests := []struct {
		name string
		src  string
		want string // "" for valid
	}{
		{"pool name", ensure + "      name: Bad_Name!\n",
			`x.yaml:9:13: steps[0].with.name: "Bad_Name!" is not a valid Calico IP pool name: name must consist of lower case alphanumeric characters, '-' or '.'`},
		{"block size", ensure + "      name: p\n      blockSize: 99\n",
			`x.yaml:10:18: steps[0].with.blockSize: blockSize 99 is not a Calico block size: IPv4 pools take 20 to 32, IPv6 pools 116 to 128`},
		{"allowed uses", ensure + "      name: p\n      allowedUses: [Nope]\n",
			`x.yaml:10:20: steps[0].with.allowedUses: allowedUses[0] "Nope" is not a use Calico knows (Workload, Tunnel)`},
		{"node selector", ensure + "      name: p\n      nodeSelector: '((('\n",
			`x.yaml:10:21: steps[0].with.nodeSelector: "(((" is not a valid Calico selector`},
		{"pod selector", move + "      selector: '!!!==='\n",
			`x.yaml:9:17: steps[0].with.selector: "!!!===" is not a valid label selector: unable to parse requirement`},
		{"concurrency", move + "      concurrency: 0\n",
			`x.yaml:9:20: steps[0].with.concurrency: must be at least 1, got 0`},
		{"in a rollback hook", checkHead + "steps:\n  - id: a\n    action: pause\n    rollback:\n      - action: disablePool\n        with: {name: Nope}\n",
			`x.yaml:9:22: steps[0].rollback[0].with.name: "Nope" is not a valid Calico IP pool name`},
		{"template of a param's default", checkHead + "params: {n: {type: int, default: 99}}\nsteps:\n  - id: a\n    action: ensurePool\n    with: {name: p, cidr: 10.0.0.0/16, blockSize: '${{ params.n }}'}\n",
			`x.yaml:8:51: steps[0].with.blockSize: ${{ params.n }} is 99 (params.n from its default): blockSize 99 is not a Calico block size`},
		{"template inside a string, of defaults", checkHead + "params: {p: {type: string, default: pool}}\nsteps:\n  - id: a\n    action: disablePool\n    with: {name: '${{ params.p }}_v4'}\n",
			`x.yaml:8:18: steps[0].with.name: ${{ params.p }}_v4 is "pool_v4" (params.p from its default): "pool_v4" is not a valid Calico IP pool name`},
		{"template failing an enum with the default", checkHead + "params: {s: {type: string, default: nope}}\nsteps:\n  - id: a\n    action: deletePodsInPool\n    with: {pool: p, strategy: '${{ params.s }}'}\n",
			`x.yaml:8:31: steps[0].with.strategy: ${{ params.s }} is "nope" (params.s from its default): "nope" is not one of the allowed values "evict", "delete", "rolloutRestart"`},
		{"template failing to run with the defaults", checkHead + "params: {l: {type: list, default: [a]}}\nsteps:\n  - id: a\n    action: disablePool\n    with: {name: '${{ params.l[3] }}'}\n",
			`x.yaml:8:18: steps[0].with.name: ${{ params.l[3] }} fails (params.l from its default): index out of range: 3 (array length is 1)`},
		{"template of defaults in a step when: skips", checkHead + "params: {l: {type: list, default: [a]}}\nsteps:\n  - id: a\n    action: disablePool\n    when: len(params.l) > 3\n    with: {name: '${{ params.l[3] }}'}\n", ""},
		// 10^12 iterations if validate ran it: left to the step.
		{"closures and ranges: known only when the step runs", checkHead + "params: {n: {type: int, default: 1000000}}\nsteps:\n  - id: a\n    action: disablePool\n    with: {name: '${{ string(len(filter(1..params.n, {len(filter(1..params.n, {# > 0})) > 0}))) }}_x'}\n", ""},
		{"param without a default: known only when bound", checkHead + "params: {n: {type: int}}\nsteps:\n  - id: a\n    action: ensurePool\n    with: {name: p, cidr: 10.0.0.0/16, blockSize: '${{ params.n }}'}\n", ""},
		{"env: known only when bound", checkHead + "steps:\n  - id: a\n    action: disablePool\n    with: {name: '${{ env }}_pool'}\n", ""},
		{"a step's output: known only at run time", checkHead + "steps:\n  - id: a\n    action: pause\n  - id: b\n    action: disablePool\n    with: {name: '${{ steps.a.status }}_x'}\n", ""},
		{"a cluster function: known only with a cluster", checkHead + "steps:\n  - id: a\n    action: disablePool\n    with: {name: '${{ pools()[0].name }}_x'}\n", ""},
		{"valid literals", ensure + "      name: new-pool.v4\n      blockSize: 122\n      allowedUses: [Workload, Tunnel]\n      nodeSelector: has(zone) && zone != 'a'\n", ""},
	}
	reg := checkedRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.src), reg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want one error starting\n  %s\ngot:\n  %v", tt.want, err)
			}
		})
	}
}

// checksRunbook's with: values depend on params bound from -f and --set.
const checksRunbook = checkHead + `params:
  pool: {type: string, default: new-pool}
  bs: {type: int, default: 26}
  sel: {type: string, default: "app=web"}
  c: {type: int, default: 10}
  s: {type: string, default: evict}
  zones: {type: list, default: [a]}
steps:
  - id: add
    action: ensurePool
    with:
      name: ${{ params.pool }}
      cidr: 10.0.0.0/16
      blockSize: ${{ params.bs }}
  - id: move
    action: deletePodsInPool
    with:
      pool: old
      targetPool: ${{ params.pool }}
      selector: ${{ params.sel }}
      concurrency: ${{ params.c }}
      strategy: ${{ params.s }}
      namespace: ${{ params.zones[1] }}
    when: len(params.zones) > 1
  - id: verify
    action: assertNewAllocations
    with:
      pool: ${{ steps.add.outputs.name }}
      namespace: ${{ env }}-test
`

// TestBoundParamsAreChecked: once params are bound from -f and --set, every with:
// value that depends on nothing else is rendered and checked as the step would,
// before plan or apply touch the cluster, naming the field and where the param
// came from. Values that need a step's outputs or the cluster are left to the run.
func TestBoundParamsAreChecked(t *testing.T) {
	rb, err := Parse("rb.yaml", []byte(checksRunbook), checkedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(values, []byte("pool: Bad_Name!\nsel: '!!!==='\nzones: [a, b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   ValueInputs
		env  string
		want []string
	}{
		{"defaults are valid", ValueInputs{}, "dev", nil},
		{"--set", ValueInputs{Sets: []string{"bs=99", "c=0", "s=nope", "zones={a,b}"}}, "dev", []string{
			`rb.yaml:17:18: steps[0].with.blockSize: ${{ params.bs }} is 99 (params.bs from --set): blockSize 99 is not a Calico block size: IPv4 pools take 20 to 32, IPv6 pools 116 to 128`,
			`rb.yaml:24:20: steps[1].with.concurrency: ${{ params.c }} is 0 (params.c from --set): must be at least 1, got 0`,
			`rb.yaml:25:17: steps[1].with.strategy: ${{ params.s }} is "nope" (params.s from --set): "nope" is not one of the allowed values "evict", "delete", "rolloutRestart"`,
		}},
		{"a values file", ValueInputs{Files: []string{values}}, "dev", []string{
			`rb.yaml:15:13: steps[0].with.name: ${{ params.pool }} is "Bad_Name!" (params.pool from ` + values + `): "Bad_Name!" is not a valid Calico IP pool name`,
			`rb.yaml:22:19: steps[1].with.targetPool: ${{ params.pool }} is "Bad_Name!" (params.pool from ` + values + `): "Bad_Name!" is not a valid Calico IP pool name`,
			`rb.yaml:23:17: steps[1].with.selector: ${{ params.sel }} is "!!!===" (params.sel from ` + values + `): "!!!===" is not a valid label selector`,
		}},
		// zones[1] would fail with the default [a], but when: skips the step then.
		{"a step whose when: is false is not checked", ValueInputs{Sets: []string{"bs=99"}}, "dev", []string{
			`rb.yaml:17:18: steps[0].with.blockSize: ${{ params.bs }} is 99 (params.bs from --set)`,
		}},
		{"and is when it is true", ValueInputs{Sets: []string{"zones={a,B}"}}, "dev", []string{
			`rb.yaml:26:18: steps[1].with.namespace: ${{ params.zones[1] }} is "B" (params.zones from --set): "B" is not a valid namespace name`,
		}},
		{"the environment unknown (validate without --env)", ValueInputs{}, "", nil},
		{"the environment", ValueInputs{}, "Prod", []string{
			`rb.yaml:32:18: steps[2].with.namespace: ${{ env }}-test is "Prod-test" (env "Prod"): "Prod-test" is not a valid namespace name`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ResolveParams(rb, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			err = rb.CheckParams(p, tt.env, tt.env != "")
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n   got %s\n  want %s...", i, got[i], tt.want[i])
				}
			}
		})
	}
}
