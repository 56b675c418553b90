package calico

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v3.IPPoolSpec
		enc  string
	}{
		{"ipip", v3.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: v3.IPIPModeAlways, NATOutgoing: true}, "IPIP"},
		{"vxlan cross-subnet", v3.IPPoolSpec{CIDR: "10.1.0.0/16", VXLANMode: v3.VXLANModeCrossSubnet, BlockSize: 24}, "VXLANCrossSubnet"},
		{"none, v6, no export", v3.IPPoolSpec{CIDR: "fd00::/48", DisableBGPExport: true, AllowedUses: []v3.IPPoolAllowedUse{v3.IPPoolAllowedUseWorkload}}, "None"},
		{"disabled", v3.IPPoolSpec{CIDR: "10.2.0.0/16", IPIPMode: v3.IPIPModeCrossSubnet, Disabled: true}, "IPIPCrossSubnet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := WithDefaults(tc.spec)
			e, err := EntryFor("p", want, true)
			if err != nil {
				t.Fatal(err)
			}
			if e["encapsulation"] != tc.enc {
				t.Errorf("encapsulation %v, want %s", e["encapsulation"], tc.enc)
			}
			if got := EntrySpec(e); !reflect.DeepEqual(got, want) {
				t.Errorf("EntrySpec(EntryFor(s)) = %+v, want %+v", got, want)
			}
			p := &Pool{Name: "p", Spec: want, CIDR: mustPrefix(t, want.CIDR)}
			if d := EntryDrift(e, p); len(d) != 0 {
				t.Errorf("drift of an exact pool: %v", d)
			}
		})
	}
	if _, err := EntryFor("p", v3.IPPoolSpec{CIDR: "10.0.0.0/16", IPIPMode: v3.IPIPModeAlways, VXLANMode: v3.VXLANModeAlways}, true); err == nil {
		t.Error("both encapsulations accepted")
	}
}

func mustPrefix(t *testing.T, s string) (p netip.Prefix) {
	t.Helper()
	p, err := ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEntryDrift(t *testing.T) {
	spec := WithDefaults(v3.IPPoolSpec{CIDR: "192.168.0.0/16", IPIPMode: v3.IPIPModeAlways, NATOutgoing: true})
	e, _ := EntryFor("default-ipv4-ippool", spec, true)
	edited := spec
	edited.NATOutgoing = false
	edited.Disabled = true
	d := EntryDrift(e, &Pool{Spec: edited, CIDR: mustPrefix(t, spec.CIDR)})
	if len(d) != 2 || !strings.Contains(d[0], "natOutgoing: Installation true, pool false") || !strings.HasPrefix(d[1], "disabled:") {
		t.Errorf("drift = %v", d)
	}
}

func TestDisableAndMergeEntry(t *testing.T) {
	base := map[string]any{"name": "a", "cidr": "10.0.0.0/16", "encapsulation": "IPIP", "natOutgoing": "Enabled",
		"nodeSelector": "zone == 'a'", "blockSize": int64(26), "assignmentMode": "Automatic"}
	for _, tc := range []struct {
		name    string
		dna     bool
		field   string
		value   any
		restore string
	}{
		{"operator with disableNewAllocations", true, "disableNewAllocations", true, ""},
		{"older operator: nodeSelector", false, "nodeSelector", SelectorNoNode, "zone == 'a'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := cloneEntry(base)
			if got := DisableEntry(e, tc.dna); got != tc.restore {
				t.Errorf("restore = %q, want %q", got, tc.restore)
			}
			if e[tc.field] != tc.value || !EntryDisabled(e) {
				t.Errorf("entry after disable: %v", e)
			}
			if e["assignmentMode"] != "Automatic" {
				t.Error("a field this build does not know was lost")
			}
			// Converging to an enabled spec re-enables and keeps unknown fields.
			want, _ := EntryFor("a", EntrySpec(base), tc.dna)
			m := MergeEntry(e, want, tc.dna)
			if EntryDisabled(m) || m["assignmentMode"] != "Automatic" {
				t.Errorf("merged = %v", m)
			}
		})
	}
}

func TestInstallationOwnersAndEntries(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
		"metadata": map[string]any{"name": "default", "resourceVersion": "7"},
		"spec": map[string]any{"calicoNetwork": map[string]any{"ipPools": []any{
			map[string]any{"name": "default-ipv4-ippool", "cidr": "192.168.0.0/16"},
			map[string]any{"name": "new-pool", "cidr": "10.0.0.0/16"},
		}}},
	}}
	pools := `{"f:spec":{"f:calicoNetwork":{"f:ipPools":{}}}}`
	other := `{"f:spec":{"f:cni":{"f:type":{}}}}`
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		{Manager: "operator", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(pools)},
		{Manager: "runbook", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(pools)},
		{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(pools)},
		{Manager: "argocd-controller", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: metav1.NewFieldsV1(pools)},
		{Manager: "someone", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: metav1.NewFieldsV1(pools)},
		{Manager: "kustomize-controller", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: metav1.NewFieldsV1(other)},
	})
	in, err := installationFrom(u)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Managed || len(in.Pools) != 2 || in.ResourceVersion != "7" {
		t.Fatalf("installation = %+v", in)
	}
	got := strings.Join(in.ForeignOwners(), "\n")
	for _, want := range []string{`"helm" (Helm, Update)`, `"argocd-controller" (Argo CD, Apply)`, `"someone" (server-side apply, Apply)`} {
		if !strings.Contains(got, want) {
			t.Errorf("foreign owners %q lack %s", got, want)
		}
	}
	for _, not := range []string{"operator\"", "runbook", "kustomize"} {
		if strings.Contains(got, not) {
			t.Errorf("foreign owners %q name %s", got, not)
		}
	}
	if i := in.Entry("new-pool", netip.Prefix{}); i != 1 {
		t.Errorf("Entry(new-pool) = %d", i)
	}
	if i := in.Entry("renamed", mustPrefix(t, "192.168.0.0/16")); i != 0 {
		t.Errorf("Entry by CIDR = %d", i)
	}
	if !OperatorOwns(in, &Pool{Name: "x", CIDR: mustPrefix(t, "10.0.0.0/16")}) || OperatorOwns(in, &Pool{Name: "x", CIDR: mustPrefix(t, "10.9.0.0/16")}) {
		t.Error("OperatorOwns by entry")
	}
	if !OperatorOwns(nil, &Pool{Labels: map[string]string{LabelManagedBy: ManagedByOperator}}) {
		t.Error("OperatorOwns by label")
	}
	v := SetRunMap(in, AnnotationPoolsCreatedByRun, "new-pool", "run-1")
	in.Annotations = map[string]string{AnnotationPoolsCreatedByRun: *v}
	if in.RunMap(AnnotationPoolsCreatedByRun)["new-pool"] != "run-1" {
		t.Errorf("run map %s", *v)
	}
	if SetRunMap(in, AnnotationPoolsCreatedByRun, "new-pool", "") != nil {
		t.Error("removing the last key keeps the annotation")
	}
}

func TestPoolFromObjectV3Metadata(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
		"metadata": map[string]any{"name": "p", "annotations": map[string]any{
			annotationV3Metadata: `{"labels":{"app.kubernetes.io/managed-by":"tigera-operator"}}`}},
		"spec":   map[string]any{"cidr": "10.0.0.0/16", "nodeSelector": "!all()"},
		"status": map[string]any{"conditions": []any{map[string]any{"type": "Allocatable", "status": "True"}}},
	}}
	p, err := poolFromObject(u)
	if err != nil {
		t.Fatal(err)
	}
	if p.Labels[LabelManagedBy] != ManagedByOperator {
		t.Errorf("labels %v", p.Labels)
	}
	if p.Allocatable == nil || !*p.Allocatable {
		t.Errorf("allocatable %v", p.Allocatable)
	}
	if p.Enabled() {
		t.Error(`a pool selecting no node ("!all()") counts as enabled`)
	}
}
