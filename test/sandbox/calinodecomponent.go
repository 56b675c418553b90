package sandbox

import (
	"context"
	"fmt"
	"log"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runbookdev/runbook/test/sandbox/calinode"
)

// calicoNodeUser is calico-node's service account, bound by calico.yaml: the
// stand-in writes nodes and IPAM with exactly calico-node's permissions.
var calicoNodeUser = identity{file: CalicoNode, user: envtest.User{Name: "system:serviceaccount:kube-system:calico-node"}}

// startCalicoNode starts the calico-node stand-in once Calico is installed (its
// RBAC and the pools exist) and waits until every node has its tunnel addresses.
func (c *Cluster) startCalicoNode(ctx context.Context) error {
	kubeconfig, cfg, err := credentials(c.env, c.workDir, calicoNodeUser)
	if err != nil {
		return err
	}
	calico, err := newCalicoClient(kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("calico-node client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("calico-node client: %w", err)
	}
	logFile, err := openLog(c.workDir, CalicoNode)
	if err != nil {
		return err
	}
	c.closers = append(c.closers, logFile.Close)
	acfg := calinode.Config{Kube: kube, Dynamic: dyn, Calico: calico, Log: log.New(logFile, "", log.LstdFlags|log.Lmicroseconds)}
	c.calicoNode = &inProcess[*calinode.Allocator]{name: CalicoNode, newService: func() *calinode.Allocator { return calinode.New(acfg) }}
	c.components = append(c.components, c.calicoNode)
	return c.calicoNode.Start(ctx)
}
