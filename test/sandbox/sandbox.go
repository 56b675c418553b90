// Package sandbox runs the project's local test cluster: a real etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from pinned
// modules (hack/build-tools.sh), kwok playing the nodes' kubelets, Calico installed
// from its own manifest, and an in-process stand-in for the Calico CNI plugin that
// assigns pod addresses with the real libcalico-go IPAM. Start builds the cluster a
// scenario describes and returns once every scenario pod is Running with an address.
//
// Tests use it through Main and ForTest (one cluster per test package); the
// sandbox command (hack/sandbox.sh) keeps one running for the demo.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/projectcalico/calico/libcalico-go/lib/apiconfig"
	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/runbookdev/runbook/test/sandbox/cni"
	"github.com/runbookdev/runbook/test/sandbox/operator"
	"github.com/runbookdev/runbook/test/scenarios"
)

// Cluster is a running sandbox.
type Cluster struct {
	opts       Options
	workDir    string
	ownWorkDir bool
	env        *envtest.Environment
	closeLogs  func()
	closers    []func() error // log files of in-process stand-ins, closed by Stop
	admin      *rest.Config
	kubeconfig string
	components []Component // in start order; stopped in reverse
	cni        *inProcess[*cni.Plugin]
	calicoNode *calicoNodeRuntime
	operator   *inProcess[*operator.Operator]
	// calicoVersion is the release of the pinned Calico module (calico.yaml's
	// calico/node image tag), which the real Calico binaries are built from.
	calicoVersion string
	timings       []Timing
	guard         *netGuard // keeps pod, Service and node addresses on this machine (netguard.go)
}

// Timing is the duration of one start-up phase.
type Timing struct {
	Phase    string
	Duration time.Duration
}

// Start builds and starts a cluster. On error everything started so far is
// stopped again.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, workDir: opts.WorkDir}
	if c.workDir == "" {
		if c.workDir, err = os.MkdirTemp("", "sandbox-"); err != nil {
			return nil, fmt.Errorf("creating work directory: %w", err)
		}
		c.ownWorkDir = true
	}
	if c.workDir, err = filepath.Abs(c.workDir); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	defer func() {
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = errors.Join(err, c.Stop(stopCtx))
		}
	}()
	if err := c.start(ctx); err != nil {
		return nil, c.startFailed(err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	s := c.opts.Scenario
	if err := silenceLibcalico(c.workDir); err != nil {
		return err
	}
	// Before anything that could dial: the apiserver is configured for its mode.
	if err := c.startNetworkGuard(); err != nil {
		return err
	}

	var manifest *calicoManifest
	if err := c.phase("Calico manifest", func() error {
		dir := c.opts.CalicoModuleDir
		if dir == "" {
			var err error
			if dir, err = calicoModuleDir(ctx); err != nil {
				return err
			}
		}
		var err error
		if manifest, err = loadCalicoManifest(dir); err != nil {
			return err
		}
		c.calicoVersion = manifest.version
		if !IsOperatorFlavour(c.opts.Flavour) {
			return nil
		}
		crds, err := operatorCRDs(ctx, c.opts.Flavour, dir, c.opts.OperatorModuleDir)
		manifest.crds = append(manifest.crds, crds...)
		return err
	}); err != nil {
		return err
	}

	if err := c.phase("etcd, kube-apiserver, CRDs", func() error { return c.startControlPlane(manifest) }); err != nil {
		return err
	}

	var kubelet, plugin *rest.Config
	var pluginKubeconfig string
	if err := c.phase("controllers, kwok", func() error {
		var err error
		if _, kubelet, err = credentials(c.env, c.workDir, kubeletUser); err != nil {
			return err
		}
		if pluginKubeconfig, plugin, err = credentials(c.env, c.workDir, cniUser); err != nil {
			return err
		}
		return c.startControllers(ctx)
	}); err != nil {
		return err
	}

	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if err := c.phase("nodes, Calico install", func() error {
		if err := createNodes(ctx, cs, s); err != nil {
			return err
		}
		calico, err := c.NewCalicoClient()
		if err != nil {
			return err
		}
		if err := c.installKubeadmObjects(ctx, cs); err != nil {
			return err
		}
		if IsOperatorFlavour(c.opts.Flavour) {
			if err := installManifestObjects(ctx, c.admin, calico, manifest, s); err != nil {
				return err
			}
			return c.installOperatorFlavour(ctx, calico)
		}
		return installCRDFlavour(ctx, c.admin, calico, manifest, s)
	}); err != nil {
		return err
	}

	if c.opts.Flavour != FlavourCRD {
		if err := c.phase("Calico API server", func() error { return c.startCalicoAPIServer(ctx) }); err != nil {
			return err
		}
	}
	if IsOperatorFlavour(c.opts.Flavour) {
		if err := c.phase("operator with API server", func() error { return c.operatorWithAPIServer(ctx) }); err != nil {
			return err
		}
	}

	if err := c.phase("calico-node (tunnel addrs)", func() error { return c.startCalicoNode(ctx) }); err != nil {
		return err
	}
	if err := c.phase("calico-kube-controllers", func() error { return c.startKubeControllers(ctx) }); err != nil {
		return err
	}

	if err := c.phase("CNI stand-in", func() error {
		calico, err := newCalicoClient(pluginKubeconfig)
		if err != nil {
			return err
		}
		cfg := cni.Config{
			Kubelet: kubernetes.NewForConfigOrDie(kubelet),
			Plugin:  kubernetes.NewForConfigOrDie(plugin),
			Calico:  calico,
			// A terminating pod keeps its addresses while its containers shut down.
			ShutdownDelay: c.opts.Scenario.Pods.ShutdownDelay.Duration,
		}
		c.cni = &inProcess[*cni.Plugin]{name: CNI, newService: func() *cni.Plugin { return cni.New(cfg) }}
		c.components = append(c.components, c.cni)
		return c.cni.Start(ctx)
	}); err != nil {
		return err
	}

	if err := c.phase("workloads", func() error { return createWorkloads(ctx, cs, s) }); err != nil {
		return err
	}
	return c.phase("all pods Running", func() error { return waitReady(ctx, cs, c.opts.ReadyTimeout) })
}

// startControlPlane starts etcd and the apiserver through envtest, which installs
// the CRDs, and writes the admin kubeconfig.
func (c *Cluster) startControlPlane(m *calicoManifest) error {
	env, closeLogs, err := newEnvironment(c.opts.ToolsDir, c.workDir, c.opts.Scenario.Cluster, m.crds)
	if err != nil {
		return err
	}
	c.env, c.closeLogs = env, closeLogs
	if err := c.guard.configureAPIServer(env.ControlPlane.APIServer, c.workDir); err != nil {
		return err
	}
	if _, err := env.Start(); err != nil {
		// env.Start leaves etcd and the apiserver running when a later step (the CRDs)
		// fails; env.Stop stops whatever runs.
		return errors.Join(fmt.Errorf("control plane: %w", err), env.Stop())
	}
	etcd, apiserver := controlPlaneComponents(env)
	c.components = append(c.components, etcd, apiserver)
	if err := os.WriteFile(servingCAPath(c.workDir), env.ControlPlane.APIServer.SecureServing.CA, 0o644); err != nil {
		return fmt.Errorf("writing serving CA: %w", err)
	}
	c.kubeconfig, c.admin, err = credentials(env, c.workDir, adminUser)
	return err
}

// startControllers starts kube-controller-manager, kube-scheduler and kwok, each
// with its own identity. They need no waiting: the readiness wait covers them.
func (c *Cluster) startControllers(ctx context.Context) error {
	stages, err := renderStages(c.opts.Scenario.Pods.StartDelay.Duration)
	if err != nil {
		return err
	}
	stagesPath := filepath.Join(c.workDir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesPath, stages, 0o644); err != nil {
		return fmt.Errorf("writing kwok stages: %w", err)
	}
	kubeconfigs := map[string]string{}
	for _, id := range []identity{kcmUser, schedulerUser, kwokUser} {
		if kubeconfigs[id.file], _, err = credentials(c.env, c.workDir, id); err != nil {
			return err
		}
	}
	for _, p := range []*process{
		newControllerManager(c.opts.ToolsDir, c.workDir, kubeconfigs[ControllerManager], c.opts.Scenario.Cluster),
		newScheduler(c.opts.ToolsDir, c.workDir, kubeconfigs[Scheduler]),
		newKwok(c.opts.ToolsDir, c.workDir, kubeconfigs[Kwok], stagesPath),
	} {
		c.components = append(c.components, p)
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// installKubeadmObjects publishes kubeadm-config, kube-proxy's configuration and
// the mirror pods of the controller manager and scheduler.
func (c *Cluster) installKubeadmObjects(ctx context.Context, cs kubernetes.Interface) error {
	node, err := controlPlaneNode(c.opts.Scenario)
	if err != nil {
		return err
	}
	u, err := url.Parse(c.admin.Host)
	if err != nil {
		return fmt.Errorf("apiserver URL: %w", err)
	}
	mirrors := map[string][]string{}
	for _, name := range []string{ControllerManager, Scheduler} {
		p := c.Component(name).(*process)
		mirrors[name] = append([]string{name}, p.Args()...)
	}
	return installKubeadmObjects(ctx, cs, c.opts.Scenario.Cluster, u.Host, node, mirrors)
}

func (c *Cluster) phase(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(start)
	c.timings = append(c.timings, Timing{Phase: name, Duration: d})
	if err != nil {
		fmt.Fprintf(c.opts.Progress, "  %-28s failed after %v\n", name, d.Round(time.Millisecond))
		return err
	}
	fmt.Fprintf(c.opts.Progress, "  %-28s %v\n", name, d.Round(time.Millisecond))
	return nil
}

// Stop stops every component, the apiserver and etcd last (its clients first, or
// the apiserver waits for their watches), and removes a temporary work directory.
// Safe to call more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	for i := len(c.components) - 1; i >= 0; i-- {
		if err := c.components[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Only now that nothing dials any more: the routes go (if no other sandbox
	// needs them) or the egress proxy stops.
	if err := c.guard.close(); err != nil {
		errs = append(errs, err)
	}
	if c.closeLogs != nil {
		c.closeLogs()
		c.closeLogs = nil
	}
	for _, close := range c.closers {
		_ = close()
	}
	c.closers = nil
	if c.ownWorkDir && len(errs) == 0 {
		if err := os.RemoveAll(c.workDir); err != nil {
			errs = append(errs, fmt.Errorf("removing work directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RESTConfig returns a copy of the admin (system:masters) client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// KubeconfigPath is the admin kubeconfig file.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// WorkDir holds certificates, data, kubeconfigs and logs/.
func (c *Cluster) WorkDir() string { return c.workDir }

// LogDir holds one log file per component.
func (c *Cluster) LogDir() string { return logDir(c.workDir) }

// Scenario is the scenario the cluster was built from.
func (c *Cluster) Scenario() *scenarios.Scenario { return c.opts.Scenario }

// Timings lists the start-up phases with their durations.
func (c *Cluster) Timings() []Timing { return append([]Timing(nil), c.timings...) }

// Components lists the components in start order.
func (c *Cluster) Components() []Component { return append([]Component(nil), c.components...) }

// Component returns the component with the given name (see the name constants),
// or nil.
func (c *Cluster) Component(name string) Component {
	for _, comp := range c.components {
		if comp.Name() == name {
			return comp
		}
	}
	return nil
}

// CNIStats returns the CNI stand-in's counters (zero while it is stopped).
func (c *Cluster) CNIStats() cni.Stats {
	if c.cni == nil {
		return cni.Stats{}
	}
	if p, ok := c.cni.current(); ok {
		return p.Stats()
	}
	return cni.Stats{}
}

// OperatorStats returns the operator stand-in's counters (flavour operator; zero
// otherwise or while it is stopped).
func (c *Cluster) OperatorStats() operator.Stats {
	if c.operator == nil {
		return operator.Stats{}
	}
	if o, ok := c.operator.current(); ok {
		return o.Stats()
	}
	return operator.Stats{}
}

// NewCalicoClient returns a libcalico-go client with admin rights on the cluster.
func (c *Cluster) NewCalicoClient() (clientv3.Interface, error) {
	return newCalicoClient(c.kubeconfig)
}

func newCalicoClient(kubeconfig string) (clientv3.Interface, error) {
	cfg := apiconfig.NewCalicoAPIConfig()
	cfg.Spec.DatastoreType = apiconfig.Kubernetes
	cfg.Spec.Kubeconfig = kubeconfig
	// The default (5 QPS) throttles IPAM, which makes several requests per address.
	cfg.Spec.K8sClientQPS = 1000
	client, err := clientv3.New(*cfg)
	if err != nil {
		return nil, fmt.Errorf("calico client: %w", err)
	}
	return client, nil
}

// silenceLibcalico sends libcalico-go's logrus output to logs/libcalico-go.log at
// warning level: it logs routine conditions (a resource not found yet) as errors.
// logrus is process-global, so this applies to every user of libcalico-go in the
// process. controller-runtime's logger (envtest's) gets a discarding sink, or it
// prints a stack trace 30 s into every test binary that never set one.
func silenceLibcalico(workDir string) error {
	ctrlLogOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	f, err := openLog(workDir, "libcalico-go")
	if err != nil {
		return err
	}
	libcalicoLog.Lock()
	defer libcalicoLog.Unlock()
	logrus.SetOutput(f)
	logrus.SetLevel(logrus.WarnLevel)
	if libcalicoLog.file != nil {
		libcalicoLog.file.Close() // the previous cluster's; logrus no longer writes to it
	}
	libcalicoLog.file = f
	return nil
}

var ctrlLogOnce sync.Once

// libcalicoLog is the file logrus currently writes to.
var libcalicoLog struct {
	sync.Mutex
	file *os.File
}
