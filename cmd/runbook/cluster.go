package main

import (
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/value"
)

// kubeFlags are kubectl's connection flags.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (k *kubeFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "The kubeconfig context to use")
	cmd.Flags().StringVarP(&k.namespace, "namespace", "n", "runbook-system", "Namespace of the run journal and lock")
}

// clientConfig loads the kubeconfig the way kubectl does.
func (k *kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.kubeconfig != "" {
		rules.ExplicitPath = k.kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context})
}

// runFlags are the flags of commands that execute or inspect runs.
type runFlags struct {
	kubeFlags
	valueFlags
	env          string
	yes          bool
	state        string
	stopBefore   string
	deadline     time.Duration
	allowChanged bool
	planFile     string
	report       string
}

func newClusterCmds(g *globalOptions) []*cobra.Command {
	mk := func(use, short string, args cobra.PositionalArgs, withRunbook bool, bind func(*cobra.Command, *runFlags)) *cobra.Command {
		f := &runFlags{}
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  args,
			RunE: func(cmd *cobra.Command, args []string) error {
				if withRunbook {
					if _, _, err := loadRunbook(g.reg, args[0], &f.valueFlags); err != nil {
						return err
					}
				}
				if _, err := f.clientConfig().ClientConfig(); err != nil {
					return exitcode.Newf(exitcode.Invalid, "kubeconfig: %v", err)
				}
				return exitcode.Newf(exitcode.NotImplementedC, "%s: the execution engine is not part of this build yet", cmd.Name())
			},
		}
		f.kubeFlags.bind(cmd)
		cmd.Flags().StringVar(&f.state, "state", "", "Keep the run journal in this local file instead of a ConfigMap")
		if withRunbook {
			f.valueFlags.bind(cmd)
			cmd.Flags().StringVar(&f.env, "env", "", "Name of the environment (visible to expressions as env)")
		}
		if bind != nil {
			bind(cmd, f)
		}
		return cmd
	}
	runbookArg := exactArgs(1, "one runbook file")
	return []*cobra.Command{
		mk("plan RUNBOOK", "Show what apply would do, read-only; exit 4 when changes are pending", runbookArg, true, func(c *cobra.Command, f *runFlags) {
			c.Flags().StringVar(&f.planFile, "out", "", "Save the plan to this file for apply --plan")
		}),
		mk("apply RUNBOOK", "Run the runbook, resuming an interrupted run", runbookArg, true, func(c *cobra.Command, f *runFlags) {
			c.Flags().BoolVar(&f.yes, "yes", false, "Do not ask before a point of no return (for pipelines)")
			c.Flags().StringVar(&f.stopBefore, "stop-before", "", "Stop cleanly before this step (phased runs)")
			c.Flags().DurationVar(&f.deadline, "deadline", 0, "Stop cleanly between operations after this long")
			c.Flags().BoolVar(&f.allowChanged, "allow-changed", false, "Resume even though the runbook file changed since the run started")
			c.Flags().StringVar(&f.planFile, "plan", "", "Apply a plan saved by plan --out; refused when anything it depends on drifted")
			c.Flags().StringVar(&f.report, "report", "", "Write the final report (JSON) to this file")
		}),
		mk("rollback RUNBOOK", "Run the rollback hooks of a stopped run, in reverse order", runbookArg, true, func(c *cobra.Command, f *runFlags) {
			c.Flags().BoolVar(&f.yes, "yes", false, "Do not ask for confirmation")
		}),
		mk("status [RUN]", "Show the current or given run", cobra.MaximumNArgs(1), false, nil),
		mk("history", "List archived runs", exactArgs(0, "no arguments"), false, nil),
		mk("approve RUN", "Approve a run waiting at a pause step", exactArgs(1, "a run id"), false, nil),
		mk("unlock", "Break the lock of a run that is gone (never while it is still running)", exactArgs(0, "no arguments"), false, func(c *cobra.Command, f *runFlags) {
			c.Flags().BoolVar(&f.yes, "yes", false, "Do not ask for confirmation")
		}),
	}
}

func jsonValues(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = value.JSON(v)
	}
	return out
}
