// Package exitcode is the one table of process exit codes; the README documents it and
// every command returns errors carrying one of these codes.
package exitcode

import (
	"errors"
	"fmt"
)

// Code is a process exit code.
type Code int

const (
	OK              Code = 0  // success, or nothing to change
	Internal        Code = 1  // unexpected error (a bug, or an API failure outside any step)
	Invalid         Code = 2  // bad usage or invalid runbook/values: nothing was changed
	LockHeld        Code = 3  // another run holds the lock (its holder is named)
	ChangesPending  Code = 4  // plan: the cluster differs from the runbook
	StepFailed      Code = 5  // a step failed; the run stopped and can be resumed or rolled back
	RolledBack      Code = 6  // a step failed and every rollback hook completed
	RollbackFailed  Code = 7  // a step failed and some rollback hook failed: manual action needed
	Interrupted     Code = 8  // stopped on a signal, --deadline or --stop-before: resumable
	AwaitApproval   Code = 9  // a pause step waits for `runbook approve`
	PlanDrift       Code = 10 // the saved plan no longer matches the runbook, params or cluster
	Refused         Code = 11 // a precondition or preflight check refused: nothing was changed
	NotImplementedC Code = 12 // the command exists but is not implemented yet
)

// Table documents each code, in order; the README's table is generated from it.
var Table = []struct {
	Code    Code
	Name    string
	Meaning string
}{
	{OK, "ok", "Success, or nothing to change."},
	{Internal, "internal", "Unexpected error outside any step (a bug, or the API failing before the run started)."},
	{Invalid, "invalid", "Bad usage, or the runbook or values are invalid. Nothing was changed."},
	{LockHeld, "lock-held", "Another run holds the lock; its holder is named."},
	{ChangesPending, "changes-pending", "plan: applying would change the cluster."},
	{StepFailed, "step-failed", "A step failed and the run stopped (onFailure: stop); resume with apply or undo with rollback."},
	{RolledBack, "rolled-back", "A step failed and every rollback hook completed."},
	{RollbackFailed, "rollback-failed", "A step failed and a rollback hook failed too: the report lists what is left to do."},
	{Interrupted, "interrupted", "Stopped cleanly by a signal, --deadline or --stop-before; apply again to resume."},
	{AwaitApproval, "awaiting-approval", "A pause step waits for `runbook approve`."},
	{PlanDrift, "plan-drift", "The saved plan no longer matches the runbook, params or cluster."},
	{Refused, "refused", "A precondition or preflight check refused the change. Nothing was changed."},
	{NotImplementedC, "not-implemented", "The command is not implemented in this version."},
}

// Error is an error that decides the exit code.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with a code.
func New(code Code, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Newf formats an error with a code.
func Newf(code Code, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Of returns the code an error carries; Internal for errors without one.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
