package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// errDegraded marks a reconciliation that stopped on a degraded condition
// already reported in TigeraStatus; it is not retried until something changes.
var errDegraded = errors.New("degraded")

// reconcile is one pass of the operator's IP pool controller (pool_controller.go
// Reconcile), preceded by what its apiserver controller reports: APIServer
// "default" is Ready while the Calico API server's APIService is Available.
func (o *Operator) reconcile(ctx context.Context) error {
	apiAvailable, err := o.syncAPIServerState(ctx)
	if err != nil {
		return err
	}
	inst, found, err := o.installation()
	if err != nil || !found || inst.DeletionTimestamp != nil {
		return err
	}
	if !hasFinalizer(inst, CompleteFinalizer) {
		return o.degraded(ctx, ReasonResourceNotReady, "Waiting for Installation defaulting to occur", nil)
	}
	if inst.Spec.CNI == nil || inst.Spec.CNI.Type == "" {
		return o.degraded(ctx, ReasonResourceNotReady, "Waiting for CNI type to be configured on Installation", nil)
	}
	current, err := o.currentPools()
	if err != nil {
		return o.degraded(ctx, ReasonResourceValidation, "error obtaining v3 IPPool metadata", err)
	}

	before, _ := json.Marshal(inst.Spec.CalicoNetwork)
	kubeadm, err := o.kubeadmConfig(ctx)
	if err != nil {
		return o.degraded(ctx, ReasonResourceReadError, "error filling IP pool defaults", err)
	}
	if err := fillDefaults(inst, current, kubeadm); err != nil {
		return o.degraded(ctx, ReasonResourceReadError, "error filling IP pool defaults", err)
	}
	if err := validatePools(inst); err != nil {
		return o.degraded(ctx, ReasonInvalidConfiguration, "error validating IP pool configuration", err)
	}
	if after, _ := json.Marshal(inst.Spec.CalicoNetwork); string(after) != string(before) {
		if err := o.writeDefaults(ctx, inst); err != nil {
			return o.degraded(ctx, ReasonResourceUpdateError, "Failed to write defaults", err)
		}
	}
	desired := inst.Spec.CalicoNetwork.IPPools

	// Ours: labelled managed-by, or unlabelled but exactly an Installation entry
	// (the operator assumes ownership of such pools).
	ours := map[string]Pool{}
	notOurs := map[string]bool{}
	for _, p := range current {
		if p.managed() {
			ours[p.Spec.CIDR] = p
			continue
		}
		for _, entry := range desired {
			if reflect.DeepEqual(entry, fromPoolSpec(p.Name, p.Spec)) {
				ours[p.Spec.CIDR] = p
			}
		}
		if _, ok := ours[p.Spec.CIDR]; !ok {
			notOurs[p.Spec.CIDR] = true
		}
	}

	var writes []poolWrite
	var notOwned bool
	for _, entry := range desired {
		want := Pool{Name: entry.Name, Labels: map[string]string{ManagedByLabel: ManagedByValue}, Spec: toPoolSpec(entry)}
		if notOurs[entry.CIDR] {
			notOwned = true
			if err := o.status.degraded(ctx, ReasonResourceValidation, "Cannot update an IP pool not owned by the operator"); err != nil {
				return err
			}
			continue
		}
		have, ok := ours[entry.CIDR]
		if ok && !apiAvailable && reflect.DeepEqual(have.Spec.normalized(), want.Spec.normalized()) {
			continue
		}
		switch {
		case len(current) == 0:
			// Bootstrap: no pools, no working API server. The operator writes the
			// first pools through the CRD API.
			writes = append(writes, poolWrite{pool: want, v1: true})
		case apiAvailable:
			writes = append(writes, poolWrite{pool: want})
		default:
			return o.degraded(ctx, ReasonResourceNotReady, "Unable to modify IP pools while Calico API server is unavailable", nil)
		}
	}
	var deletes []string
	for cidr, p := range ours {
		listed := false
		for _, entry := range desired {
			listed = listed || entry.CIDR == cidr
		}
		if listed {
			continue
		}
		// Deletion only through the v3 API: it disables the pool and releases
		// its blocks' affinities before deleting (Calico's safe path).
		if !apiAvailable {
			return o.degraded(ctx, ReasonResourceNotReady, "Unable to delete IP pools while Calico API server is unavailable", nil)
		}
		deletes = append(deletes, p.Name)
	}

	for _, w := range writes {
		if err := o.write(ctx, w); err != nil {
			return o.degraded(ctx, ReasonResourceUpdateError, "Error creating / updating IPPools", err)
		}
	}
	for _, name := range deletes {
		err := o.cfg.Dynamic.Resource(V3Pools).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return o.degraded(ctx, ReasonResourceUpdateError, "Error deleting IPPools", err)
		}
		o.count(&o.stats.deleted, "deleted pool %s (not in the Installation)", name)
	}
	if notOwned {
		return errDegraded
	}
	return o.status.available(ctx)
}

// poolWrite is a create or update of one pool, through the CRD (v1) or the v3 API.
type poolWrite struct {
	pool Pool
	v1   bool
}

// write creates the pool, or brings an existing one to the desired spec and
// label (which reverts direct edits).
func (o *Operator) write(ctx context.Context, w poolWrite) error {
	gvr, apiVersion := V3Pools, "projectcalico.org/v3"
	if w.v1 {
		gvr, apiVersion = CRDPools, "crd.projectcalico.org/v1"
	}
	client := o.cfg.Dynamic.Resource(gvr)
	cur, err := client.Get(ctx, w.pool.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": "IPPool",
			"metadata": map[string]any{"name": w.pool.Name, "labels": toAny(w.pool.Labels)},
			"spec":     specMap(w.pool.Spec),
		}}
		if _, err := client.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating pool %s: %w", w.pool.Name, err)
		}
		o.count(&o.stats.created, "created pool %s %s via %s", w.pool.Name, w.pool.Spec.CIDR, apiVersion)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading pool %s: %w", w.pool.Name, err)
	}
	var have struct {
		Spec PoolSpec `json:"spec"`
	}
	if err := decode(cur, &have); err != nil {
		return err
	}
	if cur.GetLabels()[ManagedByLabel] == ManagedByValue && reflect.DeepEqual(have.Spec.normalized(), w.pool.Spec.normalized()) {
		return nil
	}
	spec, _, _ := unstructured.NestedMap(cur.Object, "spec")
	if spec == nil {
		spec = map[string]any{}
	}
	for k, v := range specMap(w.pool.Spec) {
		spec[k] = v
	}
	if err := unstructured.SetNestedMap(cur.Object, spec, "spec"); err != nil {
		return err
	}
	lbls := cur.GetLabels()
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[ManagedByLabel] = ManagedByValue
	cur.SetLabels(lbls)
	if _, err := client.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating pool %s: %w", w.pool.Name, err)
	}
	o.count(&o.stats.updated, "updated pool %s to the Installation's spec via %s", w.pool.Name, apiVersion)
	return nil
}

// specMap renders every field the operator owns, false and empty ones included,
// so an update overwrites a direct edit of any of them.
func specMap(s PoolSpec) map[string]any {
	uses := make([]any, 0, len(s.AllowedUses))
	for _, u := range s.AllowedUses {
		uses = append(uses, u)
	}
	m := map[string]any{
		"cidr": s.CIDR, "ipipMode": s.IPIPMode, "vxlanMode": s.VXLANMode, "natOutgoing": s.NATOutgoing,
		"disabled": s.Disabled, "disableBGPExport": s.DisableBGPExport, "nodeSelector": s.NodeSelector,
		"allowedUses": uses,
	}
	if s.BlockSize != 0 {
		m["blockSize"] = int64(s.BlockSize)
	}
	return m
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// writeDefaults patches the defaulted pool list into the Installation, as the
// operator does. A merge patch replaces the (atomic) list whole.
func (o *Operator) writeDefaults(ctx context.Context, inst *Installation) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"calicoNetwork": map[string]any{"ipPools": inst.Spec.CalicoNetwork.IPPools}}})
	if err != nil {
		return err
	}
	_, err = o.cfg.Dynamic.Resource(Installations).Patch(ctx, inst.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// degraded reports a degraded condition and ends the pass: with an error the
// pass is retried with back-off, without one it waits for the next change.
func (o *Operator) degraded(ctx context.Context, reason, message string, cause error) error {
	msg := message
	if cause != nil {
		msg = message + ": " + cause.Error()
	}
	o.count(&o.stats.degraded, "degraded (%s): %s", reason, msg)
	if err := o.status.degraded(ctx, reason, msg); err != nil {
		return errors.Join(err, cause)
	}
	if cause != nil {
		return fmt.Errorf("%s: %w", message, cause)
	}
	return errDegraded
}

// syncAPIServerState mirrors the APIService's availability into APIServer
// "default" and returns whether the operator may use the v3 API.
func (o *Operator) syncAPIServerState(ctx context.Context) (bool, error) {
	ready := false
	if obj, err := o.apiServices.Get(calicoAPIService); err == nil {
		conditions, _, _ := unstructured.NestedSlice(obj.(*unstructured.Unstructured).Object, "status", "conditions")
		for _, c := range conditions {
			c, _ := c.(map[string]any)
			ready = ready || (c["type"] == "Available" && c["status"] == "True")
		}
	}
	if err := o.status.setAPIServerState(ctx, ready); err != nil {
		return false, err
	}
	// Without an APIServer resource the operator runs no API server and never
	// uses the v3 API. (The lister may lag behind the state just written; what
	// was written counts.)
	if _, err := o.apiServers.Get(DefaultName); err != nil {
		return false, nil
	}
	return ready, nil
}

func (o *Operator) installation() (*Installation, bool, error) {
	obj, err := o.installations.Get(DefaultName)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	inst := &Installation{}
	if err := decode(obj.(*unstructured.Unstructured), inst); err != nil {
		return nil, false, err
	}
	return inst, true, nil
}

func (o *Operator) currentPools() ([]Pool, error) {
	objs, err := o.pools.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pools := make([]Pool, 0, len(objs))
	for _, obj := range objs {
		p, err := poolFromCRD(obj.(*unstructured.Unstructured))
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	return pools, nil
}

func (o *Operator) kubeadmConfig(ctx context.Context) (*corev1.ConfigMap, error) {
	cm, err := o.cfg.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		//lint:ignore ST1005 the operator's own message, verbatim
		return nil, fmt.Errorf("Unable to read kubeadm config map: %w", err)
	}
	return cm, nil
}

func hasFinalizer(inst *Installation, f string) bool {
	for _, x := range inst.Finalizers {
		if x == f {
			return true
		}
	}
	return false
}
