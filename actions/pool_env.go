package actions

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/runbookdev/runbook/internal/calico"
)

// poolEnv is what the Calico pool actions share on one cluster.
type poolEnv struct {
	cal  calico.Client
	kube kubernetes.Interface
	// op is the operator's Installation API, nil when the cluster does not serve
	// it: then no pool is operator-managed through an Installation.
	op *calico.Operator
	// dna caches whether the served Installation CRD has disableNewAllocations
	// (read once: the CRD is over a megabyte).
	dnaMu    sync.Mutex
	dnaKnown bool
	dna      bool
	// unavailable says why cal is nil (Calico not installed, or not in a flavour
	// this build supports); the actions then fail with it instead of guessing.
	unavailable error
}

func (e *poolEnv) client() (calico.Client, error) {
	if e.cal == nil {
		if e.unavailable != nil {
			return nil, e.unavailable
		}
		return nil, fmt.Errorf("no Calico access")
	}
	return e.cal, nil
}

// namedPool reads the pool name of an action whose one parameter is "name"
// (disablePool, deletePool) and the Calico client to act on it with.
func (e *poolEnv) namedPool(action string, c *Call) (string, calico.Client, error) {
	name, err := paramString(c, "name")
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", action, err)
	}
	cal, err := e.client()
	if err != nil {
		return name, nil, fmt.Errorf("%s %q: %w", action, name, err)
	}
	return name, cal, nil
}

// poolObject is how the journal names a pool this run created (the same in
// every flavour, so a journal written before --calico-api existed still matches).
func poolObject(name string) ObjectRef {
	return ObjectRef{APIVersion: "crd.projectcalico.org/v1", Kind: "IPPool", Name: name}
}

// apiFact is the plan fact naming the Calico API the pools are written through:
// a plan made against another flavour than the apply is drift.
func apiFact(cal calico.Client) string {
	return "calico API: " + cal.Detection().String()
}

// operatorManaged refuses changes to pools the tigera-operator owns: it reverts
// direct edits (calico#9100, tigera/operator#3494); the Installation must be edited
// instead, which the operator flavour will do.
func operatorManaged(p *calico.Pool) string {
	if p.Labels[calico.LabelManagedBy] == "tigera-operator" {
		return fmt.Sprintf("pool %s is managed by the tigera-operator (it reverts direct edits): edit the Installation's spec.calicoNetwork.ipPools instead", p.Name)
	}
	return ""
}

// poolFact is the observation of a pool a plan depends on.
func poolFact(name string, p *calico.Pool) string {
	if p == nil {
		return fmt.Sprintf("pool %s: absent", name)
	}
	s := p.Spec
	uses := make([]string, len(s.AllowedUses))
	for i, u := range s.AllowedUses {
		uses[i] = string(u)
	}
	return fmt.Sprintf("pool %s: cidr=%s blockSize=%d ipipMode=%s vxlanMode=%s natOutgoing=%t nodeSelector=%q allowedUses=%s disableBGPExport=%t disabled=%t uid=%s",
		p.Name, s.CIDR, s.BlockSize, s.IPIPMode, s.VXLANMode, s.NATOutgoing, s.NodeSelector, strings.Join(uses, ","), s.DisableBGPExport, s.Disabled, p.UID)
}

// livePool reads the pool called name straight from the API server, with all pools
// (checks compare it with the others).
func livePool(ctx context.Context, cal calico.Client, name string) (*calico.Pool, []calico.Pool, error) {
	pools, err := cal.Live().Pools(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read pools: %w", err)
	}
	return calico.FindPool(pools, name), pools, nil
}
