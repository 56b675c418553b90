package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/suggest"
	"github.com/runbookdev/runbook/runbooks"
)

func newPlanCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:         "plan RUNBOOK",
		Short:       "Show what apply would do, read-only; exit 4 when changes are pending, 11 when refused",
		Args:        exactArgs(1, "one runbook file"),
		Annotations: map[string]string{outputMarkdown: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, g, f, args[0])
			if err != nil {
				return err
			}
			if err := refuseBoundValues(s); err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := s.checkAccess(ctx); err != nil {
				return err
			}
			b, err := s.bind(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			p, err := engine.MakePlan(ctx, s.options(b, s.store(s.rb.Name), ""))
			if err != nil {
				return err
			}
			p.Lock = lockRef()
			if f.planFile != "" {
				if err := engine.SavePlan(f.planFile, p); err != nil {
					return fmt.Errorf("save plan: %w", err)
				}
			}
			switch g.output {
			case "text":
				printPlan(g.out, style{on: g.term.color}, p, f.verbose)
			case "markdown":
				fprintf(g.out, "%s", markdownPlan(p, f.verbose))
			default:
				if err := writeStructured(g.out, g.output, p); err != nil {
					return err
				}
			}
			switch {
			case len(p.Refusals()) > 0:
				return exitcode.Newf(exitcode.Refused, "the plan is refused:\n  %s", strings.Join(p.Refusals(), "\n  "))
			case p.Changes() > 0:
				return exitcode.Newf(exitcode.ChangesPending, "%d step(s) would change the cluster", p.Changes())
			}
			return nil
		},
	}
	bindRunbookFlags(cmd, f)
	cmd.Flags().StringVar(&f.planFile, "out", "", "Save the plan to this file for apply --plan")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "Print every detail and warning line of each step (by default the first 15 and 6)")
	return cmd
}

func newApplyCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "apply RUNBOOK",
		Short: "Run the runbook, or resume its interrupted run",
		Args:  exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, g, f, args[0])
			if err != nil {
				return err
			}
			if err := checkStep(s.rb, "--stop-before", f.stopBefore); err != nil {
				return err
			}
			if err := refuseBoundValues(s); err != nil {
				return err
			}
			if err := s.checkAccess(cmd.Context()); err != nil {
				return err
			}
			var saved *engine.Plan
			if f.planFile != "" {
				if saved, err = engine.LoadPlan(f.planFile); err != nil {
					return err
				}
			}
			return s.mutate(cmd.Context(), true, func(ctx context.Context, o engine.Options) (*engine.Report, error) {
				if saved != nil {
					if err := engine.CheckPlanCluster(saved, o.Cluster, time.Now(), f.planMaxAge); err != nil {
						return nil, err
					}
					fresh, err := engine.MakePlan(ctx, o)
					if err != nil {
						return nil, err
					}
					if err := engine.CheckDrift(saved, fresh); err != nil {
						return nil, err
					}
				}
				return engine.Run(ctx, o)
			})
		},
	}
	bindRunbookFlags(cmd, f)
	cmd.Flags().BoolVar(&f.yes, "yes", false, "Do not ask before a point of no return or at pause steps (for pipelines)")
	cmd.Flags().StringVar(&f.stopBefore, "stop-before", "", "Stop cleanly before this step (phased runs)")
	_ = cmd.RegisterFlagCompletionFunc("stop-before", completeSteps(g))
	cmd.Flags().DurationVar(&f.deadline, "deadline", 0, "Stop cleanly between steps after this long")
	bindLockTimeout(cmd, f)
	cmd.Flags().BoolVar(&f.allowChanged, "allow-changed", false, "Resume even though the runbook file changed since the run started")
	cmd.Flags().StringVar(&f.planFile, "plan", "", "Apply a plan saved by plan --out; refused when anything it depends on drifted, or it was made on another cluster")
	cmd.Flags().DurationVar(&f.planMaxAge, "plan-max-age", engine.DefaultPlanMaxAge, "Refuse a saved plan older than this (0: any age)")
	cmd.Flags().StringArrayVar(&f.reports, "report", nil, "Write the final report to this file: .md for Markdown, anything else JSON (repeatable)")
	return cmd
}

func newRollbackCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "rollback RUNBOOK",
		Short: "Run the rollback hooks of an unfinished run in reverse order (never across a point of no return)",
		Args:  exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(cmd, g, f, args[0])
			if err != nil {
				return err
			}
			if err := s.checkAccess(cmd.Context()); err != nil {
				return err
			}
			return s.mutate(cmd.Context(), false, func(ctx context.Context, o engine.Options) (*engine.Report, error) {
				return engine.RollbackRun(ctx, o)
			})
		},
	}
	bindRunbookFlags(cmd, f)
	cmd.Flags().BoolVar(&f.allowChanged, "allow-changed", false, "Roll back with a runbook that changed since the run started")
	bindLockTimeout(cmd, f)
	cmd.Flags().StringArrayVar(&f.reports, "report", nil, "Write the final report to this file: .md for Markdown, anything else JSON")
	return cmd
}

// checkStep refuses a step id the runbook does not have before anything connects,
// suggesting the closest one.
func checkStep(rb *runbooks.Runbook, flag, id string) error {
	if _, group := rb.Instances(id); id == "" || rb.StepByID(id) != nil || group {
		return nil
	}
	ids := stepIDs(rb)
	return exitcode.Newf(exitcode.Invalid, "%s %q: no such step%s; the steps are %s", flag, id, suggest.Hint(id, ids), strings.Join(ids, ", "))
}

func stepIDs(rb *runbooks.Runbook) []string {
	ids := make([]string, len(rb.Steps))
	for i, st := range rb.Steps {
		ids[i] = st.ID
	}
	return ids
}

// completeSteps completes a step id from the runbook named by the first argument.
func completeSteps(g *globalOptions) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		rb, err := runbooks.ParseFile(args[0], g.reg)
		if err != nil || rb == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, st := range rb.Steps {
			out = append(out, st.ID+"\t"+st.Action)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
