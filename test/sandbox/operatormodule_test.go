package sandbox

import (
	"context"
	"testing"
)

// Each operator flavour serves its release's Installation API: v1.34.13's (from
// the pinned Calico module's chart) has no ipPools[].disableNewAllocations, so
// kube-apiserver prunes it; v1.40.0's has it.
func TestOperatorCRDs(t *testing.T) {
	ctx := context.Background()
	calicoDir, err := calicoModuleDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flavour string
		dna     bool
	}{
		{FlavourOperator, false},
		{FlavourOperatorV140, true},
	} {
		t.Run(tc.flavour, func(t *testing.T) {
			crds, err := operatorCRDs(ctx, tc.flavour, calicoDir, "")
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]bool{}
			for _, crd := range crds {
				names[crd.Name] = true
				if crd.Name != "installations.operator.tigera.io" {
					continue
				}
				for _, v := range crd.Spec.Versions {
					if v.Name != "v1" {
						continue
					}
					pool := v.Schema.OpenAPIV3Schema.Properties["spec"].Properties["calicoNetwork"].Properties["ipPools"].Items.Schema
					if _, ok := pool.Properties["disableNewAllocations"]; ok != tc.dna {
						t.Errorf("ipPools[].disableNewAllocations in the schema: %v, want %v", ok, tc.dna)
					}
					if _, ok := pool.Properties["nodeSelector"]; !ok {
						t.Errorf("ipPools[] has no nodeSelector: %v", pool.Properties)
					}
				}
			}
			for _, want := range []string{"installations.operator.tigera.io", "apiservers.operator.tigera.io", "tigerastatuses.operator.tigera.io"} {
				if !names[want] {
					t.Errorf("missing CRD %s (have %v)", want, names)
				}
			}
		})
	}
	if _, err := operatorCRDs(ctx, FlavourCRD, calicoDir, ""); err == nil {
		t.Error("flavour crd: operator CRDs loaded")
	}
}
