package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// kubeControllersUser is calico-kube-controllers' service account, bound by
// calico.yaml: the real binary runs with exactly its permissions.
var kubeControllersUser = identity{file: KubeControllers, user: envtest.User{Name: "system:serviceaccount:kube-system:calico-kube-controllers"}}

// kubeControllersBinary is built by hack/build-tools.sh (hack/tools-calico) from
// github.com/projectcalico/calico/kube-controllers/cmd/kube-controllers.
const kubeControllersBinary = "calico-kube-controllers"

// defaultKubeControllersConfig is what kube-controllers creates when
// KubeControllersConfiguration default is missing
// (kube-controllers/pkg/config/runconfig.go:45-73 DefaultKCC, created by
// getOrCreateSnapshot, l.284-300), except that prometheusMetricsPort is 0:
// clientv3's Create fills a nil port with 9094
// (libcalico-go/lib/clientv3/kubecontrollersconfig.go:46-57) and main.go:208-219
// would listen on it on every interface. 0 is the real knob that turns it off.
func defaultKubeControllersConfig() *v3.KubeControllersConfiguration {
	noMetrics := 0
	kcc := v3.NewKubeControllersConfiguration()
	kcc.Name = "default"
	kcc.Spec = v3.KubeControllersConfigurationSpec{
		LogSeverityScreen:      "Info",
		HealthChecks:           v3.Enabled,
		EtcdV3CompactionPeriod: &metav1.Duration{Duration: 10 * time.Minute},
		PrometheusMetricsPort:  &noMetrics,
		Controllers: v3.ControllersConfig{
			Node: &v3.NodeControllerConfig{
				ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute},
				SyncLabels:       v3.Enabled,
				LeakGracePeriod:  &metav1.Duration{Duration: 15 * time.Minute},
			},
			Policy:           &v3.PolicyControllerConfig{ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute}},
			WorkloadEndpoint: &v3.WorkloadEndpointControllerConfig{ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute}},
			ServiceAccount:   &v3.ServiceAccountControllerConfig{ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute}},
			Namespace:        &v3.NamespaceControllerConfig{ReconcilerPeriod: &metav1.Duration{Duration: 5 * time.Minute}},
		},
	}
	return kcc
}

// startKubeControllers runs the real calico-kube-controllers (v3.28.5) as one
// supervised process with the node controller only, as the operator renders it
// (ENABLED_CONTROLLERS=node; manifest installs also run policy, namespace,
// serviceaccount and workloadendpoint controllers, which pool migrations do not
// meet). It is restarted whenever it exits: kube-controllers returns from main
// when its KubeControllersConfiguration changes (main.go:496-504), and its pod
// would be restarted by the kubelet.
func (c *Cluster) startKubeControllers(ctx context.Context) error {
	kubeconfig, _, err := credentials(c.env, c.workDir, kubeControllersUser)
	if err != nil {
		return err
	}
	calico, err := c.NewCalicoClient()
	if err != nil {
		return err
	}
	// An existing configuration (a restarted sandbox, a test's own) is left alone.
	if _, err := calico.KubeControllersConfiguration().Create(ctx, defaultKubeControllersConfig(), options.SetOptions{}); err != nil {
		if _, exists := err.(cerrors.ErrorResourceAlreadyExists); !exists {
			return fmt.Errorf("creating KubeControllersConfiguration default: %w", err)
		}
	}
	statusFile := filepath.Join(c.workDir, "status", "calico-kube-controllers.json")
	kc := &supervised{
		name: KubeControllers,
		child: child{
			path: filepath.Join(c.opts.ToolsDir, kubeControllersBinary),
			// The status file is what the Deployment's readiness probe
			// (check-status -r) reads; the default /status/status.json is not ours.
			args:        []string{"-status-file=" + statusFile},
			env:         []string{"DATASTORE_TYPE=kubernetes", "ENABLED_CONTROLLERS=node", "KUBECONFIG=" + kubeconfig},
			logPath:     filepath.Join(logDir(c.workDir), KubeControllers+".log"),
			stopTimeout: 5 * time.Second,
		},
		restartBase: time.Second,
		restartMax:  10 * time.Second,
		ready: func(ctx context.Context) error {
			_ = os.Remove(statusFile) // a previous run's
			return waitKubeControllersReady(ctx, statusFile)
		},
	}
	c.components = append(c.components, kc)
	return kc.Start(ctx)
}

// waitKubeControllersReady waits until the status file reports every readiness
// condition true, which is what `check-status -r` (the Deployment's readiness
// probe) checks: datastore initialised, Calico datastore and apiserver reachable
// (kube-controllers/pkg/status/status.go GetReadiness).
func waitKubeControllersReady(ctx context.Context, statusFile string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		data, err := os.ReadFile(statusFile)
		if err == nil {
			var st struct {
				Readiness map[string]struct {
					Ready  bool
					Reason string
				}
			}
			if json.Unmarshal(data, &st) == nil && len(st.Readiness) > 0 {
				ready := true
				for _, r := range st.Readiness {
					ready = ready && r.Ready
				}
				if ready {
					return nil
				}
			}
			last = string(data)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", statusFile, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("calico-kube-controllers not ready (status %q): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}
