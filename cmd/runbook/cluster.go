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
	"k8s.io/client-go/transport"

	"github.com/runbookdev/runbook/actions"
	"github.com/runbookdev/runbook/engine"
	"github.com/runbookdev/runbook/internal/calico"
	"github.com/runbookdev/runbook/internal/exitcode"
	"github.com/runbookdev/runbook/internal/kubeclient"
	"github.com/runbookdev/runbook/internal/kuberetry"
	"github.com/runbookdev/runbook/runbooks"
)

// The Lease serialising runs that mutate this cluster's Calico IPAM. It lives in
// one fixed namespace whatever -n, --state or the environment say: two runs with
// their journals in different namespaces (or files) still mutate one IPAM.
const (
	lockNamespace = actions.LockNamespace
	lockName      = actions.LockName
)

func lockRef() string { return lockNamespace + "/" + lockName }

// bindLockTimeout adds --lock-timeout to a command that takes the run lock.
func bindLockTimeout(cmd *cobra.Command, f *runFlags) {
	cmd.Flags().DurationVar(&f.lockTimeout, "lock-timeout", 0, "Wait up to this long for the run lock held by another run (default: refuse at once)")
}

// kubeFlags are kubectl's connection flags plus client tuning.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string
	qps        float32
	burst      int
	as         impersonation
}

func (k *kubeFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "The kubeconfig context to use")
	cmd.Flags().StringVarP(&k.namespace, "namespace", "n", "runbook-system", "Namespace of the run journal and lock")
	// client-go's default of 5 QPS would make a 2,000-pod migration crawl.
	cmd.Flags().Float32Var(&k.qps, "kube-qps", 100, "Client-side API requests per second")
	cmd.Flags().IntVar(&k.burst, "kube-burst", 200, "Client-side API request burst")
	k.as.bind(cmd)
}

func (k *kubeFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.kubeconfig != "" {
		rules.ExplicitPath = k.kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.context}
	k.as.override(overrides)
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = k.qps, k.burst
	// Ride out a restarting apiserver or etcd (seconds of refused connections or
	// 503s) instead of failing a step half-way; only retries that cannot apply a
	// request twice (see internal/kuberetry).
	cfg.Wrap(kuberetry.Wrap)
	cfg.UserAgent = "runbook/" + version
	return cfg, nil
}

// runFlags are the flags of commands that execute or inspect runs.
type runFlags struct {
	kubeFlags
	valueFlags
	envFlags
	yes          bool
	state        string
	stopBefore   string
	deadline     time.Duration
	allowChanged bool
	planFile     string
	reports      []string
	calicoAPI    string
	lockTimeout  time.Duration
	planMaxAge   time.Duration
	verbose      bool // plan -v: every line of every step
}

// session is a connection to the cluster for one command.
type session struct {
	g      *globalOptions
	f      *runFlags
	cfg    *rest.Config
	kube   kubernetes.Interface
	dyn    dynamic.Interface
	rb     *runbooks.Runbook
	param  *runbooks.Params
	source *engine.Source
	p      *printer
	// fence refuses writes in every client's transport once the run lock is lost
	// (armed by lock).
	fence *engine.WriteFence
	// cluster is which cluster this is (read by bind).
	cluster engine.ClusterIdentity
}

// printer is the session's one renderer: events, live progress and the final report
// share its status line.
func (s *session) printer() *printer {
	if s.p == nil {
		s.p = newPrinter(s.g)
	}
	return s.p
}

func newSession(cmd *cobra.Command, g *globalOptions, f *runFlags, runbookFile string) (*session, error) {
	s := &session{g: g, f: f}
	err := f.envFlags.resolve(runbookFile, envSettings{kube: &f.kubeFlags, values: &f.valueFlags, flags: cmd.Flags(),
		note: func(msg string) { fprintf(g.errOut, "%s\n", msg) }})
	if err != nil {
		return nil, err
	}
	if runbookFile != "" {
		rb, params, err := loadRunbook(g.reg, runbookFile, &f.valueFlags)
		if err != nil {
			return nil, err
		}
		// forEach steps become their instances before anything plans or runs; items
		// the bound params make wrong are refused before the cluster is touched.
		if rb, err = rb.Expand(params, f.env); err != nil {
			return nil, refusedByParams(err)
		}
		s.rb, s.param = rb, params
		s.source = sourceOf(cmd.Context(), runbookFile, f.files, f.envFlags.path)
	}
	cfg, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	// Innermost, under kuberetry: every attempt of a write is checked.
	s.fence = &engine.WriteFence{}
	cfg.WrapTransport = transport.Wrappers(s.fence.Wrap, cfg.WrapTransport)
	s.cfg = cfg
	if s.kube, s.dyn, err = kubeclient.New(cfg); err != nil {
		return nil, exitcode.Newf(exitcode.Invalid, "%v", err)
	}
	return s, nil
}

func (s *session) store(runbookName string) engine.Store {
	if s.f.state != "" {
		return &engine.FileStore{Path: s.f.state}
	}
	return &engine.ConfigMapStore{Client: s.kube, Namespace: s.f.namespace, Name: "runbook-" + runbookName}
}

// ensureNamespace creates a namespace of the tool's (the lock's, the journal's) on
// first use; plan never calls it.
func (s *session) ensureNamespace(ctx context.Context, name, what string) error {
	_, err := s.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = s.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "runbook"}}}, metav1.CreateOptions{})
		if err == nil {
			fprintf(s.g.errOut, "created namespace %s for %s\n", name, what)
			return nil
		}
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("namespace %s (%s): %w", name, what, err)
	}
	return nil
}

// identify reads which cluster this is (plans and journals record it).
func (s *session) identify(ctx context.Context) (engine.ClusterIdentity, error) {
	ns, err := s.kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return engine.ClusterIdentity{}, fmt.Errorf("identify the cluster (namespace kube-system): %w", err)
	}
	return engine.ClusterIdentity{KubeSystemUID: string(ns.UID), Server: s.cfg.Host}, nil
}

func (s *session) bind(ctx context.Context) (*actions.Bound, error) {
	choice, err := calico.ParseAPIChoice(s.f.calicoAPI)
	if err != nil {
		return nil, exitcode.New(exitcode.Invalid, err)
	}
	if s.cluster, err = s.identify(ctx); err != nil {
		return nil, err
	}
	b, err := actions.Bind(ctx, &actions.Cluster{Config: s.cfg, Kube: s.kube, Dynamic: s.dyn, CalicoAPI: choice})
	if errors.Is(err, calico.ErrNotInstalled) {
		// Only an explicit --calico-api fails here: the cluster cannot serve it.
		return nil, exitcode.Newf(exitcode.Invalid, "%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("start cluster watches: %w", err)
	}
	return b, nil
}

// lock acquires the run lock and returns a context cancelled if it is lost.
func (s *session) lock(ctx context.Context) (*engine.Lock, context.Context, error) {
	l := &engine.Lock{Client: s.kube, Namespace: lockNamespace, Name: lockName, Holder: engine.DefaultHolder(),
		Notify: func(msg string) { fprintf(s.g.errOut, "%s\n", msg) }}
	if err := l.AcquireWithin(ctx, s.f.lockTimeout); err != nil {
		var held *engine.HeldError
		if errors.As(err, &held) {
			return nil, nil, exitcode.New(exitcode.LockHeld, err)
		}
		return nil, nil, err
	}
	s.fence.Arm(l.Fence)
	return l, l.Hold(ctx), nil
}

func (s *session) options(b *actions.Bound, store engine.Store, holder string) engine.Options {
	o := engine.Options{Runbook: s.rb, Params: s.param, Impls: b.Impls, Funcs: b.Funcs, Changes: b.Changes, Store: store,
		Env: s.f.env, Source: s.source, Holder: holder, Cluster: s.cluster, StopBefore: s.f.stopBefore, AllowChanged: s.f.allowChanged, Events: s.printer().event,
		Preflight: b.Preflight}
	if s.f.deadline > 0 {
		o.Deadline = time.Now().Add(s.f.deadline)
	}
	if !s.f.yes && isTTY(os.Stdin) && s.g.output == "text" {
		o.Confirm = s.printer().confirm(confirm(s.g.out, os.Stdin))
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
	// The lock first: a refused run creates nothing, not even its journal's
	// namespace.
	if err := s.ensureNamespace(ctx, lockNamespace, "the run lock"); err != nil {
		return err
	}
	lock, lctx, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if create && s.f.state == "" {
		if err := s.ensureNamespace(lctx, s.f.namespace, "the run journal"); err != nil {
			return err
		}
	}
	b, err := s.bind(lctx)
	if err != nil {
		return err
	}
	defer b.Close()
	store := s.store(s.rb.Name)
	o := s.options(b, store, lock.Holder)
	o.Fence = lock.Fence
	o.Events = s.kubeEvents(store, o.Events)
	defer s.printer().close()
	rep, err := fn(actions.WithPodMoveEvents(lctx, s.printer().podEvent), o)
	if rep != nil {
		s.finish(rep)
	}
	if cause := context.Cause(lctx); errors.Is(cause, engine.ErrFenced) {
		return exitcode.New(exitcode.LockHeld, cause)
	}
	if err != nil {
		// The run may have failed on a write the fence refused before the
		// renewal loop cancelled lctx: the lock is the cause then too.
		if ferr := lock.Fence(); ferr != nil {
			return exitcode.New(exitcode.LockHeld, ferr)
		}
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
	cmd.Flags().StringVar(&f.calicoAPI, "calico-api", string(calico.APIAuto),
		"Calico API for IP pools: auto (projectcalico.org/v3 when served, else crd.projectcalico.org/v1), crd, or v3")
	_ = cmd.RegisterFlagCompletionFunc("calico-api", cobra.FixedCompletions([]string{"auto", "crd", "v3"}, cobra.ShellCompDirectiveNoFileComp))
	f.envFlags.bind(cmd)
}
