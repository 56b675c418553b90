package engine

import (
	"context"
	"fmt"

	"github.com/runbookdev/runbook/internal/exitcode"
)

// Approve records who approved the pause step a run waits at. The next apply
// resumes the run past it.
func Approve(ctx context.Context, store Store, runID, who string) (step string, err error) {
	j, rev, err := store.Load(ctx)
	if err != nil {
		return "", err
	}
	if j == nil || j.RunID != runID {
		current := "none"
		if j != nil {
			current = j.RunID + " (" + j.Status + ")"
		}
		return "", exitcode.Newf(exitcode.Invalid, "run %s is not the current run of %s (current: %s)", runID, store.Describe(), current)
	}
	for id, rec := range j.Steps {
		if rec.Status != StatusAwaitingApproval {
			continue
		}
		if rec.Intent == nil {
			rec.Intent = map[string]string{}
		}
		rec.Intent["approvedBy"] = who
		if _, err := store.Save(ctx, j, rev); err != nil {
			return "", fmt.Errorf("record approval: %w", err)
		}
		return id, nil
	}
	return "", exitcode.Newf(exitcode.Invalid, "run %s does not wait for an approval (status %s)", runID, j.Status)
}
