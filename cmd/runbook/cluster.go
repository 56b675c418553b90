package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/runbooks"
)

// lockName is the Lease serialising runs that mutate this cluster's Calico IPAM.
const lockName = "runbook-lock-calico-ipam"

// kubeFlags are kubectl's connection flags plus client tuning.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
	qps        float32
	burst      int
}

func (k *kubeFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "The kubeconfig context to use")
	cmd.Flags().StringVarP(&k.namespace, "namespace", "n", "runbook-system", "Namespace of the run journal and lock")
	// client-go's default of 5 QPS would make a 2,000-pod migration crawl.
	cmd.Flags().Float32Var(&k.qps, "kube-qps", 100, "Client-side API requests per second")
	cmd.Flags().IntVar(&k.burst, "kube-burst", 200, "Client-side API request burst")
}

func (k *kubeFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.kubeconfig != "" {
		rules.ExplicitPath = k.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = k.qps, k.burst
	cfg.UserAgent = "runbook/" + version
	return cfg, nil
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
	reports      []string
}

// session is a connection to the cluster for one command.
type session struct {
	g     *globalOptions
	f     *runFlags
	cfg   *rest.Config
	kube  kubernetes.Interface
	dyn   dynamic.Interface
	rb    *runbooks.Runbook
	param *runbooks.Params
}

func newSession(g *globalOptions, f *runFlags, runbookFile string) (*session, error) {
	s := &session{g: g, f: f}
	if runbookFile != "" {
		rb, params, err := loadRunbook(g.reg, runbookFile, &f.valueFlags)
		if err != nil {
			return nil, err
		}
		s.rb, s.param = rb, params
	}
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	if s.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "kubernetes client: %v", err)
	}
	if s.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "dynamic client: %v", err)
	}
	return s, nil
}

func (s *session) store(runbookName string) engine.Store {
	if s.f.state != "" {
		return &engine.FileStore{Path: s.f.state}
	}
	return &engine.ConfigMapStore{Client: s.kube, Namespace: s.f.namespace, Name: "runbook-" + runbookName}
}

// ensureNamespace creates the journal namespace on first use; plan never calls it.
func (s *session) ensureNamespace(ctx context.Context) error {
	_, err := s.kube.CoreV1().Namespaces().Get(ctx, s.f.namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = s.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.f.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "runbook"}}}, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			fprintf(s.g.errOut, "created namespace %s for the run journal and lock\n", s.f.namespace)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", s.f.namespace, err)
	}
	return nil
}

func (s *session) bind(ctx context.Context) (*actions.Bound, error) {
	b, err := actions.Bind(ctx, &actions.Cluster{Config: s.cfg, Kube: s.kube, Dynamic: s.dyn})
	if err != nil {
		return nil, fmt.Errorf("start cluster watches: %w", err)
	}
	return b, nil
}

// lock acquires the run lock and returns a context cancelled if it is lost.
func (s *session) lock(ctx context.Context) (*engine.Lock, context.Context, error) {
	l := &engine.Lock{Client: s.kube, Namespace: s.f.namespace, Name: lockName, Holder: engine.DefaultHolder()}
	if err := l.Acquire(ctx); err != nil {
		var held *engine.HeldError
		if errors.As(err, &held) {
			return nil, nil, exitcode.New(exitcode.LockHeld, err)
		}
		return nil, nil, err
	}
	return l, l.Hold(ctx), nil
}

func (s *session) options(b *actions.Bound, store engine.Store, holder string) engine.Options {
	o := engine.Options{Runbook: s.rb, Params: s.param, Impls: b.Impls, Funcs: b.Funcs, Changes: b.Changes, Store: store,
		Env: s.f.env, Holder: holder, StopBefore: s.f.stopBefore, AllowChanged: s.f.allowChanged, Events: s.printer().event}
	if s.f.deadline > 0 {
		o.Deadline = time.Now().Add(s.f.deadline)
	}
	if !s.f.yes && isTTY(os.Stdin) && s.g.output == "text" {
		o.Confirm = confirm(s.g.out, os.Stdin)
	}
	return o
}

func isTTY(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func confirm(out io.Writer, in io.Reader) func(*runbooks.Step, string) (bool, error) {
	rd := bufio.NewReader(in)
	return func(st *runbooks.Step, q string) (bool, error) {
		fprintf(out, "%s [y/N] ", q)
		line, err := rd.ReadString('\n')
		if err != nil {
			return false, err
		}
		ans := strings.ToLower(strings.TrimSpace(line))
		return ans == "y" || ans == "yes", nil
	}
}

// mutate runs fn under the run lock with the actions bound to the cluster: the
// common frame of every command that changes the cluster. create makes the journal
// namespace on first use.
func (s *session) mutate(ctx context.Context, create bool, fn func(context.Context, engine.Options) (*engine.Report, error)) error {
	if create {
		if err := s.ensureNamespace(ctx); err != nil {
			return err
		}
	}
	lock, lctx, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	b, err := s.bind(lctx)
	if err != nil {
		return err
	}
	defer b.Close()
	store := s.store(s.rb.Name)
	o := s.options(b, store, lock.Holder)
	o.Fence = lock.Fence
	o.Events = s.kubeEvents(store, o.Events)
	rep, err := fn(lctx, o)
	if rep != nil {
		s.finish(rep)
	}
	if cause := context.Cause(lctx); errors.Is(cause, engine.ErrFenced) {
		return exitcode.New(exitcode.LockHeld, cause)
	}
	return err
}

func newClusterCmds(g *globalOptions) []*cobra.Command {
	return []*cobra.Command{newPlanCmd(g), newApplyCmd(g), newRollbackCmd(g), newStatusCmd(g), newHistoryCmd(g), newApproveCmd(g), newUnlockCmd(g)}
}

func bindRunbookFlags(cmd *cobra.Command, f *runFlags) {
	f.kubeFlags.bind(cmd)
	f.valueFlags.bind(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "Keep the run journal in this local file instead of a ConfigMap (the lock stays in the cluster)")
	cmd.Flags().StringVar(&f.env, "env", "", "Name of the environment (visible to expressions as env)")
}

func newPlanCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "plan RUNBOOK",
		Short: "Show what apply would do, read-only; exit 4 when changes are pending, 11 when refused",
		Args:  exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(g, f, args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := s.bind(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			p, err := engine.MakePlan(ctx, s.options(b, s.store(s.rb.Name), ""))
			if err != nil {
				return err
			}
			if f.planFile != "" {
				if err := engine.SavePlan(f.planFile, p); err != nil {
					return fmt.Errorf("save plan: %w", err)
				}
			}
			if g.output != "text" {
				if err := writeStructured(g.out, g.output, p); err != nil {
					return err
				}
			} else {
				printPlan(g.out, p)
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
	return cmd
}

func newApplyCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "apply RUNBOOK",
		Short: "Run the runbook, or resume its interrupted run",
		Args:  exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(g, f, args[0])
			if err != nil {
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
	cmd.Flags().DurationVar(&f.deadline, "deadline", 0, "Stop cleanly between steps after this long")
	cmd.Flags().BoolVar(&f.allowChanged, "allow-changed", false, "Resume even though the runbook file changed since the run started")
	cmd.Flags().StringVar(&f.planFile, "plan", "", "Apply a plan saved by plan --out; refused when anything it depends on drifted")
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
			s, err := newSession(g, f, args[0])
			if err != nil {
				return err
			}
			return s.mutate(cmd.Context(), false, func(ctx context.Context, o engine.Options) (*engine.Report, error) {
				return engine.RollbackRun(ctx, o)
			})
		},
	}
	bindRunbookFlags(cmd, f)
	cmd.Flags().BoolVar(&f.allowChanged, "allow-changed", false, "Roll back with a runbook that changed since the run started")
	cmd.Flags().StringArrayVar(&f.reports, "report", nil, "Write the final report to this file: .md for Markdown, anything else JSON")
	return cmd
}

// journals lists the current (unarchived) journals, or the file journal.
func (s *session) journals(ctx context.Context, archived bool) ([]*engine.Journal, error) {
	if s.f.state != "" {
		st := &engine.FileStore{Path: s.f.state}
		if archived {
			return st.History(ctx)
		}
		j, _, err := st.Load(ctx)
		if j == nil || err != nil {
			return nil, err
		}
		return []*engine.Journal{j}, nil
	}
	sel := "app.kubernetes.io/managed-by=runbook,runbook.dev/runbook"
	l, err := s.kube.CoreV1().ConfigMaps(s.f.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list journals in %s: %w", s.f.namespace, err)
	}
	var out []*engine.Journal
	for _, cm := range l.Items {
		if _, isArchive := cm.Labels["runbook.dev/archived-from"]; isArchive != archived {
			continue
		}
		j, err := engine.Decode([]byte(cm.Data["journal.json"]))
		if err != nil {
			fprintf(s.g.errOut, "warning: configmap %s/%s: %v\n", cm.Namespace, cm.Name, err)
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "status [RUN]",
		Short: "Show current runs, or one run in detail",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(g, f, "")
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
			s, err := newSession(g, f, "")
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
			s, err := newSession(g, f, "")
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
	f.kubeFlags.bind(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "The run journal is in this local file")
	cmd.Flags().StringVar(&who, "as", "", "Who approves (default: the local user@host)")
	return cmd
}

func newUnlockCmd(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Break the run lock of a run that is gone (never while it is still running)",
		Long: `Deletes the run lock. Only do this when the holder is certainly gone: a live
holder loses its lock at its next renewal and stops, but two runs mutating Calico IPAM
at once is exactly what the lock prevents. Expired locks are taken over automatically;
unlock is for not waiting out the lease.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := newSession(g, f, "")
			if err != nil {
				return err
			}
			if !f.yes {
				if !isTTY(os.Stdin) {
					return exitcode.Newf(exitcode.Invalid, "unlock needs --yes when not run from a terminal")
				}
				ok, err := confirm(g.out, os.Stdin)(nil, "Break the run lock "+f.namespace+"/"+lockName+"?")
				if err != nil || !ok {
					return exitcode.Newf(exitcode.Invalid, "not unlocked")
				}
			}
			holder, err := engine.Unlock(cmd.Context(), s.kube, f.namespace, lockName)
			if err != nil {
				return err
			}
			if holder == "" {
				fprintf(g.out, "no lock held in %s\n", f.namespace)
				return nil
			}
			fprintf(g.errOut, "WARNING: broke the lock held by %q; if that run is still alive it stops at its next renewal\n", holder)
			return nil
		},
	}
	f.kubeFlags.bind(cmd)
	cmd.Flags().BoolVar(&f.yes, "yes", false, "Do not ask for confirmation")
	return cmd
}
