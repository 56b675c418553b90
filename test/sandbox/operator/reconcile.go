package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// errDegraded marks a reconciliation that stopped on a degraded condition
// already reported in TigeraStatus; it is not retried until something changes.
var errDegraded = errors.New("degraded")

// reconcile is one pass of the operator's IP pool controller (v1.34.13
// pkg/controller/ippool/pool_controller.go:144-394, the same at v1.40.0 but for
// the conversions), preceded by what its apiserver controller reports: APIServer
// "default" becomes Ready once the calico-apiserver Deployment is available.
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
	v := o.cfg.Version
	if err := fillDefaults(v, inst, current, kubeadm); err != nil {
		return o.degraded(ctx, ReasonResourceReadError, "error filling IP pool defaults", err)
	}
	if err := validatePools(v, inst); err != nil {
		return o.degraded(ctx, ReasonInvalidConfiguration, "error validating IP pool configuration", err)
	}
	if after, _ := json.Marshal(inst.Spec.CalicoNetwork); string(after) != string(before) {
		if err := o.writeDefaults(ctx, inst); err != nil {
			return o.degraded(ctx, ReasonResourceUpdateError, "Failed to write defaults", err)
		}
	}
	desired := inst.Spec.CalicoNetwork.IPPools

	ours, notOurs := ownership(v, desired, current)

	var writes []poolWrite
	var notOwned bool
	for _, entry := range desired {
		want := Pool{Name: entry.Name, Labels: map[string]string{ManagedByLabel: ManagedByValue}, Spec: toPoolSpec(v, entry)}
		if notOurs[entry.CIDR] {
			notOwned = true
			if err := o.status.degraded(ctx, ReasonResourceValidation, "Cannot update an IP pool not owned by the operator"); err != nil {
				return err
			}
			continue
		}
		// With the API server up every entry is written (l.304); the stand-in
		// then skips the writes that would change nothing (write).
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
		// Deletion only through the v3 API (l.331-362): it disables the pool,
		// waits 500 ms, releases its blocks' affinities and deletes it
		// (libcalico-go clientv3 ipPools.Delete), whatever addresses are in use.
		if !apiAvailable {
			return o.degraded(ctx, ReasonResourceNotReady, "Unable to delete IP pools while Calico API server is unavailable", nil)
		}
		deletes = append(deletes, p.Name)
	}

	// Creates and updates before deletes (l.368-379).
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

// ownership sorts the cluster's pools by CIDR as the operator does
// (pool_controller.go:234-271): ours are those labelled managed-by, or
// unlabelled but, read back through FromProjectCalicoV1, exactly an Installation
// entry (the operator assumes ownership of such pools); the other unlabelled
// ones are not ours, and the operator refuses to write a listed pool with their
// CIDR.
func ownership(v Version, desired []IPPool, current []Pool) (ours map[string]Pool, notOurs map[string]bool) {
	ours, notOurs = map[string]Pool{}, map[string]bool{}
	for _, p := range current {
		if p.managed() {
			ours[p.Spec.CIDR] = p
			continue
		}
		for _, entry := range desired {
			if reflect.DeepEqual(entry, fromPoolSpec(v, p.Name, p.Spec)) {
				ours[p.Spec.CIDR] = p
			}
		}
		if _, ok := ours[p.Spec.CIDR]; !ok {
			notOurs[p.Spec.CIDR] = true
		}
	}
	return ours, notOurs
}

// poolWrite is a create or update of one pool, through the CRD (v1) or the v3 API.
type poolWrite struct {
	pool Pool
	v1   bool
}

// write creates the pool, or brings an existing one to the desired spec and
// label (which reverts direct edits). The desired spec replaces the current one
// whole, as the operator's mergeState does for a kind it has no case for
// (v1.34.13 pkg/controller/utils/component.go:371-414: only labels and
// annotations are merged) — so a field the release does not write, such as
// disabled at v1.34.13, goes back to its zero value.
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
	if err := unstructured.SetNestedMap(cur.Object, specMap(w.pool.Spec), "spec"); err != nil {
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

// syncAPIServerState plays the operator's apiserver controller: APIServer
// "default" gets status.state Ready once the calico-apiserver Deployment is
// available (v1.34.13 apiserver_controller.go:502-513, through the status
// manager's IsAvailable, status.go:378-394, 478-505), and nothing ever clears it
// (l.511 is the only write of the state; v1.40.0 is the same). It returns
// whether the pool controller may use the v3 API: APIServer "default" Ready
// (pool_controller.go:222-227) — however the API server is doing now.
func (o *Operator) syncAPIServerState(ctx context.Context) (bool, error) {
	obj, err := o.apiServers.Get(DefaultName)
	if apierrors.IsNotFound(err) {
		// Without an APIServer resource the operator runs no API server and never
		// uses the v3 API.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if state, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "status", "state"); state == StateReady {
		return true, nil
	}
	if !o.apiServerDeploymentAvailable() {
		return false, nil
	}
	// The lister may lag behind the state just written; what was written counts.
	if err := o.status.setAPIServerReady(ctx); err != nil {
		return false, err
	}
	o.cfg.Log.Printf("APIServer %s Ready: Deployment %s/%s available", DefaultName, APIServerNamespace, APIServerDeployment)
	return true, nil
}

// apiServerDeploymentAvailable is the status manager's view of the
// calico-apiserver Deployment (status.go:485-505): neither progressing (no
// unavailable replica, some available, the current generation observed) nor
// short of ready replicas. (Failing pods, which would make it degraded, are not
// looked at: kwok's pods do not crash-loop unless a test asks them to.)
func (o *Operator) apiServerDeploymentAvailable() bool {
	obj, err := o.deployments.ByNamespace(APIServerNamespace).Get(APIServerDeployment)
	if err != nil {
		return false
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, &d); err != nil {
		return false
	}
	return deploymentAvailable(&d)
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	st := d.Status
	progressing := st.UnavailableReplicas > 0 || st.AvailableReplicas == 0 || st.ObservedGeneration < d.Generation
	full := st.ObservedGeneration == d.Generation && st.UnavailableReplicas == 0 && st.AvailableReplicas == replicas && st.ReadyReplicas == replicas
	return !progressing && full
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
