package calico

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
)

func operatorObjects(state string, degraded bool, withDNA bool, serverDown bool) []runtime.Object {
	available := "True"
	if serverDown {
		available = "False"
	}
	items := map[string]any{"name": map[string]any{"type": "string"}, "cidr": map[string]any{"type": "string"}}
	if withDNA {
		items["disableNewAllocations"] = map[string]any{"type": "boolean"}
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": installationCRD},
		"spec": map[string]any{"versions": []any{map[string]any{"name": "v1", "schema": map[string]any{"openAPIV3Schema": map[string]any{
			"properties": map[string]any{"spec": map[string]any{"properties": map[string]any{"calicoNetwork": map[string]any{"properties": map[string]any{
				"ipPools": map[string]any{"items": map[string]any{"properties": items}}}}}}}}}}}},
	}}
	status := "False"
	if degraded {
		status = "True"
	}
	return []runtime.Object{crd,
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.tigera.io/v1", "kind": "APIServer",
			"metadata": map[string]any{"name": "default"}, "status": map[string]any{"state": state}}},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus",
			"metadata": map[string]any{"name": "ippools"}, "status": map[string]any{"conditions": []any{
				map[string]any{"type": "Degraded", "status": status, "reason": "ResourceNotReady", "message": "Unable to modify IP pools"}}}}},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
			"metadata": map[string]any{"name": "v3.projectcalico.org"}, "status": map[string]any{"conditions": []any{
				map[string]any{"type": "Available", "status": available, "reason": "FailedDiscoveryCheck", "message": "no response from https://localhost:1234"}}}}},
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
			"metadata": map[string]any{"name": "default", "resourceVersion": "5"},
			"spec":     map[string]any{"calicoNetwork": map[string]any{"ipPools": []any{map[string]any{"name": "a", "cidr": "10.0.0.0/16"}}}}}},
	}
}

func fakeOperator(objs []runtime.Object) *Operator {
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvrInstallations: "InstallationList", gvrOpAPIServers: "APIServerList", gvrAPIServices: "APIServiceList", gvrTigeraStatuses: "TigeraStatusList", gvrCRDs: "CustomResourceDefinitionList",
	}, objs...)
	return NewOperator(dyn)
}

func TestOperatorReadinessAndSchema(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		state    string
		degraded bool
		dna      bool
		down     bool // the Calico API server's APIService is not Available
		want     string
	}{
		{"ready, operator 1.36+", "Ready", false, true, false, ""},
		{"API server not ready", "", false, true, false, "APIServer default is not Ready (status.state: not reported)"},
		{"pool controller degraded, older operator", "Ready", true, false, false, "TigeraStatus ippools is Degraded (ResourceNotReady: Unable to modify IP pools)"},
		{"API server down, APIServer still Ready", "Ready", false, false, true, "APIService v3.projectcalico.org is not Available (FailedDiscoveryCheck no response from https://localhost:1234)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := fakeOperator(operatorObjects(tc.state, tc.degraded, tc.dna, tc.down))
			msg, err := op.NotReady(ctx)
			if err != nil || (tc.want == "") != (msg == "") || !strings.Contains(msg, tc.want) {
				t.Errorf("NotReady = %q, %v; want %q", msg, err, tc.want)
			}
			in, err := op.Installation(ctx)
			if err != nil || in == nil || !in.Managed {
				t.Fatalf("Installation = %+v, %v", in, err)
			}
			dna, err := op.SupportsDisableNewAllocations(ctx, in)
			if err != nil || dna != tc.dna {
				t.Errorf("SupportsDisableNewAllocations = %t, %v; want %t", dna, err, tc.dna)
			}
			e, _ := EntryFor("b", EntrySpec(map[string]any{"cidr": "10.1.0.0/16"}), dna)
			run := "run-1"
			if err := op.Update(ctx, in, append(in.Pools, e), map[string]*string{AnnotationPoolsCreatedByRun: &run}); err != nil {
				t.Fatal(err)
			}
			after, err := op.Installation(ctx)
			if err != nil || len(after.Pools) != 2 || after.Pools[1]["name"] != "b" || after.Annotations[AnnotationPoolsCreatedByRun] != run {
				t.Errorf("after update: %+v, %v", after, err)
			}
		})
	}
	// No APIServer at all: the operator changes no pools.
	objs := operatorObjects("Ready", false, true, false)
	op := fakeOperator(append(objs[:1:1], objs[2:]...))
	if msg, _ := op.NotReady(ctx); !strings.Contains(msg, "APIServer default does not exist") {
		t.Errorf("NotReady without APIServer = %q", msg)
	}
}
