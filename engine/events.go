package engine

import (
	"time"

	"github.com/runbookdev/runbook/internal/preflight"
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

// Report is the outcome of an invocation. It carries what an auditor needs to tie
// the run to its inputs: the digests, the environment and the runbook's source.
type Report struct {
	RunID         string       `json:"runID"`
	Runbook       string       `json:"runbook"`
	RunbookDigest string       `json:"runbookDigest,omitempty"`
	ParamsDigest  string       `json:"paramsDigest,omitempty"`
	Env           string       `json:"env,omitempty"`
	Source        *Source      `json:"source,omitempty"`
	StartedAt     time.Time    `json:"startedAt"`
	Status        string       `json:"status"`
	Resumed       bool         `json:"resumed"`
	Steps         []StepReport `json:"steps"`
	Error         string       `json:"error,omitempty"`
	LeftToDo      []string     `json:"leftToDo,omitempty"` // what a human must still do (rollbackFailed)
	// Preflight are the findings of the preflight this invocation ran.
	Preflight []preflight.Finding `json:"preflight,omitempty"`
}

// Source is where the runbook came from, recorded with each run for the audit
// trail. The engine only stores it; the CLI fills it in (from git, when the runbook
// is in a repository).
type Source struct {
	File   string `json:"file,omitempty"`   // the runbook, relative to its repository's root when in one
	Commit string `json:"commit,omitempty"` // the repository's HEAD
	// Dirty: the runbook or its values differ from Commit (modified or untracked).
	Dirty bool `json:"dirty,omitempty"`
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
