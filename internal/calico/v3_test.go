package calico

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	clientfeatures "k8s.io/client-go/features"
	kubefake "k8s.io/client-go/kubernetes/fake"
	kubetesting "k8s.io/client-go/testing"
)

type noWatchList struct{ clientfeatures.Gates }

func (g noWatchList) Enabled(f clientfeatures.Feature) bool {
	return f != clientfeatures.WatchListClient && g.Gates.Enabled(f)
}

// TestPoolAPIPerFlavour checks that each flavour reads and writes pools through
// its own API group (the v3 flavour never writes crd.projectcalico.org pools),
// with strict field validation on every write. The real servers' behaviour is
// proven by the e2e tests (TestFlavourAPIServer, TestFlavourOperator).
func TestPoolAPIPerFlavour(t *testing.T) {
	// The fake clients have no watch-list (initial events) support, which
	// client-go cannot tell through plain list/watch functions.
	prev := clientfeatures.FeatureGates()
	clientfeatures.ReplaceFeatureGates(noWatchList{prev})
	t.Cleanup(func() { clientfeatures.ReplaceFeatureGates(prev) })
	for _, tc := range []struct {
		flavour Flavour
		gvr     schema.GroupVersionResource
		other   schema.GroupVersionResource
	}{
		{FlavourCRD, gvrPools, gvrV3Pools},
		{FlavourV3, gvrV3Pools, gvrPools},
	} {
		t.Run(string(tc.flavour), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
				gvrPools: "IPPoolList", gvrV3Pools: "IPPoolList", gvrBlocks: "IPAMBlockList", gvrAffinities: "BlockAffinityList",
			})
			var strict []string
			dyn.PrependReactor("*", "ippools", func(a kubetesting.Action) (bool, runtime.Object, error) {
				switch a := a.(type) {
				case kubetesting.CreateAction:
					if opts, ok := a.(kubetesting.CreateActionImpl); ok && opts.CreateOptions.FieldValidation == metav1.FieldValidationStrict {
						strict = append(strict, "create")
					}
				case kubetesting.PatchActionImpl:
					if a.PatchOptions.FieldValidation == metav1.FieldValidationStrict {
						strict = append(strict, "patch")
					}
				}
				return false, nil, nil
			})
			c, err := New(ctx, kubefake.NewClientset(), dyn, Detection{Flavour: tc.flavour, V1: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if f := c.Detection().Flavour; f != tc.flavour {
				t.Errorf("Detection().Flavour = %s", f)
			}
			if _, err := c.CreatePool(ctx, "p", map[string]any{"cidr": "10.0.0.0/16"}, map[string]string{AnnotationCreatedByRun: "r"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PatchPool(ctx, "p", PoolPatch{Spec: map[string]any{"disabled": true}}); err != nil {
				t.Fatal(err)
			}
			got, err := dyn.Resource(tc.gvr).Get(ctx, "p", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pool not written through %s: %v", tc.gvr.GroupVersion(), err)
			}
			if got.GetAPIVersion() != tc.gvr.GroupVersion().String() {
				t.Errorf("apiVersion %s", got.GetAPIVersion())
			}
			if _, err := dyn.Resource(tc.other).Get(ctx, "p", metav1.GetOptions{}); err == nil {
				t.Errorf("pool also written through %s", tc.other.GroupVersion())
			}
			if len(strict) != 2 {
				t.Errorf("strict writes: %v, want create and patch", strict)
			}
			pools, err := c.Live().Pools(ctx)
			if err != nil || len(pools) != 1 || !pools[0].Spec.Disabled {
				t.Errorf("live pools through %s: %+v %v", tc.gvr.GroupVersion(), pools, err)
			}
		})
	}
}
