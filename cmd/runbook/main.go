// Command runbook runs declarative runbooks for Kubernetes network operations.
package main

import (
	"fmt"
	"os"

	"github.com/runbookdev/runbook/internal/exitcode"
)

func main() {
	// The first SIGINT/SIGTERM cancels the context so a run stops cleanly between
	// operations with its journal written; a second one exits at once.
	ctx, stop := interruptible(os.Stderr)
	defer stop()
	cmd := newRootCmd(os.Stdout, os.Stderr)
	err := cmd.ExecuteContext(ctx)
	code := exitcode.Of(err)
	switch {
	case err == nil:
	case code == exitcode.ChangesPending || code == exitcode.AwaitApproval || code == exitcode.Interrupted:
		// Outcomes a pipeline branches on, not errors.
		fmt.Fprintln(os.Stderr, err)
	default:
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	os.Exit(int(code))
}
