package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/scenarios"
)

// newEnvironment configures envtest to run etcd and kube-apiserver from the tools
// directory with fixed certificate and data directories under workDir, so that both
// can be stopped and started again with the same identity and data.
//
// The returned function closes the log files once the processes are stopped.
func newEnvironment(toolsDir, workDir string, cluster scenarios.Cluster, crds []*apiextensionsv1.CustomResourceDefinition) (*envtest.Environment, func(), error) {
	for _, dir := range []string{pkiDir(workDir), etcdDir(workDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	etcdLog, err := openLog(workDir, Etcd)
	if err != nil {
		return nil, nil, err
	}
	apiLog, err := openLog(workDir, APIServer)
	if err != nil {
		etcdLog.Close()
		return nil, nil, err
	}
	closeLogs := func() { etcdLog.Close(); apiLog.Close() }
	apiserver := &envtest.APIServer{CertDir: pkiDir(workDir), Out: apiLog, Err: apiLog}
	args := apiserver.Configure()
	// Like kubeadm: a service range apart from the pod subnet (envtest's default
	// 10.0.0.0/24 would sit inside the Calico doc's 10.0.0.0/16), and the default
	// admission chain, including ServiceAccount, which envtest disables.
	args.Set("service-cluster-ip-range", cluster.ServiceSubnet)
	args.Disable("disable-admission-plugins")
	args.Set("enable-admission-plugins", "NodeRestriction")
	// Close open watches on SIGTERM instead of waiting for the clients to hang up:
	// otherwise stopping the apiserver under running controllers takes a minute.
	args.Set("shutdown-watch-termination-grace-period", "2s")
	if err := configureAggregation(apiserver, pkiDir(workDir)); err != nil {
		closeLogs()
		return nil, nil, err
	}
	etcdPath, err := deathSigWrapper(workDir, "etcd", filepath.Join(toolsDir, "etcd"))
	if err != nil {
		closeLogs()
		return nil, nil, err
	}
	if apiserver.Path, err = deathSigWrapper(workDir, "kube-apiserver", filepath.Join(toolsDir, "kube-apiserver")); err != nil {
		closeLogs()
		return nil, nil, err
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: toolsDir,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
		// envtest's default of 10 s for the CRDs to be served is too short on a busy
		// machine for the operator's 1.5 MB Installation CRD.
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: time.Minute},
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		ControlPlane: envtest.ControlPlane{
			Etcd:      &envtest.Etcd{Path: etcdPath, DataDir: etcdDir(workDir), Out: etcdLog, Err: etcdLog},
			APIServer: apiserver,
		},
	}, closeLogs, nil
}

func pkiDir(workDir string) string  { return filepath.Join(workDir, "pki") }
func etcdDir(workDir string) string { return filepath.Join(workDir, "etcd") }
func logDir(workDir string) string  { return filepath.Join(workDir, "logs") }

func openLog(workDir, name string) (*os.File, error) {
	if err := os.MkdirAll(logDir(workDir), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(logDir(workDir), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	return f, nil
}

// envtestComponent adapts one envtest control-plane process (etcd or the
// apiserver) to Component. envtest's own Start waits for the health endpoint, so
// Start returns once the process serves.
type envtestComponent struct {
	name  string
	start func() error
	stop  func() error

	mu      sync.Mutex
	running bool
}

func (e *envtestComponent) Name() string { return e.name }

func (e *envtestComponent) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

func (e *envtestComponent) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.start(); err != nil {
		return fmt.Errorf("starting %s: %w", e.name, err)
	}
	e.running = true
	return nil
}

func (e *envtestComponent) Stop(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running {
		return nil
	}
	e.running = false
	if err := e.stop(); err != nil {
		return fmt.Errorf("stopping %s: %w", e.name, err)
	}
	return nil
}

// controlPlaneComponents wraps a started environment's etcd and apiserver.
func controlPlaneComponents(env *envtest.Environment) (etcd, apiserver *envtestComponent) {
	etcd = &envtestComponent{name: Etcd, running: true, start: env.ControlPlane.Etcd.Start, stop: env.ControlPlane.Etcd.Stop}
	api := env.ControlPlane.APIServer
	apiserver = &envtestComponent{name: APIServer, running: true, start: api.Start, stop: api.Stop}
	return etcd, apiserver
}
