package runbooks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runbookdev/runbook/actions"
)

// budgetRunbook has one guard to evaluate, and a list param to loop over.
func budgetRunbook(when string) string {
	return `apiVersion: runbook/v1alpha1
kind: Runbook
metadata: {name: budget}
params:
  l: {type: list, default: []}
steps:
  - id: s
    action: pause
    when: '` + when + `'
`
}

// Issue #15 item 3: what can be refused statically is refused by validate with
// file:line; what only evaluation shows is an error naming step and field, never
// a crash (out of memory) or a hang.
func TestGuardBudget(t *testing.T) {
	for _, tc := range []struct {
		name     string
		when     string
		validate string // refused at validate with this (else it parses)
		eval     string // evaluation fails with this (else it succeeds)
	}{
		{name: "nested repeat (was: fatal error: out of memory)", when: `len(repeat(repeat("xxxxxxxxxx", 99999), 999999)) > 0`,
			eval: "repeat: 999999 times a string of 999990 bytes is over the expression's budget"},
		{name: "many repeats add up", when: `len(join(map(1..100, {repeat("x", 20000)}))) > 0`, eval: "repeat: the expression built"},
		{name: "doubling a string with reduce", when: `len(reduce(1..60, #acc + #acc, "xy")) > 0`,
			validate: "steps[0].when: expression: reduce() is not available"},
		{name: "string + is metered", when: `len(repeat("y", 600000) + repeat("z", 100)) > 0`, eval: "+: the expression built"},
		{name: "three nested closures", when: `all(params.l, {all(params.l, {all(params.l, {# != ""})})})`,
			validate: "budget.yaml:9:"},
		{name: "three nested closures (the message)", when: `all(params.l, {all(params.l, {all(params.l, {# != ""})})})`,
			validate: "closures nested 3 deep (at most 2)"},
		{name: "two nested closures are fine", when: `all(params.l, {all(params.l, {# != ""})})`},
		{name: "a small repeat is fine", when: `repeat("ab", 3) == "ababab"`},
		{name: "string + is fine", when: `"a" + "b" == "ab"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := Parse("budget.yaml", []byte(budgetRunbook(tc.when)), actions.Default)
			if tc.validate != "" {
				if err == nil || !strings.Contains(err.Error(), tc.validate) {
					t.Fatalf("Parse = %v, want a refusal %q", err, tc.validate)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			params, err := ResolveParams(rb, ValueInputs{})
			if err != nil {
				t.Fatal(err)
			}
			env, err := newScope(rb, actions.Default).Env(Bindings{Params: params.Values})
			if err != nil {
				t.Fatal(err)
			}
			ok, err := rb.Steps[0].When.Eval(context.Background(), env)
			if tc.eval == "" {
				if err != nil || !ok {
					t.Fatalf("Eval = %v, %v; want true", ok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.eval) || !strings.Contains(err.Error(), "budget.yaml:9") {
				t.Fatalf("Eval = %v, %v; want an error naming budget.yaml:9 and %q", ok, err, tc.eval)
			}
		})
	}
}

// An evaluation ends with the run's context (a signal, a lost lock), not when
// the expression is done.
func TestGuardEvaluationIsCancellable(t *testing.T) {
	rb, err := Parse("budget.yaml", []byte(budgetRunbook(`all(params.l, {all(params.l, {# != "x"})})`)), actions.Default)
	if err != nil {
		t.Fatal(err)
	}
	long := make([]any, 4000) // 16 million comparisons: seconds
	for i := range long {
		long[i] = "y"
	}
	env, err := newScope(rb, actions.Default).Env(Bindings{Params: map[string]any{"l": long}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = rb.Steps[0].When.Eval(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "evaluation stopped") {
		t.Fatalf("Eval = %v, want stopped by the context", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a cancelled evaluation returned after %v", took)
	}
}
