package engine

import (
	"time"
)

// Event is one line of progress; -o json prints them as JSON lines.
type Event struct {
	Time    time.Time `json:"time"`
	RunID   string    `json:"runID"`
	Type    string    `json:"type"` // run.start, run.resume, step.start, step.done, step.skip, step.fail, rollback, cleanup, run.end
	Step    string    `json:"step,omitempty"`
	Status  string    `json:"status,omitempty"`
	Changed bool      `json:"changed,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Report is the outcome of an invocation.
type Report struct {
	RunID    string       `json:"runID"`
	Runbook  string       `json:"runbook"`
	Status   string       `json:"status"`
	Resumed  bool         `json:"resumed"`
	Steps    []StepReport `json:"steps"`
	Error    string       `json:"error,omitempty"`
	LeftToDo []string     `json:"leftToDo,omitempty"` // what a human must still do (rollbackFailed)
}

// StepReport is one step's line of the report.
type StepReport struct {
	ID       string        `json:"id"`
	Action   string        `json:"action"`
	Status   string        `json:"status"`
	Changed  bool          `json:"changed"`
	Duration time.Duration `json:"duration"`
	Message  string        `json:"message,omitempty"`
	Error    string        `json:"error,omitempty"`
	Rollback string        `json:"rollback,omitempty"`
}
