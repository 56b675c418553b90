package runbooks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/internal/value"
)

const interpRunbook = `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: interp}
params:
  pool: {type: string, default: old}
  n: {type: int, default: 26}
  wait: {type: duration, default: 2m}
  cidr: {type: cidr, default: 10.0.0.0/16}
steps:
  - id: first
    action: disablePool
    with: {name: "${{ params.pool }}"}
  - id: second
    action: ensurePool
    when: steps.first.outputs.wasDisabled == false && env == "sandbox"
    with:
      name: "pool-${{ params.n }}"
      cidr: "${{ params.cidr }}"
      blockSize: "${{ params.n }}"
      natOutgoing: "${{ steps.first.status == 'done' }}"
      nodeSelector: "zone == '${{ run.id }}' && x != '$${{ literal }}'"
  - id: third
    action: deletePodsInPool
    with:
      pool: "${{ params.pool }}"
      timeout: "${{ params.wait * 2 }}"
      maxUnavailable: "${{ params.n }}"
`

func TestInterpolationTyping(t *testing.T) {
	rb, err := Parse("interp.yaml", []byte(interpRunbook), actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	params, err := ResolveParams(rb, ValueInputs{})
	if err != nil {
		t.Fatal(err)
	}
	scope := newScope(rb, actions.Default)
	env, err := scope.Env(Bindings{Params: params.Values, Env: "sandbox", Run: RunInfo{ID: "r1"},
		Steps: map[string]StepResult{"first": {Status: "done", Outputs: map[string]any{"wasDisabled": false}}}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := rb.Steps[1].When.Eval(context.Background(), env)
	if err != nil || !ok {
		t.Fatalf("when = %v, %v; want true", ok, err)
	}
	tests := []struct {
		step int
		want map[string]any
	}{
		{1, map[string]any{
			"name":         "pool-26", // stringified inside a longer string
			"cidr":         "10.0.0.0/16",
			"blockSize":    26,                                      // a whole ${{ }} keeps the int
			"natOutgoing":  true,                                    // and the bool
			"nodeSelector": "zone == 'r1' && x != '${{ literal }}'", // $${{ escapes
			"ipipMode":     "Never",                                 // declared default
		}},
		{2, map[string]any{"pool": "old", "timeout": 4 * time.Minute, "maxUnavailable": 26, "strategy": "evict"}},
	}
	for _, tt := range tests {
		got, err := rb.Steps[tt.step].With.Render(context.Background(), env)
		if err != nil {
			t.Fatalf("step %d: %v", tt.step, err)
		}
		for k, want := range tt.want {
			if value.Format(got[k]) != value.Format(want) {
				t.Errorf("step %d %s = %s (%T), want %s", tt.step, k, value.Format(got[k]), got[k], value.Format(want))
			}
		}
	}
}

// TestRenderCoercesAtRunTime: a rendered template is converted (and checked) by
// the declared type when the step runs; a value known earlier is refused earlier:
// from a param's default at validate, from --set once params are bound.
func TestRenderCoercesAtRunTime(t *testing.T) {
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: x}
params: {c: {type: string%s}}
steps:
  - id: a
    action: ensurePool
    with: {name: p, cidr: "${{ params.c }}"}
`
	_, err := Parse("x.yaml", []byte(fmt.Sprintf(src, `, default: "10.0.0.1/16"`)), actions.Default)
	want := `x.yaml:8:27: steps[0].with.cidr: ${{ params.c }} is "10.0.0.1/16" (params.c from its default): CIDR "10.0.0.1/16" has host bits set; did you mean 10.0.0.0/16?`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse: got %v\nwant %s", err, want)
	}
	rb, err := Parse("x.yaml", []byte(fmt.Sprintf(src, "")), actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	params, err := ResolveParams(rb, ValueInputs{Sets: []string{"c=10.0.0.1/16"}})
	if err != nil {
		t.Fatal(err)
	}
	want = `x.yaml:8:27: steps[0].with.cidr: ${{ params.c }} is "10.0.0.1/16" (params.c from --set): CIDR "10.0.0.1/16" has host bits set; did you mean 10.0.0.0/16?`
	if err := rb.CheckParams(params, "", true); err == nil || err.Error() != want {
		t.Fatalf("CheckParams: got %v\nwant %s", err, want)
	}
	env, _ := newScope(rb, actions.Default).Env(Bindings{Params: params.Values})
	_, err = rb.Steps[0].With.Render(context.Background(), env)
	want = `x.yaml:8:27: with.cidr: rendered "10.0.0.1/16": CIDR "10.0.0.1/16" has host bits set; did you mean 10.0.0.0/16?`
	if err == nil || err.Error() != want {
		t.Fatalf("Render: got %v\nwant %s", err, want)
	}
}

func TestClusterFunctionWithoutCluster(t *testing.T) {
	src := `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: x}
steps:
  - id: a
    action: pause
    require: pool("x") != nil && cidrContains("10.0.0.0/8", "10.1.0.0/16")
`
	rb, err := Parse("x.yaml", []byte(src), actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	scope := newScope(rb, actions.Default)
	env, _ := scope.Env(Bindings{})
	if _, err := rb.Steps[0].Require.Eval(context.Background(), env); err == nil {
		t.Fatal("calling a cluster function without a cluster must fail")
	}
	env, _ = scope.Env(Bindings{Funcs: map[string]any{"pool": func(string) *actions.Pool { return &actions.Pool{} }}})
	if ok, err := rb.Steps[0].Require.Eval(context.Background(), env); err != nil || !ok {
		t.Fatalf("got %v %v", ok, err)
	}
	if _, err := scope.Env(Bindings{Funcs: map[string]any{"pool": func(int) bool { return true }}}); err == nil {
		t.Fatal("an implementation of the wrong type must be refused")
	}
}
