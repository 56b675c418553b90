package runbooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookdev/runbook/actions"
)

const zonesRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: pools-per-zone}
params:
  zones:
    type: list
    default:
      - {name: zone-a, cidr: 10.0.0.0/18}
      - {name: Zone-B, cidr: 10.0.64.0/18}
steps:
  - id: zone-pool
    action: ensurePool
    forEach: ${{ params.zones }}
    when: item.name != "skip-me"
    with:
      name: "pool-${{ lower(item.name) }}"
      cidr: ${{ item.cidr }}
      nodeSelector: "topology.kubernetes.io/zone == '${{ item.name }}'"
  - id: after
    action: pause
    when: steps["zone-pool"].status == "done"
    with: {message: hi}
`

func parseZones(t *testing.T, src string) *Runbook {
	t.Helper()
	rb, err := Parse("zones.yaml", []byte(src), actions.Default)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return rb
}

func TestForEachExpandsPerItem(t *testing.T) {
	rb := parseZones(t, zonesRunbook)
	p, err := ResolveParams(rb, ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := rb.Expand(p, "")
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	var ids []string
	for _, st := range ex.Steps {
		ids = append(ids, st.ID)
	}
	if got, want := strings.Join(ids, ","), "zone-pool-zone-a,zone-pool-zone-b,after"; got != want {
		t.Fatalf("ids %s, want %s", got, want)
	}
	if inst, _ := ex.Instances("zone-pool"); len(inst) != 2 {
		t.Fatalf("instances %v", inst)
	}
	// Each instance renders its own item.
	for i, want := range []string{"pool-zone-a", "pool-zone-b"} {
		st := ex.Steps[i]
		env, err := ex.Env(Bindings{Params: p.Values, Step: st})
		if err != nil {
			t.Fatal(err)
		}
		with, err := st.With.Render(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		if with["name"] != want {
			t.Errorf("%s: name %v, want %s", st.ID, with["name"], want)
		}
	}
	// The original is untouched: expanding twice gives the same steps.
	if len(rb.Steps) != 2 || rb.Steps[0].Group != "" {
		t.Fatalf("Expand changed its receiver")
	}
	// A bound item that the step would refuse is refused by CheckParams, naming the item.
	values := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(values, []byte("zones:\n  - {name: z, cidr: 10.0.0.0/33}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad, err := ResolveParams(rb, ValueInputs{Files: []string{values}})
	if err != nil {
		t.Fatal(err)
	}
	exBad, err := rb.Expand(bad, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := exBad.CheckParams(bad, "", true); err == nil || !strings.Contains(err.Error(), "item") {
		t.Errorf("CheckParams with a bad cidr: %v, want an error naming the item", err)
	}
}

func TestForEachGroupStatus(t *testing.T) {
	ids := []string{"a-1", "a-2"}
	cases := []struct {
		name  string
		steps map[string]StepResult
		want  string
	}{
		{"none ran", nil, "pending"},
		{"one done", map[string]StepResult{"a-1": {Status: "done"}}, "running"},
		{"all done", map[string]StepResult{"a-1": {Status: "done"}, "a-2": {Status: "done", Changed: true}}, "done"},
		{"done and skipped", map[string]StepResult{"a-1": {Status: "skipped"}, "a-2": {Status: "done"}}, "done"},
		{"all skipped", map[string]StepResult{"a-1": {Status: "skipped"}, "a-2": {Status: "skipped"}}, "skipped"},
		{"one failed", map[string]StepResult{"a-1": {Status: "done"}, "a-2": {Status: "failed"}}, "failed"},
		{"one running", map[string]StepResult{"a-1": {Status: "running"}}, "running"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := groupView(ids, c.steps).Status; got != c.want {
				t.Errorf("status %s, want %s", got, c.want)
			}
		})
	}
	if groupView(nil, nil).Status != "skipped" {
		t.Error("a forEach over no items is not skipped")
	}
	if !groupView(ids, map[string]StepResult{"a-2": {Status: "done", Changed: true}}).Changed {
		t.Error("changed is not the OR of the items'")
	}
}

func TestForEachRefusals(t *testing.T) {
	step := func(extra string) string {
		return `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: x}
params:
  zones: {type: list, default: [a, b]}
steps:
  - id: first
    action: pause
    with: {message: hi}
` + extra
	}
	cases := []struct {
		name, src, want string
	}{
		{"item outside forEach", step(`  - id: s
    action: pause
    when: item == "a"
    with: {message: hi}
`), "item is only defined in a step with forEach"},
		{"forEach reads a step", step(`  - id: s
    action: pause
    forEach: '${{ steps.first.status == "done" ? params.zones : [] }}'
    with: {message: hi}
`), "forEach is decided before the run"},
		{"forEach reads item", step(`  - id: s
    action: pause
    forEach: ${{ [item] }}
    with: {message: hi}
`), "forEach cannot read item"},
		{"forEach not a list", step(`  - id: s
    action: pause
    forEach: ${{ 3 }}
    with: {message: hi}
`), "it must give a list"},
		{"forEach a mapping", step(`  - id: s
    action: pause
    forEach: {a: 1}
    with: {message: hi}
`), "forEach must be a list"},
		{"outputs of a group", step(`  - id: s
    action: ensurePool
    forEach: ${{ params.zones }}
    with: {name: "p-${{ item }}", cidr: 10.0.0.0/24}
  - id: t
    action: pause
    when: steps.s.outputs.created
    with: {message: hi}
`), "has forEach: it has outputs per item"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(c.src), actions.Default)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "x.yaml:") {
				t.Errorf("error does not name file:line: %v", err)
			}
		})
	}
}

func TestForEachExpandRefusals(t *testing.T) {
	src := func(list string) string {
		return `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: x}
params:
  zones: {type: list}
steps:
  - id: s-a
    action: pause
    with: {message: hi}
  - id: s
    action: pause
    forEach: ${{ params.zones }}
    with: {message: hi}
`
	}
	cases := []struct {
		name, set, want string
	}{
		{"two items one id", `zones={x,X}`, `gives step id "s-x", already the id of`},
		{"an item takes a step's id", `zones={a}`, `already the id of steps[0]`},
		{"id too long", `zones={` + strings.Repeat("z", 70) + `}`, "at most 63 characters"},
		{"too many items", `zones={` + strings.Repeat("q,", MaxForEachItems) + `q}`, "items, at most 256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rb := parseZones(t, src(""))
			p, err := ResolveParams(rb, ValueInputs{Sets: []string{c.set}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = rb.Expand(p, "")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "steps[1].forEach") {
				t.Fatalf("got %v, want an error at steps[1].forEach containing %q", err, c.want)
			}
		})
	}
	// No items: no instances, and the group reads as skipped.
	rb := parseZones(t, src(""))
	p, _ := ResolveParams(rb, ValueInputs{Sets: []string{"zones={}"}})
	ex, err := rb.Expand(p, "")
	if err != nil || len(ex.Steps) != 1 {
		t.Fatalf("empty list: %v, %d steps", err, len(ex.Steps))
	}
}
