package actions

import (
	"context"

	"github.com/runbookdev/runbook/actions/decl"
	"github.com/runbookdev/runbook/internal/plans"
	"github.com/runbookdev/runbook/internal/value"
)

var pause = Definition{
	Decl: &decl.Action{
		Name:    "pause",
		Summary: "Wait for a human approval (`runbook approve <run>`) before going on.",
		Description: `In a terminal, asks for approval; otherwise ends the invocation with a resumable state until
` + "`runbook approve <run>`" + ` records the approval in the run journal. Satisfied once approved.`,
		Params: []decl.Param{
			p("message", value.String, false, "Continue?", "What the approver is asked."),
		},
		Outputs: []decl.Output{
			{Name: "approvedBy", Type: value.String, Description: "Who approved."},
		},
		Needs: []decl.Permission{},
	},
	New: func(*binding) Impl { return pauseImpl{} },
}

// pauseImpl is satisfied once the run journal records an approval (written by
// `runbook approve`, or by the engine after an interactive confirmation).
type pauseImpl struct{}

func (pauseImpl) Apply(_ context.Context, c *Call) (Outcome, error) {
	if who := c.Prior.Intent["approvedBy"]; who != "" {
		return Outcome{Outputs: map[string]any{"approvedBy": who}, Message: "approved by " + who}, nil
	}
	return Outcome{}, ErrAwaitApproval
}

func (pauseImpl) Plan(context.Context, *Call) (Planned, error) {
	return Planned{Change: plans.Check, Details: []string{"waits for approval"}}, nil
}
