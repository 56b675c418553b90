package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"
	cerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	"github.com/projectcalico/calico/libcalico-go/lib/options"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/runbookdev/runbook/test/scenarios"
)

// installCRDFlavour completes the manifest install once the CRDs are in: it applies
// the rest of calico.yaml (RBAC, calico-config, the calico-node DaemonSet and the
// calico-kube-controllers Deployment, whose pods kwok then runs), and does what
// calico-node does on its first start: mark the datastore ready (ClusterInformation)
// and create the IP pools.
func installCRDFlavour(ctx context.Context, admin *rest.Config, calico clientv3.Interface, m *calicoManifest, s *scenarios.Scenario) error {
	if err := installManifestObjects(ctx, admin, calico, m, s); err != nil {
		return err
	}
	for _, p := range s.Calico.IPPools {
		if err := createPool(ctx, calico, p); err != nil {
			return err
		}
	}
	return nil
}

// installManifestObjects applies calico.yaml's objects other than CRDs (with the
// scenario's CNI settings) and initialises the datastore as calico-node does.
func installManifestObjects(ctx context.Context, admin *rest.Config, calico clientv3.Interface, m *calicoManifest, s *scenarios.Scenario) error {
	a, err := newApplier(admin)
	if err != nil {
		return err
	}
	if err := customizeCNIConfig(m.objects, s.Calico.CNI); err != nil {
		return err
	}
	if err := a.apply(ctx, m.objects...); err != nil {
		return fmt.Errorf("applying calico.yaml: %w", err)
	}
	// calico-node's CLUSTER_TYPE from calico.yaml, plus "kubeadm" because it finds
	// the kubeadm-config ConfigMap. This first custom resource create takes ~2 s:
	// the apiserver holds creates while a CRD is newly Established (apiextensions'
	// guard for HA clusters). Running the install concurrently with the rest of
	// the start-up was measured to gain nothing on 2 cores.
	if err := calico.EnsureInitialized(ctx, m.version, "k8s,bgp,kubeadm"); err != nil {
		return fmt.Errorf("initialising the Calico datastore: %w", err)
	}
	return nil
}

// createPool creates a pool through clientv3, which validates and converts it to the
// crd.projectcalico.org/v1 resource as calico-node does. An existing pool is kept.
func createPool(ctx context.Context, calico clientv3.Interface, p scenarios.IPPool) error {
	_, cidr, err := net.ParseCIDR(p.CIDR)
	if err != nil {
		return fmt.Errorf("pool %s: %w", p.Name, err)
	}
	pool := &v3.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name},
		Spec: v3.IPPoolSpec{
			CIDR:         cidr.String(),
			IPIPMode:     v3.IPIPMode(p.IPIPMode),
			VXLANMode:    v3.VXLANMode(p.VXLANMode),
			NATOutgoing:  p.NATOutgoing,
			BlockSize:    p.BlockSize,
			NodeSelector: p.NodeSelector,
			Disabled:     p.Disabled,
		},
	}
	for _, u := range p.AllowedUses {
		pool.Spec.AllowedUses = append(pool.Spec.AllowedUses, v3.IPPoolAllowedUse(u))
	}
	if _, err := calico.IPPools().Create(ctx, pool, options.SetOptions{}); err != nil {
		var exists cerrors.ErrorResourceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return fmt.Errorf("creating pool %s: %w", p.Name, err)
	}
	return nil
}
