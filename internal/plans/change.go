// Package plans names what a plan says a step would do to the cluster, as
// Terraform's plans.Action does: one type for the actions' planners, the engine's
// plan and the CLI's rendering, instead of strings spelled at every site.
package plans

// Change is what a step would do. It is a string so that saved plans (JSON) and
// -o json stay readable and stable.
type Change string

const (
	None   Change = "none"   // already satisfied: nothing to do
	Create Change = "create" // creates an object
	Update Change = "update" // changes an existing object
	Delete Change = "delete" // deletes an object
	// Check is a verification that changes nothing lasting (it may create
	// objects it removes again, e.g. assertNewAllocations' test pods).
	Check   Change = "check"
	Skip    Change = "skip"    // its when guard is false
	Done    Change = "done"    // done already in the run being resumed
	Unknown Change = "unknown" // known after apply: it depends on earlier steps' outputs
	Refused Change = "refused" // the planner or a guard refused it: apply would fail here
)

// Mutates reports whether a step with this change would (or may) change the
// cluster: what "N step(s) would change the cluster" counts.
func (c Change) Mutates() bool {
	switch c {
	case Create, Update, Delete, Unknown:
		return true
	}
	return false
}

// marks are the one-character symbols the plan renders before each step.
var marks = map[Change]string{None: "=", Create: "+", Update: "~", Delete: "-", Check: "?", Skip: "·", Done: "✓", Unknown: "…", Refused: "✗"}

// Mark is the change's plan symbol, "?" for a change this version does not know
// (a plan saved by a newer runbook).
func (c Change) Mark() string {
	if m, ok := marks[c]; ok {
		return m
	}
	return "?"
}
