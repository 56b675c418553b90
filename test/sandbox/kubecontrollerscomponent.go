package sandbox

import (
	"context"
	"fmt"
	"log"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/sandbox/kubecontrollers"
)

// kubeControllersUser is calico-kube-controllers' service account, bound by
// calico.yaml: the stand-in releases addresses with exactly its permissions.
var kubeControllersUser = identity{file: KubeControllers, user: envtest.User{Name: "system:serviceaccount:kube-system:calico-kube-controllers"}}

// startKubeControllers starts the IPAM garbage collection stand-in once Calico
// is installed.
func (c *Cluster) startKubeControllers(ctx context.Context) error {
	kubeconfig, cfg, err := credentials(c.env, c.workDir, kubeControllersUser)
	if err != nil {
		return err
	}
	calico, err := newCalicoClient(kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube-controllers client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kube-controllers client: %w", err)
	}
	logFile, err := openLog(c.workDir, KubeControllers)
	if err != nil {
		return err
	}
	c.closers = append(c.closers, logFile.Close)
	kcfg := kubecontrollers.Config{Kube: kube, Dynamic: dyn, Calico: calico, Log: log.New(logFile, "", log.LstdFlags|log.Lmicroseconds)}
	c.kubeControllers = &inProcess[*kubecontrollers.Controller]{name: KubeControllers, newService: func() *kubecontrollers.Controller { return kubecontrollers.New(kcfg) }}
	c.components = append(c.components, c.kubeControllers)
	return c.kubeControllers.Start(ctx)
}

// KubeControllersStats returns the IPAM garbage collection stand-in's counters
// (zero while it is stopped).
func (c *Cluster) KubeControllersStats() kubecontrollers.Stats {
	if c.kubeControllers == nil {
		return kubecontrollers.Stats{}
	}
	if k, ok := c.kubeControllers.current(); ok {
		return k.Stats()
	}
	return kubecontrollers.Stats{}
}
