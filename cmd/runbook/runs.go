package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/exitcode"
)

// journals lists the current (or archived) journals of every runbook, through
// the store the session's flags select.
func (s *session) journals(ctx context.Context, archived bool) ([]*engine.Journal, error) {
	js, skipped, err := s.store("").List(ctx, archived)
	for _, e := range skipped {
		fprintf(s.g.errOut, "warning: %v\n", e)
	}
	return js, err
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show current runs, or one run in detail",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, g, f, "")
			if err != nil {
				return err
			}
			js, err := s.journals(cmd.Context(), false)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				all, err := s.journals(cmd.Context(), true)
				if err != nil {
					return err
				}
				for _, j := range append(js, all...) {
					if j.RunID == args[0] {
						return printJournal(g, j)
					}
				}
				return exitcode.Newf(exitcode.Invalid, "no run %s in %s", args[0], s.where())
			}
			return printRuns(g, js, "no runs in "+s.where())
		},
	}
	f.kubeFlags.bind(cmd)
	f.envFlags.bind(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "Read the run journal from this local file")
	return cmd
}

func (s *session) where() string {
	if s.f.state != "" {
		return s.f.state
	}
	return "namespace " + s.f.namespace
}

func newHistoryCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List archived (finished) runs, newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd, g, f, "")
			if err != nil {
				return err
			}
			js, err := s.journals(cmd.Context(), true)
			if err != nil {
				return err
			}
			return printRuns(g, js, "no finished runs in "+s.where())
		},
	}
	f.kubeFlags.bind(cmd)
	f.envFlags.bind(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "Read archived runs of this local journal file")
	return cmd
}

func newApproveCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	var who string
	cmd := &cobra.Command{
		Use:   "approve RUN",
		Short: "Approve a run waiting at a pause step; the next apply continues it",
		Args:  exactArgs(1, "a run id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, g, f, "")
			if err != nil {
				return err
			}
			js, err := s.journals(cmd.Context(), false)
			if err != nil {
				return err
			}
			for _, j := range js {
				if j.RunID != args[0] {
					continue
				}
				if who == "" {
					who = strings.SplitN(engine.DefaultHolder(), " ", 2)[0]
				}
				step, err := engine.Approve(cmd.Context(), s.store(j.Runbook), j.RunID, who)
				if err != nil {
					return err
				}
				fprintf(g.out, "run %s: step %s approved by %s; run apply again to continue\n", j.RunID, step, who)
				return nil
			}
			return exitcode.Newf(exitcode.Invalid, "no current run %s in %s", args[0], s.where())
		},
	}
	// --as names the approver here (bound first, so the kubectl impersonation
	// flags stay off this command).
	cmd.Flags().StringVar(&who, "as", "", "Who approves (default: the local user@host)")
	f.kubeFlags.bind(cmd)
	f.envFlags.bind(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "The run journal is in this local file")
	return cmd
}

func newUnlockCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Break the run lock of a run that is gone (never while it is still running)",
		Long: `Deletes the run lock (` + lockRef() + `, one per cluster). A lock whose lease has
not expired is refused unless --force: its holder may still be running. Expired locks
are taken over automatically; unlock is for not waiting out the lease. A live holder
whose lock is deleted stops writing at once, leaving its step half-done for the next
apply to resume.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(cmd, g, f, "")
			if err != nil {
				return err
			}
			if !f.yes {
				if !isTTY(os.Stdin) {
					return exitcode.Newf(exitcode.Invalid, "unlock needs --yes when not run from a terminal")
				}
				ok, err := confirm(g.out, os.Stdin)(nil, "Break the run lock "+lockRef()+"?")
				if err != nil || !ok {
					return exitcode.Newf(exitcode.Invalid, "not unlocked")
				}
			}
			holder, err := engine.Unlock(cmd.Context(), s.kube, lockNamespace, lockName, force)
			if errors.Is(err, engine.ErrLockLive) {
				return exitcode.New(exitcode.LockHeld, err)
			}
			if err != nil {
				return err
			}
			if holder == "" {
				fprintf(g.out, "no lock held (%s)\n", lockRef())
				return nil
			}
			fprintf(g.errOut, "WARNING: broke the lock %s held by %q; if that run is still alive it stops writing at once\n", lockRef(), holder)
			return nil
		},
	}
	f.kubeFlags.bind(cmd)
	f.envFlags.bind(cmd)
	cmd.Flags().BoolVar(&f.yes, "yes", false, "Do not ask for confirmation")
	cmd.Flags().BoolVar(&force, "force", false, "Break a lock whose lease has not expired (its holder may still be running)")
	return cmd
}
