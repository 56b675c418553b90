package calico

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// An operator install (tigera-operator) owns the pools listed in Installation
// "default" spec.calicoNetwork.ipPools: it creates, updates (reverting direct
// edits) and deletes them through projectcalico.org/v3. Such pools are never
// written directly; the Installation is edited instead, with a full-list update
// under a resourceVersion precondition: the list is atomic, so a server-side
// apply of one entry either conflicts or, forced, replaces the list (and the
// operator then deletes every pool missing from it, with live pods).

var (
	gvrInstallations  = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "installations"}
	gvrOpAPIServers   = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "apiservers"}
	gvrTigeraStatuses = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "tigerastatuses"}
	gvrCRDs           = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

const (
	// InstallationName is the Installation (and APIServer) the operator reads.
	InstallationName = "default"
	// ManagedByOperator is the managed-by label value of the operator's pools.
	ManagedByOperator = "tigera-operator"
	// AnnotationPoolsCreatedByRun / AnnotationPoolsDisabledByRun are JSON maps on
	// the Installation, written in the same update as the list: pool name → run id
	// (and, for a nodeSelector disable, the selector to restore). They are what
	// the cluster says about which run added or disabled an entry, as the pool
	// annotations are in the other flavours (the operator does not copy
	// annotations to its pools).
	AnnotationPoolsCreatedByRun  = "runbook.dev/ippools-created-by-run"
	AnnotationPoolsDisabledByRun = "runbook.dev/ippools-disabled-by-run"
	installationCRD              = "installations.operator.tigera.io"
)

// gitOpsManagers are field managers of tools that keep re-applying their copy
// of an object, and so would revert an edit of spec.calicoNetwork.ipPools.
var gitOpsManagers = []struct{ prefix, tool string }{
	{"helm-controller", "Flux (helm-controller)"},
	{"kustomize-controller", "Flux (kustomize-controller)"},
	{"flux", "Flux"},
	{"helm", "Helm"},
	{"argocd", "Argo CD"},
	{"argo-cd", "Argo CD"},
	{"kubectl-client-side-apply", "kubectl apply (client-side, last-applied annotation)"},
}

// Installation is the part of Installation "default" the pool path reads.
type Installation struct {
	ResourceVersion string
	// Pools are spec.calicoNetwork.ipPools as stored, every field kept (also
	// those this build does not know): the update writes them back unchanged.
	Pools []map[string]any
	// Managed: the list is not nil or empty, so the operator manages pools
	// (`ipPools: []` means it manages none).
	Managed     bool
	Annotations map[string]string
	// Owners are the field managers of spec.calicoNetwork.ipPools, with their
	// operation (Update, Apply).
	Owners []FieldOwner
	obj    *unstructured.Unstructured
}

// FieldOwner is one managedFields entry owning the pool list.
type FieldOwner struct {
	Manager, Operation string
}

// Entry returns the index of the entry for pool name (or, failing that, with
// this CIDR), -1 if none.
func (in *Installation) Entry(name string, cidr netip.Prefix) int {
	for i, e := range in.Pools {
		if s, _ := e["name"].(string); s == name && name != "" {
			return i
		}
	}
	if cidr.IsValid() {
		for i, e := range in.Pools {
			if c, err := ParseCIDR(entryString(e, "cidr")); err == nil && c == cidr {
				return i
			}
		}
	}
	return -1
}

// ForeignOwners names the managers of the pool list that would revert an edit:
// GitOps tools by their field manager, and any server-side apply owner other
// than runbook (it re-applies its own list).
func (in *Installation) ForeignOwners() []string {
	var out []string
	for _, o := range in.Owners {
		if o.Manager == fieldManager {
			continue
		}
		tool := ""
		for _, g := range gitOpsManagers {
			if strings.HasPrefix(o.Manager, g.prefix) {
				tool = g.tool
				break
			}
		}
		if tool == "" && o.Operation == string(metav1.ManagedFieldsOperationApply) {
			tool = "server-side apply"
		}
		if tool != "" {
			out = append(out, fmt.Sprintf("field manager %q (%s, %s)", o.Manager, tool, o.Operation))
		}
	}
	return out
}

// RunMap reads one of the run-map annotations (pool name → value).
func (in *Installation) RunMap(key string) map[string]string {
	out := map[string]string{}
	if raw := in.Annotations[key]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &out) // a mangled map reads as empty: inverses then keep
	}
	return out
}

// Operator is access to the Installation of an operator install.
type Operator struct {
	dyn dynamic.Interface
}

// NewOperator returns access to the operator's API on a cluster that serves it.
func NewOperator(dyn dynamic.Interface) *Operator { return &Operator{dyn: dyn} }

// Installation reads Installation "default"; nil when there is none.
func (o *Operator) Installation(ctx context.Context) (*Installation, error) {
	u, err := o.dyn.Resource(gvrInstallations).Get(ctx, InstallationName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Installation %s: %w", InstallationName, err)
	}
	return installationFrom(u)
}

func installationFrom(u *unstructured.Unstructured) (*Installation, error) {
	in := &Installation{ResourceVersion: u.GetResourceVersion(), Annotations: u.GetAnnotations(), obj: u}
	list, found, err := unstructured.NestedSlice(u.Object, "spec", "calicoNetwork", "ipPools")
	if err != nil {
		return nil, fmt.Errorf("Installation %s spec.calicoNetwork.ipPools: %w", u.GetName(), err)
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Installation %s spec.calicoNetwork.ipPools[%d]: not an object", u.GetName(), i)
		}
		in.Pools = append(in.Pools, m)
	}
	in.Managed = found && len(list) > 0
	for _, mf := range u.GetManagedFields() {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		if _, ok := dig(fields, "f:spec", "f:calicoNetwork", "f:ipPools"); ok {
			in.Owners = append(in.Owners, FieldOwner{Manager: mf.Manager, Operation: string(mf.Operation)})
		}
	}
	return in, nil
}

func dig(obj map[string]any, path ...string) (any, bool) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// NotReady says why the operator would not change pools now ("" when it would):
// it changes them only while its APIServer is Ready (the v3 API it writes
// through), and a degraded pool controller reports why it is stuck.
func (o *Operator) NotReady(ctx context.Context) (string, error) {
	u, err := o.dyn.Resource(gvrOpAPIServers).Get(ctx, InstallationName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "APIServer default does not exist: the operator runs no Calico API server and does not change IP pools without one", nil
	case err != nil:
		return "", fmt.Errorf("read APIServer %s: %w", InstallationName, err)
	}
	if state, _, _ := unstructured.NestedString(u.Object, "status", "state"); state != "Ready" {
		if state == "" {
			state = "not reported"
		}
		return fmt.Sprintf("APIServer default is not Ready (status.state: %s): the operator changes IP pools only while its Calico API server is Ready", state), nil
	}
	for _, name := range []string{"apiserver", "ippools"} {
		ts, err := o.dyn.Resource(gvrTigeraStatuses).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read TigeraStatus %s: %w", name, err)
		}
		conds, _, _ := unstructured.NestedSlice(ts.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Degraded" && m["status"] == "True" {
				msg, _ := m["message"].(string)
				reason, _ := m["reason"].(string)
				return fmt.Sprintf("TigeraStatus %s is Degraded (%s: %s): the operator is not applying pool changes", name, reason, msg), nil
			}
		}
	}
	// Once Ready, status.state is never cleared (tigera/operator v1.34.13 and
	// v1.40.0 pkg/controller/apiserver/apiserver_controller.go: the only write),
	// so a Calico API server that is down now shows only on its APIService. The
	// operator writes pools through it alone: an edit made now is not applied,
	// and the step would wait out its timeout.
	svc, err := o.dyn.Resource(gvrAPIServices).Get(ctx, v3APIServiceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "APIService " + v3APIServiceName + " does not exist: the operator writes IP pools through the Calico API server, which is not registered", nil
	case err != nil:
		return "", fmt.Errorf("read APIService %s: %w", v3APIServiceName, err)
	}
	if why := apiServiceUnavailable(svc.Object); why != "" {
		return fmt.Sprintf("APIService %s is not Available (%s): the Calico API server the operator writes IP pools through is down, so the operator would not apply the change (APIServer default still says Ready: the operator never clears it)", v3APIServiceName, why), nil
	}
	return "", nil
}

// SupportsDisableNewAllocations reads the served Installation schema: operator
// 1.36+ (Calico 3.29+) has ipPools[].disableNewAllocations. When the CRD cannot
// be read (RBAC), a server-side dry run of an update carrying the field decides.
func (o *Operator) SupportsDisableNewAllocations(ctx context.Context, in *Installation) (bool, error) {
	u, err := o.dyn.Resource(gvrCRDs).Get(ctx, installationCRD, metav1.GetOptions{})
	if err == nil {
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if vm["name"] != "v1" {
				continue
			}
			_, ok := dig(vm, "schema", "openAPIV3Schema", "properties", "spec", "properties", "calicoNetwork", "properties",
				"ipPools", "items", "properties", "disableNewAllocations")
			return ok, nil
		}
		return false, nil
	}
	if !apierrors.IsForbidden(err) {
		return false, fmt.Errorf("read CustomResourceDefinition %s: %w", installationCRD, err)
	}
	if in == nil || len(in.Pools) == 0 {
		return false, nil
	}
	probe := slices.Clone(in.Pools)
	probe[0] = cloneEntry(probe[0])
	if _, ok := probe[0]["disableNewAllocations"]; !ok {
		probe[0]["disableNewAllocations"] = false
	}
	err = o.update(ctx, in, probe, nil, true)
	if err != nil && strings.Contains(err.Error(), "disableNewAllocations") {
		return false, nil
	}
	return err == nil, err
}

// Update replaces the pool list (and sets or removes annotations, nil removes)
// in one update conditional on the Installation's resourceVersion: ErrConflict
// when anyone changed it since it was read. fieldValidation=Strict, so a field
// this operator's CRD lacks is an error, not silently pruned.
func (o *Operator) Update(ctx context.Context, in *Installation, pools []map[string]any, annotations map[string]*string) error {
	return o.update(ctx, in, pools, annotations, false)
}

func (o *Operator) update(ctx context.Context, in *Installation, pools []map[string]any, annotations map[string]*string, dryRun bool) error {
	obj := in.obj.DeepCopy()
	list := make([]any, len(pools))
	for i, p := range pools {
		list[i] = p
	}
	if err := unstructured.SetNestedSlice(obj.Object, list, "spec", "calicoNetwork", "ipPools"); err != nil {
		return fmt.Errorf("Installation %s: %w", InstallationName, err)
	}
	ann := obj.GetAnnotations()
	for k, v := range annotations {
		if ann == nil {
			ann = map[string]string{}
		}
		if v == nil {
			delete(ann, k)
		} else {
			ann[k] = *v
		}
	}
	obj.SetAnnotations(ann)
	obj.SetResourceVersion(in.ResourceVersion) // the precondition
	obj.SetManagedFields(nil)
	opts := metav1.UpdateOptions{FieldManager: fieldManager, FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := o.dyn.Resource(gvrInstallations).Update(ctx, obj, opts)
	if err != nil {
		return fmt.Errorf("update Installation %s spec.calicoNetwork.ipPools: %w", InstallationName, writeError(err))
	}
	return nil
}

// SetRunMap returns the annotation value of a run map with key set (or removed
// when value is "").
func SetRunMap(in *Installation, annotation, pool, value string) *string {
	m := in.RunMap(annotation)
	if value == "" {
		delete(m, pool)
	} else {
		m[pool] = value
	}
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m) // map[string]string always marshals
	s := string(b)
	return &s
}

func cloneEntry(e map[string]any) map[string]any {
	out := make(map[string]any, len(e))
	for k, v := range e {
		out[k] = v
	}
	return out
}

func entryString(e map[string]any, k string) string {
	s, _ := e[k].(string)
	return s
}

// EntryFor is an Installation ipPools entry with the given pool spec, in the
// operator's terms: ipipMode/vxlanMode → encapsulation, natOutgoing →
// Enabled/Disabled, disabled → disableNewAllocations (or, where the operator
// lacks it, nodeSelector "!all()"). Specs an entry cannot express (both
// encapsulations) are an error.
func EntryFor(name string, s v3.IPPoolSpec, supportsDNA bool) (map[string]any, error) {
	enc, err := encapsulation(s)
	if err != nil {
		return nil, err
	}
	nat := "Disabled"
	if s.NATOutgoing {
		nat = "Enabled"
	}
	uses := make([]any, len(s.AllowedUses))
	for i, u := range s.AllowedUses {
		uses[i] = string(u)
	}
	e := map[string]any{
		"name": name, "cidr": s.CIDR, "encapsulation": enc, "natOutgoing": nat,
		"nodeSelector": s.NodeSelector, "blockSize": int64(s.BlockSize), "allowedUses": uses,
		"disableBGPExport": s.DisableBGPExport,
	}
	if s.Disabled {
		DisableEntry(e, supportsDNA)
	}
	return e, nil
}

func encapsulation(s v3.IPPoolSpec) (string, error) {
	ipip, vxlan := s.IPIPMode != "" && s.IPIPMode != v3.IPIPModeNever, s.VXLANMode != "" && s.VXLANMode != v3.VXLANModeNever
	switch {
	case ipip && vxlan:
		return "", errors.New("an Installation pool has one encapsulation: ipipMode and vxlanMode cannot both be enabled")
	case s.IPIPMode == v3.IPIPModeAlways:
		return "IPIP", nil
	case s.IPIPMode == v3.IPIPModeCrossSubnet:
		return "IPIPCrossSubnet", nil
	case s.VXLANMode == v3.VXLANModeAlways:
		return "VXLAN", nil
	case s.VXLANMode == v3.VXLANModeCrossSubnet:
		return "VXLANCrossSubnet", nil
	}
	return "None", nil
}

// DisableEntry stops new allocations from an entry: disableNewAllocations where
// the operator has it, else nodeSelector "!all()" as older docs say. It returns
// the nodeSelector to restore in the second case.
func DisableEntry(e map[string]any, supportsDNA bool) (restore string) {
	if supportsDNA {
		e["disableNewAllocations"] = true
		return ""
	}
	restore = entryString(e, "nodeSelector")
	e["nodeSelector"] = SelectorNoNode
	return restore
}

// MergeEntry returns the entry old brought to want's fields, keeping every other
// field of old (a newer operator's, this build does not know) as it was.
func MergeEntry(old, want map[string]any, supportsDNA bool) map[string]any {
	out := cloneEntry(old)
	for k, v := range want {
		out[k] = v
	}
	wantDisabled := EntryDisabled(want)
	if !wantDisabled {
		if _, ok := out["disableNewAllocations"]; ok {
			out["disableNewAllocations"] = false
		}
	} else if !EntryDisabled(out) {
		DisableEntry(out, supportsDNA)
	}
	return out
}

// EntryDisabled reports whether an entry stops new allocations (either way).
func EntryDisabled(e map[string]any) bool {
	b, _ := e["disableNewAllocations"].(bool)
	return b || SelectsNoNode(entryString(e, "nodeSelector"))
}

// EntrySpec is the pool spec the operator writes for an entry (its
// ToProjectCalicoV1), with Calico's read defaults, for comparing with the pool.
func EntrySpec(e map[string]any) v3.IPPoolSpec {
	s := v3.IPPoolSpec{CIDR: entryString(e, "cidr"), IPIPMode: v3.IPIPModeNever, VXLANMode: v3.VXLANModeNever,
		NATOutgoing: entryString(e, "natOutgoing") == "Enabled", NodeSelector: entryString(e, "nodeSelector")}
	if c, err := ParseCIDR(s.CIDR); err == nil {
		s.CIDR = c.String()
	}
	switch entryString(e, "encapsulation") {
	case "IPIP":
		s.IPIPMode = v3.IPIPModeAlways
	case "IPIPCrossSubnet":
		s.IPIPMode = v3.IPIPModeCrossSubnet
	case "VXLAN":
		s.VXLANMode = v3.VXLANModeAlways
	case "VXLANCrossSubnet":
		s.VXLANMode = v3.VXLANModeCrossSubnet
	}
	s.Disabled, _ = e["disableNewAllocations"].(bool)
	s.DisableBGPExport, _ = e["disableBGPExport"].(bool)
	switch n := e["blockSize"].(type) {
	case int64:
		s.BlockSize = int(n)
	case float64:
		s.BlockSize = int(n)
	}
	if uses, ok := e["allowedUses"].([]any); ok {
		for _, u := range uses {
			if us, ok := u.(string); ok {
				s.AllowedUses = append(s.AllowedUses, v3.IPPoolAllowedUse(us))
			}
		}
	}
	return WithDefaults(s)
}

// EntryDrift lists how a pool differs from its Installation entry: an
// operator-managed pool edited behind the operator's (and runbook's) back, or
// one the operator has not caught up with.
func EntryDrift(e map[string]any, p *Pool) []string {
	want, have := EntrySpec(e), p.Spec
	var out []string
	add := func(field string, w, h any) {
		if !reflect.DeepEqual(w, h) {
			out = append(out, fmt.Sprintf("%s: Installation %v, pool %v", field, w, h))
		}
	}
	add("cidr", want.CIDR, p.CIDR.String())
	add("ipipMode", want.IPIPMode, have.IPIPMode)
	add("vxlanMode", want.VXLANMode, have.VXLANMode)
	add("natOutgoing", want.NATOutgoing, have.NATOutgoing)
	add("blockSize", want.BlockSize, have.BlockSize)
	add("nodeSelector", want.NodeSelector, have.NodeSelector)
	add("disabled", want.Disabled, have.Disabled)
	add("disableBGPExport", want.DisableBGPExport, have.DisableBGPExport)
	wu, hu := usesStrings(want.AllowedUses), usesStrings(have.AllowedUses)
	add("allowedUses", wu, hu)
	return out
}

func usesStrings(u []v3.IPPoolAllowedUse) []string {
	out := make([]string, len(u))
	for i, x := range u {
		out[i] = string(x)
	}
	sort.Strings(out)
	return out
}

// OperatorOwns reports whether the operator manages pool p under Installation
// in: labelled by it (on the object or, written via v3, in the v3 metadata), or
// listed by name or CIDR (the operator adopts an unlabelled pool that matches
// an entry).
func OperatorOwns(in *Installation, p *Pool) bool {
	if p.Labels[LabelManagedBy] == ManagedByOperator {
		return true
	}
	return in != nil && in.Entry(p.Name, p.CIDR) >= 0
}
