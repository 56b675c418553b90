package actions

import "github.com/runbookdev/runbook/internal/value"

var pauseDecl = &Decl{
	Name:    "pause",
	Summary: "Wait for a human approval (`runbook approve <run>`) before going on.",
	Description: `In a terminal, asks for approval; otherwise ends the invocation with a resumable state until
` + "`runbook approve <run>`" + ` records the approval in the run journal. Satisfied once approved.`,
	Params: []Param{
		p("message", value.String, false, "Continue?", "What the approver is asked."),
	},
	Outputs: []Output{
		{Name: "approvedBy", Type: value.String, Description: "Who approved."},
	},
}
