package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/projectcalico/calico/libcalico-go/lib/clientv3"

	"github.com/runbookdev/runbook/test/sandbox/operator"
	"github.com/runbookdev/runbook/test/scenarios"
)

const (
	// FlavourOperator is an operator install: Installation "default" lists the
	// pools, and tigera-operator's pool controller (a stand-in) owns them. It
	// models tigera-operator v1.34.13, the release the pinned Calico (v3.28.5)
	// ships: no disableNewAllocations, spec.disabled never written.
	FlavourOperator = "operator"
	// FlavourOperatorV140 is the same install with a newer operator, v1.40.0
	// (Calico v3.31's), whose Installation pools have disableNewAllocations.
	FlavourOperatorV140 = "operator-v1.40"
	// operatorReadyTimeout bounds the wait for the operator's first pools and its
	// TigeraStatus once the Calico API server is up (seconds when the machine is
	// not busy).
	operatorReadyTimeout = 2 * time.Minute
)

// OperatorVersion returns the tigera-operator release an operator flavour
// models (false for the other flavours).
func OperatorVersion(flavour string) (operator.Version, bool) {
	switch flavour {
	case FlavourOperator:
		return operator.V1_34_13, true
	case FlavourOperatorV140:
		return operator.V1_40_0, true
	}
	return operator.Version{}, false
}

// OperatorFlavourSummary says, for an operator flavour, which tigera-operator
// release it models and that the operator is a stand-in ("" for the other
// flavours): what `make sandbox-up` prints.
func OperatorFlavourSummary(flavour string) string {
	v, ok := OperatorVersion(flavour)
	if !ok {
		return ""
	}
	note := "the release the pinned Calico v3.28.5 ships; no disableNewAllocations"
	if v.DisableNewAllocations {
		note = "a newer operator (it ships Calico " + v.Calico + "), with disableNewAllocations; Calico itself is still v3.28.5"
	}
	return fmt.Sprintf("tigera-operator %s (%s): its Installation/APIServer/TigeraStatus CRDs are %s's; the operator is a stand-in (in-process, test/sandbox/operator) for its IP pool controller and its apiserver controller's Ready state",
		v.Name, note, v.Name)
}

// operatorVersion is the release this cluster's operator flavour models.
func (c *Cluster) operatorVersion() operator.Version {
	v, _ := OperatorVersion(c.opts.Flavour)
	return v
}

// operatorUser is tigera-operator's service account; system:masters stands for
// the broad ClusterRole the operator has.
var operatorUser = identity{file: Operator, user: envtest.User{
	Name: "system:serviceaccount:tigera-operator:tigera-operator", Groups: []string{"system:masters"}}}

// installOperatorFlavour creates what an operator install has before its pools:
// the operator's Deployment (a pod kwok runs), APIServer "default" and
// Installation "default" listing the scenario's pools, and starts the operator
// stand-in, which creates them. The manifest's RBAC and calico-config, applied
// before, stand for what the operator renders for calico-node and the CNI
// plugin.
//
// On a kubeadm cluster the real operator refuses to create pools outside the
// podSubnet (the Calico doc's 192.168.0.0/16 pool on a 10.0.0.0/16 cluster).
// Such a scenario is a cluster installed from the manifest and migrated to the
// operator later: calico-node created the pools, and the operator adopts the
// ones that match its Installation exactly.
func (c *Cluster) installOperatorFlavour(ctx context.Context, calico clientv3.Interface) error {
	s := c.opts.Scenario
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	v := c.operatorVersion()
	entries, err := installationEntries(s, v)
	if err != nil {
		return err
	}
	if err := createOperatorDeployment(ctx, cs, v); err != nil {
		return err
	}
	if !poolsInPodSubnet(s) {
		for _, p := range s.Calico.IPPools {
			if err := createPool(ctx, calico, p); err != nil {
				return err
			}
		}
	}
	for _, obj := range []*unstructured.Unstructured{apiServerObject(), installationObject(entries)} {
		if _, err := dyn.Resource(operatorGVR(obj)).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	if err := c.startOperator(ctx); err != nil {
		return err
	}
	return waitOperatorPools(ctx, dyn, s)
}

// startOperator runs the operator stand-in as component Operator.
func (c *Cluster) startOperator(ctx context.Context) error {
	_, cfg, err := credentials(c.env, c.workDir, operatorUser)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("operator client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("operator client: %w", err)
	}
	logFile, err := openLog(c.workDir, Operator)
	if err != nil {
		return err
	}
	c.closers = append(c.closers, logFile.Close)
	ocfg := operator.Config{Dynamic: dyn, Kube: kube, Log: log.New(logFile, "", log.LstdFlags|log.Lmicroseconds), Version: c.operatorVersion()}
	c.operator = &inProcess[*operator.Operator]{name: Operator, newService: func() *operator.Operator { return operator.New(ocfg) }}
	c.components = append(c.components, c.operator)
	return c.operator.Start(ctx)
}

// poolsInPodSubnet reports whether every scenario pool lies in a podSubnet CIDR,
// the operator's condition for creating them on a kubeadm cluster.
func poolsInPodSubnet(s *scenarios.Scenario) bool {
	for _, p := range s.Calico.IPPools {
		pool, err := netip.ParsePrefix(p.CIDR)
		if err != nil {
			return false
		}
		within := false
		for _, subnet := range s.Cluster.PodSubnets() {
			within = within || (subnet.Contains(pool.Addr()) && pool.Bits() >= subnet.Bits())
		}
		if !within {
			return false
		}
	}
	return true
}

// installationEntries are the scenario's pools as Installation ipPools entries
// of release v. A disabled pool is listed with disableNewAllocations where the
// release has it; before v1.36 an operator-managed pool cannot be disabled (the
// operator re-enables it), so such a scenario is refused.
func installationEntries(s *scenarios.Scenario, v operator.Version) ([]any, error) {
	entries := make([]any, 0, len(s.Calico.IPPools))
	for _, p := range s.Calico.IPPools {
		if p.Disabled && !v.DisableNewAllocations {
			return nil, fmt.Errorf("scenario %s: pool %s is disabled, which tigera-operator %s cannot keep (no disableNewAllocations; its updates write disabled: false): use flavour %s, or disable it with nodeSelector: \"!all()\"",
				s.Name, p.Name, v.Name, FlavourOperatorV140)
		}
		encapsulation := operator.EncapsulationNone
		switch {
		case p.IPIPMode == "Always":
			encapsulation = operator.EncapsulationIPIP
		case p.IPIPMode == "CrossSubnet":
			encapsulation = operator.EncapsulationIPIPCrossSubnet
		case p.VXLANMode == "Always":
			encapsulation = operator.EncapsulationVXLAN
		case p.VXLANMode == "CrossSubnet":
			encapsulation = operator.EncapsulationVXLANCrossSubnet
		}
		nat := operator.NATOutgoingDisabled
		if p.NATOutgoing {
			nat = operator.NATOutgoingEnabled
		}
		entry := map[string]any{
			"name": p.Name, "cidr": p.CIDR, "encapsulation": encapsulation, "natOutgoing": nat,
			"nodeSelector": p.NodeSelector, "blockSize": int64(p.BlockSize),
		}
		if v.DisableNewAllocations {
			entry["disableNewAllocations"] = p.Disabled
		}
		if len(p.AllowedUses) > 0 {
			uses := make([]any, 0, len(p.AllowedUses))
			for _, u := range p.AllowedUses {
				uses = append(uses, u)
			}
			entry["allowedUses"] = uses
		}
		entries = append(entries, entry)
	}
	return entries, nil
}

// installationObject is Installation "default" as the operator's core controller
// leaves it after defaulting: Calico CNI and IPAM, its finalizer.
func installationObject(entries []any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operator.tigera.io/v1",
		"kind":       "Installation",
		"metadata":   map[string]any{"name": operator.DefaultName, "finalizers": []any{operator.CompleteFinalizer}},
		"spec": map[string]any{
			"cni":           map[string]any{"type": "Calico", "ipam": map[string]any{"type": "Calico"}},
			"calicoNetwork": map[string]any{"ipPools": entries},
		},
	}}
}

func apiServerObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operator.tigera.io/v1",
		"kind":       "APIServer",
		"metadata":   map[string]any{"name": operator.DefaultName},
		"spec":       map[string]any{},
	}}
}

func operatorGVR(obj *unstructured.Unstructured) schema.GroupVersionResource {
	if obj.GetKind() == "Installation" {
		return operator.Installations
	}
	return operator.APIServers
}

// createOperatorDeployment publishes tigera-operator's Deployment, so tools that
// look for the operator find it (its pod is a host-network pod kwok runs; the
// work is the in-process stand-in's).
func createOperatorDeployment(ctx context.Context, cs kubernetes.Interface, v operator.Version) error {
	const ns = "tigera-operator"
	if err := createOrKeep(ctx, cs.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, "namespace "+ns); err != nil {
		return err
	}
	labels := map[string]string{"k8s-app": "tigera-operator"}
	replicas := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tigera-operator", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork: true,
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers:  []corev1.Container{{Name: "tigera-operator", Image: "quay.io/tigera/operator:" + v.Name}},
				},
			},
		},
	}
	return createOrKeep(ctx, cs.AppsV1().Deployments(ns).Create, d, "Deployment "+ns+"/tigera-operator")
}

// waitOperatorPools waits until the scenario's pools exist (created or adopted
// by the operator), and reports the operator's TigeraStatus if they never do.
func waitOperatorPools(ctx context.Context, dyn dynamic.Interface, s *scenarios.Scenario) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, operatorReadyTimeout, true, func(ctx context.Context) (bool, error) {
		for _, p := range s.Calico.IPPools {
			if _, err := dyn.Resource(operator.CRDPools).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the operator did not create the scenario's pools (TigeraStatus %s: %s): %w", operator.StatusName, tigeraStatus(ctx, dyn), err)
	}
	return nil
}

// waitOperatorAvailable waits until the operator has reconciled with the Calico
// API server up: APIServer "default" Ready, every scenario pool managed (adopted
// pools get their label through the v3 API) and TigeraStatus "ippools" Available.
func waitOperatorAvailable(ctx context.Context, dyn dynamic.Interface, s *scenarios.Scenario) error {
	var pending string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, operatorReadyTimeout, true, func(ctx context.Context) (bool, error) {
		if pending = apiServerNotReady(ctx, dyn); pending != "" {
			return false, nil
		}
		for _, p := range s.Calico.IPPools {
			u, err := dyn.Resource(operator.CRDPools).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil || !operator.Managed(u) {
				pending = "pool " + p.Name + " not managed by the operator yet"
				return false, nil
			}
		}
		status := tigeraStatus(ctx, dyn)
		pending = "TigeraStatus " + operator.StatusName + ": " + status
		return status == "Available", nil
	})
	if err != nil {
		return fmt.Errorf("operator not done (%s): %w", pending, err)
	}
	return nil
}

// apiServerNotReady says why APIServer "default" is not Ready, or "" when it is:
// the operator changes pools only then.
func apiServerNotReady(ctx context.Context, dyn dynamic.Interface) string {
	api, err := dyn.Resource(operator.APIServers).Get(ctx, operator.DefaultName, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	if state, _, _ := unstructured.NestedString(api.Object, "status", "state"); state != operator.StateReady {
		return "APIServer default not Ready"
	}
	return ""
}

// tigeraStatus summarises TigeraStatus "ippools": "Available", or the Degraded
// reason and message.
func tigeraStatus(ctx context.Context, dyn dynamic.Interface) string {
	u, err := dyn.Resource(operator.TigeraStatuses).Get(ctx, operator.StatusName, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	summary := "no conditions"
	for _, c := range conditions {
		c, _ := c.(map[string]any)
		switch {
		case c["type"] == "Degraded" && c["status"] == "True":
			return fmt.Sprintf("Degraded: %v: %v", c["reason"], c["message"])
		case c["type"] == "Available" && c["status"] == "True":
			summary = "Available"
		}
	}
	return summary
}

// WaitOperatorReady waits until the operator applies Installation changes again:
// APIServer "default" Ready, projectcalico.org/v3 served through the API server
// (the operator writes pools only through it), the operator idle on two polls in
// a row (nothing queued, running or waiting for a retry: a pass that started
// before v3 was served and failed has been retried) and TigeraStatus "ippools"
// Available. Tests that stop and start the Calico API server or the operator
// wait on it before the next run: TigeraStatus alone can still say Available
// from before a pass that is about to fail.
func (c *Cluster) WaitOperatorReady(ctx context.Context) error {
	if c.operator == nil {
		return errors.New("WaitOperatorReady: this sandbox runs no operator (an operator flavour does)")
	}
	dyn, err := dynamic.NewForConfig(c.admin)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	var pending string
	idlePolls := 0
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if pending = apiServerNotReady(ctx, dyn); pending != "" {
			return false, nil
		}
		if _, err := dyn.Resource(operator.V3Pools).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			pending, idlePolls = "projectcalico.org/v3 not served: "+err.Error(), 0
			return false, nil
		}
		if o, ok := c.operator.current(); !ok || !o.Idle() {
			pending, idlePolls = "the operator is reconciling", 0
			return false, nil
		}
		if idlePolls++; idlePolls < 2 {
			pending = "the operator is reconciling"
			return false, nil
		}
		status := tigeraStatus(ctx, dyn)
		pending = "TigeraStatus " + operator.StatusName + ": " + status
		return status == "Available", nil
	})
	if err != nil {
		return fmt.Errorf("the operator is not ready (%s): %w", pending, err)
	}
	return nil
}
